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
  TENANT_QUOTA_MB: int('TENANT_QUOTA_MB', 0, 1_000_000, 100),
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
  SESSION_SECRET: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return undefined;
      if (v.length < 32) {
        ctx.addIssue({
          code: 'custom',
          message: 'must be at least 32 characters of random text (e.g. `openssl rand -base64 48`)',
        });
        return z.NEVER;
      }
      return v;
    }),
  SESSION_IDLE_MINUTES: int('SESSION_IDLE_MINUTES', 1, 60 * 24 * 30, 30),
  SESSION_ABSOLUTE_HOURS: int('SESSION_ABSOLUTE_HOURS', 1, 24 * 90, 12),
  TRUST_PROXY: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '' || v === 'false') return false;
      if (/^\d{1,2}$/.test(v)) return Number(v);
      if (/^[\w.:/, -]+$/.test(v)) return v; // express: "loopback", "10.0.0.0/8, 127.0.0.1"...
      ctx.addIssue({
        code: 'custom',
        message: 'must be false, a number of proxy hops, or addresses/subnets like "loopback, 10.0.0.0/8"',
      });
      return z.NEVER;
    }),
  PUBLIC_URL: url(['http:', 'https:'], 'https://enclave.example.com', 'or unset it to use http://HOST:PORT'),
  AUDIT_SIGNING_KEY_FILE: z
    .string()
    .optional()
    .transform((v) => (v ? path.resolve(v) : undefined)),
  AUDIT_SEAL_INTERVAL_SECONDS: int('AUDIT_SEAL_INTERVAL_SECONDS', 0, 3600, 5),
  AUDIT_RETENTION_DAYS: int('AUDIT_RETENTION_DAYS', 1, 36500, 2557),
  AUDIT_READS: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '' || v === 'false' || v === '0' || v === 'off') return false;
      if (v === 'true' || v === '1' || v === 'on') return true;
      ctx.addIssue({ code: 'custom', message: `must be true or false (got "${v}")` });
      return z.NEVER;
    }),
  AUDIT_CONTENT: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '' || v === 'hash') return 'hash' as const;
      if (v === 'full') return 'full' as const;
      ctx.addIssue({ code: 'custom', message: `must be hash or full (got "${v}")` });
      return z.NEVER;
    }),
  TENANT_MAX_EXPORTS: int('TENANT_MAX_EXPORTS', 1, 1000, 2),
  TENANT_MAX_SEARCHES: int('TENANT_MAX_SEARCHES', 1, 1000, 4),
  TENANT_STATEMENT_TIMEOUT_MS: int('TENANT_STATEMENT_TIMEOUT_MS', 0, 3_600_000, 5000),
  TENANT_IDLE_IN_TRANSACTION_MS: int('TENANT_IDLE_IN_TRANSACTION_MS', 0, 3_600_000, 10000),
  EXPORT_STATEMENT_TIMEOUT_MS: int('EXPORT_STATEMENT_TIMEOUT_MS', 0, 3_600_000, 60000),
  EXPORT_SPOOL_BUDGET_MB: int('EXPORT_SPOOL_BUDGET_MB', 1, 1_048_576, 1024),
  EXPORT_SPOOL_DIR: z
    .string()
    .optional()
    .transform((v) => (v ? path.resolve(v) : undefined)),
  EXPORT_DEADLINE_SECONDS: int('EXPORT_DEADLINE_SECONDS', 1, 86400, 600),
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
  {
    name: 'TENANT_QUOTA_MB',
    fallback: '100',
    meaning:
      'storage each workspace may use, in MB (1 MB = 1,000,000 bytes) of note and task text, rendered note HTML and 100 bytes per item; a write that would go over it is refused with 413; 0: no limit (usage is still counted and shown)',
  },
  { name: 'LOG_LEVEL', fallback: 'info', meaning: 'error, warn, info or debug' },
  {
    name: 'SESSION_SECRET',
    fallback: '(generated)',
    meaning:
      'signs session cookies; set the same value on every instance (generated into DATA_DIR when unset)',
  },
  {
    name: 'SESSION_IDLE_MINUTES',
    fallback: '30',
    meaning: 'a session ends after this long without a request',
  },
  {
    name: 'SESSION_ABSOLUTE_HOURS',
    fallback: '12',
    meaning: 'a session ends this long after login, active or not',
  },
  {
    name: 'TRUST_PROXY',
    fallback: 'false',
    meaning: 'set behind a TLS proxy (hops or subnets): client IPs and Secure cookies come from it',
  },
  {
    name: 'PUBLIC_URL',
    fallback: 'http://HOST:PORT',
    meaning: 'the address people use; links in logs point there',
  },
  {
    name: 'AUDIT_SIGNING_KEY_FILE',
    fallback: 'DATA_DIR/audit-signing-key.pem',
    meaning:
      'Ed25519 private key (PKCS#8 PEM) that signs audit checkpoints; must exist when set (the default is generated on first start); the same file on every instance',
  },
  {
    name: 'AUDIT_SEAL_INTERVAL_SECONDS',
    fallback: '5',
    meaning:
      'how often the audit inbox is sealed into the hash chains (one seal at a time across instances); 0 turns the in-process scheduler off',
  },
  {
    name: 'AUDIT_RETENTION_DAYS',
    fallback: '2557',
    meaning: 'audit payloads older than this are pruned daily (hashes kept, never under legal hold)',
  },
  {
    name: 'AUDIT_READS',
    fallback: 'false',
    meaning:
      'true: every read of workspace data (GET on the workspace API and pages) is audited too, one event per request',
  },
  {
    name: 'AUDIT_CONTENT',
    fallback: 'hash',
    meaning:
      'hash: workspace content in audit events (note titles, bodies and tags, task titles) is recorded as its length and SHA-256; full: as text, readable by auditors and kept in the sealed trail',
  },
  {
    name: 'TENANT_MAX_EXPORTS',
    fallback: '2',
    meaning: 'exports one workspace may run at once (across instances with REDIS_URL); more get 429',
  },
  {
    name: 'TENANT_MAX_SEARCHES',
    fallback: '4',
    meaning: 'searches one workspace may run at once (across instances with REDIS_URL); more get 429',
  },
  {
    name: 'TENANT_STATEMENT_TIMEOUT_MS',
    fallback: '5000',
    meaning:
      'statement_timeout of every workspace request transaction (0: none); a statement cancelled by it is a 503',
  },
  {
    name: 'TENANT_IDLE_IN_TRANSACTION_MS',
    fallback: '10000',
    meaning:
      'idle_in_transaction_session_timeout of every workspace request transaction (0: none); PostgreSQL ends the connection',
  },
  {
    name: 'EXPORT_STATEMENT_TIMEOUT_MS',
    fallback: '60000',
    meaning: 'statement_timeout of the transaction that reads a workspace export (0: none)',
  },
  {
    name: 'EXPORT_SPOOL_BUDGET_MB',
    fallback: '1024',
    meaning:
      'disk space all exports of one process may spool at once; an export that would go over it is refused with 503',
  },
  {
    name: 'EXPORT_SPOOL_DIR',
    fallback: '(system temp dir)',
    meaning:
      'an existing directory where exports spool their files (each in a private directory, removed when the export ends)',
  },
  {
    name: 'EXPORT_DEADLINE_SECONDS',
    fallback: '600',
    meaning: 'an export download still running after this long is cut off and its files removed',
  },
  {
    name: 'TENANT_MIGRATIONS_DIR',
    fallback: './migrations/tenant',
    meaning: 'tenant migration templates (for tests and staging)',
  },
];
