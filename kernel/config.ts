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

const bool = (fallback: boolean) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return fallback;
      if (v === 'false' || v === '0' || v === 'off') return false;
      if (v === 'true' || v === '1' || v === 'on') return true;
      ctx.addIssue({ code: 'custom', message: `must be true or false (got "${v}")` });
      return z.NEVER;
    });

// A five-field cron expression (minute hour day month weekday, UTC), or `off`.
// Only the shape is checked here; pg-boss parses it when the schedule is set.
const CRON_FIELD = /^[0-9*,/-]+$/;
const cron = (fallback: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      const raw = v === undefined || v.trim() === '' ? fallback : v.trim();
      if (raw === 'off') return null;
      const fields = raw.split(/\s+/);
      if (fields.length !== 5 || !fields.every((f) => CRON_FIELD.test(f))) {
        ctx.addIssue({
          code: 'custom',
          message: `must be a five-field cron expression in UTC such as "${fallback}", or off (got "${raw.slice(0, 60)}")`,
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
  DIRECT_DATABASE_URL: url(
    ['postgres:', 'postgresql:'],
    'postgres://user:password@host:5432/dbname',
    'or unset it to use DATABASE_URL for everything',
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
  DB_CONNECT_TIMEOUT_MS: int('DB_CONNECT_TIMEOUT_MS', 100, 600_000, 5000),
  SHUTDOWN_DRAIN_MS: int('SHUTDOWN_DRAIN_MS', 0, 300_000, 0),
  MIGRATION_CONCURRENCY: int('MIGRATION_CONCURRENCY', 1, 64, 4),
  EMBEDDED_PG_PORT: int('EMBEDDED_PG_PORT', 1024, 65535, 54329),
  TENANT_CACHE_MS: int('TENANT_CACHE_MS', 0, 60000, 2000),
  TENANT_CACHE_SIZE: int('TENANT_CACHE_SIZE', 1, 10_000_000, 10_000),
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
  SESSION_TOUCH_CACHE: int('SESSION_TOUCH_CACHE', 0, 10_000_000, 100_000),
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
  AUDIT_READS: bool(false),
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
  TENANT_SEARCHES_PER_MINUTE: int('TENANT_SEARCHES_PER_MINUTE', 0, 100_000, 60),
  SEARCH_CANDIDATES: int('SEARCH_CANDIDATES', 1, 100_000, 1000),
  TENANT_STATEMENT_TIMEOUT_MS: int('TENANT_STATEMENT_TIMEOUT_MS', 0, 3_600_000, 5000),
  TENANT_IDLE_IN_TRANSACTION_MS: int('TENANT_IDLE_IN_TRANSACTION_MS', 0, 3_600_000, 10000),
  TENANT_MAX_CONCURRENT: int('TENANT_MAX_CONCURRENT', 0, 500, 4),
  TENANT_TURN_WAIT_MS: int('TENANT_TURN_WAIT_MS', 0, 60_000, 5000),
  EXPORT_STATEMENT_TIMEOUT_MS: int('EXPORT_STATEMENT_TIMEOUT_MS', 0, 3_600_000, 60000),
  EXPORT_SPOOL_BUDGET_MB: int('EXPORT_SPOOL_BUDGET_MB', 1, 1_048_576, 1024),
  EXPORT_SPOOL_DIR: z
    .string()
    .optional()
    .transform((v) => (v ? path.resolve(v) : undefined)),
  EXPORT_DEADLINE_SECONDS: int('EXPORT_DEADLINE_SECONDS', 1, 86400, 600),
  BACKUP_DIR: z
    .string()
    .optional()
    .transform((v) => (v ? path.resolve(v) : undefined)),
  BACKUP_LOCK_TIMEOUT_MS: int('BACKUP_LOCK_TIMEOUT_MS', 1, 600_000, 5000),
  BACKUP_KEEP_COUNT: int('BACKUP_KEEP_COUNT', 1, 100_000, 7),
  BACKUP_KEEP_DAYS: int('BACKUP_KEEP_DAYS', 1, 36500, 30),
  // The shape only (age1…, comma-separated): backup/context.ts has age itself
  // check each one when it builds the backup context (the kernel loads no age).
  BACKUP_AGE_RECIPIENTS: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const recipients = (v ?? '')
        .split(',')
        .map((r) => r.trim())
        .filter((r) => r !== '');
      const bad = recipients.find((r) => !/^age1[a-z0-9]{20,}$/.test(r));
      if (bad !== undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `must be age recipients (age1…, as \`age-keygen -y\` prints), separated by commas (got "${bad.slice(0, 20)}${bad.length > 20 ? '…' : ''}")`,
        });
        return z.NEVER;
      }
      return recipients;
    }),
  BACKUP_AGE_IDENTITY_FILE: z
    .string()
    .optional()
    .transform((v) => (v ? path.resolve(v) : undefined)),
  RESTORE_KEEP_PREVIOUS_HOURS: int('RESTORE_KEEP_PREVIOUS_HOURS', 0, 87_600, 24),
  JOBS_IN_SERVER: bool(true),
  JOB_HISTORY_DAYS: int('JOB_HISTORY_DAYS', 1, 36500, 400),
  STATS_SCHEDULE: cron('*/15 * * * *'),
  AUDIT_PRUNE_SCHEDULE: cron('17 3 * * *'),
  BACKUP_SCHEDULE: cron('23 2 * * *'),
  BACKUP_CONCURRENCY: int('BACKUP_CONCURRENCY', 1, 32, 2),
  RESTORE_CHECK_SCHEDULE: cron('43 4 * * *'),
  RESTORE_CHECK_SAMPLE: int('RESTORE_CHECK_SAMPLE', 1, 1000, 3),
  LIFECYCLE_SCHEDULE: cron('37 * * * *'),
  INACTIVE_AFTER_DAYS: int('INACTIVE_AFTER_DAYS', 0, 36500, 90),
  SUSPEND_AFTER_DAYS: int('SUSPEND_AFTER_DAYS', 1, 36500, 120),
  DROP_AFTER_SUSPENDED_DAYS: int('DROP_AFTER_SUSPENDED_DAYS', 0, 36500, 90),
  SUPPORT_CONTACT: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const text = v?.trim() ?? '';
      if (text.length > 200 || /\p{Cc}/u.test(text)) {
        ctx.addIssue({ code: 'custom', message: 'must be one line of at most 200 characters' });
        return z.NEVER;
      }
      return text || undefined;
    }),
  METRICS_TOKEN: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return undefined;
      if (v.length < 32 || !/^[\x21-\x7e]+$/.test(v)) {
        ctx.addIssue({
          code: 'custom',
          message: 'must be at least 32 printable characters without spaces (e.g. `openssl rand -hex 32`)',
        });
        return z.NEVER;
      }
      return v;
    }),
  METRICS_PORT: int('METRICS_PORT', 0, 65535, 0),
  ADMIN_REAUTH_MINUTES: int('ADMIN_REAUTH_MINUTES', 1, 1440, 10),
  THREAT_WINDOW_MINUTES: int('THREAT_WINDOW_MINUTES', 1, 1440, 10),
  THREAT_FAILED_SIGNINS: int('THREAT_FAILED_SIGNINS', 2, 100_000, 10),
  THREAT_NOT_FOUND_BURST: int('THREAT_NOT_FOUND_BURST', 2, 100_000, 30),
  THREAT_REJECTED_BURST: int('THREAT_REJECTED_BURST', 2, 100_000, 20),
});

