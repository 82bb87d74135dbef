// Configuration comes from the environment and is validated once, at start.
// A bad value is reported as one line naming the setting and how to fix it.
import path from 'node:path';
import { z } from 'zod';

export class ConfigError extends Error {
  readonly setting: string;
  constructor(setting: string, message: string) {
    super(`${setting}: ${message}`);
    this.name = 'ConfigError';
    this.setting = setting;
  }
}

const int = (name: string, min: number, max: number, fallback: number) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw === '') return fallback;
      const n = Number(raw);
      if (!/^\d+$/.test(raw) || n < min || n > max) {
        ctx.addIssue({
          code: 'custom',
          message: `must be a whole number from ${min} to ${max} (got "${raw}")`,
        });
        return z.NEVER;
      }
      return n;
    })
    .describe(name);

// URLs may carry passwords: the message never repeats the value.
const url = (protocols: string[], example: string, unsetHint: string) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw === '') return undefined;
      let parsed: URL;
      try {
        parsed = new URL(raw);
      } catch {
        ctx.addIssue({
          code: 'custom',
          message: `is not a valid URL; use the form ${example}, ${unsetHint}`,
        });
        return z.NEVER;
      }
      if (!protocols.includes(parsed.protocol)) {
        ctx.addIssue({
          code: 'custom',
          message: `must start with ${protocols.map((p) => `${p}//`).join(' or ')}; use the form ${example}, ${unsetHint}`,
        });
        return z.NEVER;
      }
      return raw;
    });

const schema = z.object({
  DATABASE_URL: url(
    ['postgres:', 'postgresql:'],
    'postgres://user:password@host:5432/dbname',
    'or unset it to run the embedded PostgreSQL',
  ),
  REDIS_URL: url(['redis:', 'rediss:'], 'redis://host:6379', 'or unset it to keep sessions in PostgreSQL'),
  PORT: int('PORT', 1, 65535, 3000),
  HOST: z
    .string()
    .optional()
    .transform((v) => v || '127.0.0.1'),
  DATA_DIR: z
    .string()
    .optional()
    .transform((v) => path.resolve(v || '.data')),
  DB_POOL_SIZE: int('DB_POOL_SIZE', 1, 500, 10),
  MIGRATION_CONCURRENCY: int('MIGRATION_CONCURRENCY', 1, 64, 4),
  EMBEDDED_PG_PORT: int('EMBEDDED_PG_PORT', 1024, 65535, 54329),
  TENANT_CACHE_MS: int('TENANT_CACHE_MS', 0, 60000, 2000),
  LOG_LEVEL: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const level = v || 'info';
      if (!['error', 'warn', 'info', 'debug'].includes(level)) {
        ctx.addIssue({ code: 'custom', message: `must be one of error, warn, info, debug (got "${v}")` });
        return z.NEVER;
      }
      return level as 'error' | 'warn' | 'info' | 'debug';
    }),
  TENANT_MIGRATIONS_DIR: z
    .string()
    .optional()
    .transform((v) => (v ? path.resolve(v) : undefined)),
});

export type Config = z.output<typeof schema>;

/** Parses the environment; throws ConfigError naming the first bad setting. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const setting = String(issue?.path[0] ?? 'configuration');
  throw new ConfigError(setting, issue?.message ?? 'is invalid');
}

/** The settings table in the README is generated from this list: keep them together. */
export const SETTINGS: ReadonlyArray<{ name: keyof Config; fallback: string; meaning: string }> = [
  {
    name: 'DATABASE_URL',
    fallback: '(embedded)',
    meaning: 'PostgreSQL to use; unset runs the embedded one in DATA_DIR',
  },
  { name: 'REDIS_URL', fallback: '(none)', meaning: 'Redis for sessions and rate limits' },
  { name: 'PORT', fallback: '3000', meaning: 'HTTP port' },
  { name: 'HOST', fallback: '127.0.0.1', meaning: 'HTTP listen address' },
  { name: 'DATA_DIR', fallback: './.data', meaning: 'where the embedded PostgreSQL and local state live' },
  { name: 'DB_POOL_SIZE', fallback: '10', meaning: 'connections in the pool of each process' },
  { name: 'MIGRATION_CONCURRENCY', fallback: '4', meaning: 'tenants migrated at once by a fleet rollout' },
  {
    name: 'EMBEDDED_PG_PORT',
    fallback: '54329',
    meaning: 'port of the embedded PostgreSQL (127.0.0.1 only)',
  },
  {
    name: 'TENANT_CACHE_MS',
    fallback: '2000',
    meaning: 'how long a tenant state is cached; suspension takes effect within this',
  },
  { name: 'LOG_LEVEL', fallback: 'info', meaning: 'error, warn, info or debug' },
  {
    name: 'TENANT_MIGRATIONS_DIR',
    fallback: './migrations/tenant',
    meaning: 'tenant migration templates (for tests and staging)',
  },
];