export type Config = z.output<typeof schema>;

/** Parses the environment; throws ConfigError naming the first bad setting. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const result = schema.safeParse(env);
  if (result.success) {
    const c = result.data;
    if (c.INACTIVE_AFTER_DAYS > 0 && c.SUSPEND_AFTER_DAYS <= c.INACTIVE_AFTER_DAYS)
      throw new ConfigError(
        'SUSPEND_AFTER_DAYS',
        `must be more than INACTIVE_AFTER_DAYS (${c.INACTIVE_AFTER_DAYS}), so that people are warned before their workspace is suspended (got ${c.SUSPEND_AFTER_DAYS})`,
      );
    return c;
  }
  const issue = result.error.issues[0];
  const setting = String(issue?.path[0] ?? 'configuration');
  throw new ConfigError(setting, issue?.message ?? 'is invalid');
}

/** Every setting the schema reads, in its order: each must have a SETTINGS entry (a test checks). */
export const SETTING_NAMES: readonly (keyof Config)[] = Object.keys(schema.shape) as (keyof Config)[];

/**
 * What each setting means, for people. docs/CONFIGURATION.md's table is generated from this
 * list (`npm run docs:config`), and test/kernel/config-doc.test.ts fails when they disagree.
 * `fallback` is the value used when the setting is unset; Markdown is allowed in both texts.
 */
export const SETTINGS: ReadonlyArray<{ name: keyof Config; fallback: string; meaning: string }> = [
  {
    name: 'DATABASE_URL',
    fallback: '(embedded)',
    meaning:
      'PostgreSQL to use (`postgres://user:password@host:5432/db`); unset runs the embedded one in `DATA_DIR`; its role needs `CREATEROLE` ([OPERATIONS.md](OPERATIONS.md))',
  },
  {
    name: 'DIRECT_DATABASE_URL',
    fallback: '(DATABASE_URL)',
    meaning:
      'the same database without a transaction pooler in between, for what needs a session of its own: the job queue (pg-boss) and job locks, the audit sealer, backups and restores, fleet migrations and every CLI command; set it when `DATABASE_URL` points at PgBouncer in transaction mode ([SCALING.md](SCALING.md))',
  },
  {
    name: 'REDIS_URL',
    fallback: '(none)',
    meaning:
      'Redis for sessions, rate limits, the account lockout and the per-workspace export and search slots; unset keeps sessions in PostgreSQL and the counts in process memory (one instance only)',
  },
  { name: 'PORT', fallback: '3000', meaning: 'HTTP port (1 to 65535)' },
  { name: 'HOST', fallback: '127.0.0.1', meaning: 'HTTP listen address' },
  {
    name: 'DATA_DIR',
    fallback: './.data',
    meaning:
      'where the embedded PostgreSQL (`pg/`, `embedded-postgres.json`), the generated session secret and the generated audit signing key live',
  },
  { name: 'DB_POOL_SIZE', fallback: '10', meaning: "connections in each process's pool (1 to 500)" },
  {
    name: 'DB_CONNECT_TIMEOUT_MS',
    fallback: '5000',
    meaning:
      'how long a request waits for a pooled database connection (a free one, or a new one to open) before it gets 503 `database_unavailable` with `Retry-After` (100 to 600000)',
  },
  {
    name: 'SHUTDOWN_DRAIN_MS',
    fallback: '0',
    meaning:
      'on SIGTERM, how long the server keeps listening while `/readyz` answers 503 `draining` and new requests get 503 `shutting_down`, so a load balancer stops sending work before the port closes; requests in flight then get up to 10 s to finish',
  },
  {
    name: 'MIGRATION_CONCURRENCY',
    fallback: '4',
    meaning: 'tenants migrated at once by `enclave tenants migrate` (1 to 64; `--concurrency` overrides it)',
  },
  {
    name: 'EMBEDDED_PG_PORT',
    fallback: '54329',
    meaning: 'port of the embedded PostgreSQL (127.0.0.1 only; 1024 to 65535)',
  },
  {
    name: 'TENANT_CACHE_MS',
    fallback: '2000',
    meaning:
      "how long a tenant's state is cached per process; a suspension takes effect within this (0 to 60000)",
  },
  {
    name: 'TENANT_CACHE_SIZE',
    fallback: '10000',
    meaning:
      'tenants each process remembers: their cached state (`TENANT_CACHE_MS`) and when it last wrote their `last_active_at`; the longest unread forgotten first (read again on their next request)',
  },
  {
    name: 'TENANT_QUOTA_MB',
    fallback: '100',
    meaning:
      'storage each workspace may use, in MB of 1,000,000 bytes (note and task text, rendered note HTML, 100 bytes per item); a write past it is 413 `quota_exceeded`; `0`: no limit (usage is still counted and shown)',
  },
  {
    name: 'LOG_LEVEL',
    fallback: 'info',
    meaning: '`error`, `warn`, `info` or `debug` (JSON lines on stdout)',
  },
  {
    name: 'TENANT_MIGRATIONS_DIR',
    fallback: './migrations/tenant',
    meaning: 'tenant migration templates (for tests and staging)',
  },
  {
    name: 'SESSION_SECRET',
    fallback: '(generated)',
    meaning:
      'signs session cookies and keys the anonymous CSRF tokens and the email hashes of the lockout and the audit trail (32+ characters, e.g. `openssl rand -base64 48`); generated into `DATA_DIR/session-secret` when unset; set the same value on every instance',
  },
  {
    name: 'SESSION_IDLE_MINUTES',
    fallback: '30',
    meaning: 'a session ends after this long without a request',
  },
  {
    name: 'SESSION_ABSOLUTE_HOURS',
    fallback: '12',
    meaning: 'a session ends this long after sign-in, active or not',
  },
  {
    name: 'SESSION_TOUCH_CACHE',
    fallback: '100000',
    meaning:
      'sessions whose idle timer this process remembers renewing: each is renewed in the store at most once per a tenth of `SESSION_IDLE_MINUTES` (at most a minute) instead of on every request; oldest forgotten first (`0`: renew on every request)',
  },
  {
    name: 'TRUST_PROXY',
    fallback: 'false',
    meaning:
      'behind a TLS proxy: hops or subnets (`1`, `loopback, 10.0.0.0/8`); client IPs and `Secure` cookies come from it',
  },
  {
    name: 'PUBLIC_URL',
    fallback: 'http://HOST:PORT',
    meaning: 'the address people use; the setup link in the log points there',
  },
  {
    name: 'AUDIT_SIGNING_KEY_FILE',
    fallback: 'DATA_DIR/audit-signing-key.pem',
    meaning:
      'Ed25519 private key (PKCS#8 PEM) that signs audit checkpoints; the default is generated on first start (mode 0600), a configured file must exist; give every instance the same file',
  },
  {
    name: 'AUDIT_SEAL_INTERVAL_SECONDS',
    fallback: '5',
    meaning:
      'how often the audit inbox is sealed into the hash chains (one seal at a time across all instances); `0` turns the in-process scheduler off (then run `enclave audit seal`)',
  },
  {
    name: 'AUDIT_RETENTION_DAYS',
    fallback: '2557',
    meaning:
      'audit payloads older than this (about seven years) are pruned once a day, hashes kept; never for a tenant under legal hold',
  },
  {
    name: 'AUDIT_READS',
    fallback: 'false',
    meaning:
      '`true`: every successful read of workspace data (a GET on the workspace API or pages) is audited too, one `workspace.read` event per request',
  },
  {
    name: 'AUDIT_CONTENT',
    fallback: 'hash',
    meaning:
      '`hash`: workspace text in audit events (note titles, bodies, tags; task titles) is recorded as `{ length, sha256 }`, unreadable to auditors; `full`: verbatim up to 1,000 characters, readable by auditors and kept in the sealed trail after deletion',
  },
  {
    name: 'TENANT_MAX_EXPORTS',
    fallback: '2',
    meaning: 'exports one workspace may run at once (shared across instances with `REDIS_URL`); more get 429',
  },
  {
    name: 'TENANT_MAX_SEARCHES',
    fallback: '4',
    meaning:
      'searches one workspace may run at once (shared across instances with `REDIS_URL`); more get 429',
  },
  {
    name: 'TENANT_SEARCHES_PER_MINUTE',
    fallback: '60',
    meaning:
      'searches one workspace may start per minute (counted in 10-second windows of a sixth each, shared across instances with `REDIS_URL`; `0`: no limit); more get 429 with `Retry-After`',
  },
  {
    name: 'SEARCH_CANDIDATES',
    fallback: '1000',
    meaning:
      'matches one search ranks: the most recently edited this many; a search with more says so (`cutShort`) and asks for another word',
  },
  {
    name: 'TENANT_STATEMENT_TIMEOUT_MS',
    fallback: '5000',
    meaning:
      '`statement_timeout` of workspace request transactions (`0`: none); a cancelled statement is a 503 `query_timeout`',
  },
  {
    name: 'TENANT_IDLE_IN_TRANSACTION_MS',
    fallback: '10000',
    meaning:
      '`idle_in_transaction_session_timeout` of workspace request transactions (`0`: none); PostgreSQL closes the connection',
  },
  {
    name: 'TENANT_MAX_CONCURRENT',
    fallback: '4',
    meaning:
      "units of work (requests' transactions) one workspace may run at once in each process (`0`: no limit); more wait their turn, so one tenant cannot hold every pooled connection; keep it below `DB_POOL_SIZE`",
  },
  {
    name: 'TENANT_TURN_WAIT_MS',
    fallback: '5000',
    meaning:
      'how long a unit of work waits for its workspace to have a turn free before the request gets 429 `tenant_busy`',
  },
  {
    name: 'EXPORT_STATEMENT_TIMEOUT_MS',
    fallback: '60000',
    meaning: '`statement_timeout` of the transaction that reads a workspace export (`0`: none)',
  },
  {
    name: 'EXPORT_SPOOL_BUDGET_MB',
    fallback: '1024',
    meaning:
      'disk all exports of one process may spool at once; an export that would go over is refused with 503',
  },
  {
    name: 'EXPORT_SPOOL_DIR',
    fallback: '(system temp dir)',
    meaning:
      'an existing directory for export spool files (each export in a private subdirectory, removed at the end)',
  },
  {
    name: 'EXPORT_DEADLINE_SECONDS',
    fallback: '600',
    meaning: 'an export download still running after this long is cut off and its files removed',
  },
  {
    name: 'BACKUP_DIR',
    fallback: 'DATA_DIR/backups',
    meaning:
      'where tenant backup archives are written (made with mode 0700, each archive 0600); `enclave backup create --out` overrides it for one run ([BACKUP.md](BACKUP.md))',
  },
  {
    name: 'BACKUP_LOCK_TIMEOUT_MS',
    fallback: '5000',
    meaning:
      "`lock_timeout` of a backup and a restore: how long they wait for the tenant's lock and tables before giving up, changing nothing (1 to 600000)",
  },
  {
    name: 'BACKUP_KEEP_COUNT',
    fallback: '7',
    meaning:
      "`enclave backup prune` keeps each tenant's newest this many good backups; never the last good one, never under legal hold",
  },
  {
    name: 'BACKUP_KEEP_DAYS',
    fallback: '30',
    meaning:
      '`enclave backup prune` deletes good backups older than this many days (the last good one of a tenant is always kept)',
  },
  {
    name: 'BACKUP_AGE_RECIPIENTS',
    fallback: '(not encrypted)',
    meaning:
      'age recipients (`age1…`, comma-separated): every archive is encrypted to them; restoring or verifying one then needs `BACKUP_AGE_IDENTITY_FILE`',
  },
  {
    name: 'BACKUP_AGE_IDENTITY_FILE',
    fallback: '(none)',
    meaning:
      'an age identity file (`age-keygen` output, mode 0600): decrypts encrypted archives for restore and verify; keep it off the backup host when you can',
  },
  {
    name: 'RESTORE_KEEP_PREVIOUS_HOURS',
    fallback: '24',
    meaning:
      'after an in-place restore, the previous schema is kept aside this long, then dropped by `enclave backup prune` (0 to 87600)',
  },
  {
    name: 'JOBS_IN_SERVER',
    fallback: 'true',
    meaning:
      'run the scheduled jobs inside the server too; `false` leaves them to `enclave worker` processes ([JOBS.md](JOBS.md))',
  },
  {
    name: 'JOB_HISTORY_DAYS',
    fallback: '400',
    meaning: 'job runs are kept in the job history (`control.job_runs`) this many days',
  },
  {
    name: 'STATS_SCHEDULE',
    fallback: '*/15 * * * *',
    meaning:
      'when the per-schema statistics are collected (cron, UTC, minute precision; `off` turns the schedule off) ([STATISTICS.md](STATISTICS.md))',
  },
  {
    name: 'AUDIT_PRUNE_SCHEDULE',
    fallback: '17 3 * * *',
    meaning: 'when audit retention (`AUDIT_RETENTION_DAYS`) runs (cron, UTC; `off`)',
  },
  {
    name: 'BACKUP_SCHEDULE',
    fallback: '23 2 * * *',
    meaning:
      'when every live tenant is backed up and old backups pruned (cron, UTC; `off`) ([BACKUP.md](BACKUP.md))',
  },
  {
    name: 'BACKUP_CONCURRENCY',
    fallback: '2',
    meaning: 'scheduled tenant backups each worker process runs at once (1 to 32)',
  },
  {
    name: 'RESTORE_CHECK_SCHEDULE',
    fallback: '43 4 * * *',
    meaning:
      'when the restore check restores the latest backup of a sample of tenants into scratch and compares it (cron, UTC; `off`)',
  },
  {
    name: 'RESTORE_CHECK_SAMPLE',
    fallback: '3',
    meaning: 'tenants the restore check takes each run (1 to 1000), those checked longest ago first',
  },
  {
    name: 'LIFECYCLE_SCHEDULE',
    fallback: '37 * * * *',
    meaning: 'when the inactive-tenant lifecycle runs (cron, UTC; `off`) ([LIFECYCLE.md](LIFECYCLE.md))',
  },
  {
    name: 'INACTIVE_AFTER_DAYS',
    fallback: '90',
    meaning:
      'a tenant without activity this many days is flagged and its people see a notice at sign-in; `0` turns the lifecycle off',
  },
  {
    name: 'SUSPEND_AFTER_DAYS',
    fallback: '120',
    meaning: 'a tenant without activity this many days is suspended (more than `INACTIVE_AFTER_DAYS`)',
  },
  {
    name: 'DROP_AFTER_SUSPENDED_DAYS',
    fallback: '90',
    meaning:
      'this many days after the lifecycle suspended a tenant, a final backup is taken and verified by a restore, then the schema and role are dropped; `0`: never dropped by the lifecycle',
  },
  {
    name: 'SUPPORT_CONTACT',
    fallback: '(none)',
    meaning:
      'whom people of a suspended workspace should contact (one line, e.g. an email address), shown on the suspended page',
  },
  {
    name: 'METRICS_TOKEN',
    fallback: '(none)',
    meaning:
      'a scraper sends it as `Authorization: Bearer …` to read `GET /metrics` (32+ characters); unset: admins only ([METRICS.md](METRICS.md))',
  },
  {
    name: 'METRICS_PORT',
    fallback: '0',
    meaning: 'also serve `/metrics` (token required) on this port of `HOST`; `0`: not on a separate port',
  },
  {
    name: 'ADMIN_REAUTH_MINUTES',
    fallback: '10',
    meaning:
      "a destructive admin action (restore, suspend, deactivate, role change, MFA reset, ending sessions) needs the admin's password (or MFA code) confirmed within this many minutes ([ADMIN.md](ADMIN.md))",
  },
  {
    name: 'THREAT_WINDOW_MINUTES',
    fallback: '10',
    meaning: 'the window the burst thresholds below count in (threat flags, [ADMIN.md](ADMIN.md))',
  },
  {
    name: 'THREAT_FAILED_SIGNINS',
    fallback: '10',
    meaning:
      'failed sign-ins for one account or from one address within the window that raise a flag (a lockout always does)',
  },
  {
    name: 'THREAT_NOT_FOUND_BURST',
    fallback: '30',
    meaning: '404s on workspace ids for one session within the window that raise an enumeration flag',
  },
  {
    name: 'THREAT_REJECTED_BURST',
    fallback: '20',
    meaning: 'rejected API tokens or CSRF failures from one address within the window that raise a flag',
  },
];
