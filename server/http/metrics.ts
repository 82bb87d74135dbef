// The Prometheus metrics of one server (docs/METRICS.md): a registry of its
// own (never prom-client's global one: tests run several servers in one
// process), filled from three places:
// - the requests this instance answered (instrument(): every request, by
//   method, route PATTERN and status, and its latency);
// - this process (prom-client's default metrics, prefixed `enclave_`) and its
//   database pools (read from the pool objects, no query);
// - the control plane, shared by every instance: tenants by state, the audit
//   backlog and last seal, the job-run history, backup ages, threat flags. Read at scrape
//   time with one short query per area, at most once per `cacheMs` however
//   many scrapers ask, and never one series per tenant (10,000 tenants would
//   be 10,000 series per metric).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Pool } from '../../kernel/db.ts';
import type { Logger } from '../../kernel/logger.ts';
import {
  type AuditRow,
  auditState,
  type BackupAgeRow,
  backupAges,
  type JobRow,
  jobState,
  type TenantStateRow,
  type ThreatFlagRow,
  tenantsByState,
  threatFlags,
} from './metrics-sql.ts';

export const METRICS_PREFIX = 'enclave_';
/** How long one read of the control plane serves scrapes. */
export const DEFAULT_CACHE_MS = 5000;
/** enclave_job_runs_last_day counts runs started within this window. */
export const JOB_WINDOW_SECONDS = 86_400;
/** Every state control.tenants allows: each is reported, 0 included, so a state never just vanishes. */
const TENANT_STATES = ['provisioning', 'active', 'suspended', 'archived', 'deleted'] as const;
const JOB_OUTCOMES = ['running', 'succeeded', 'failed', 'interrupted'] as const;
/** Threat flag severities and rules (server/threats/rules.ts): each reported, 0 included. */
const THREAT_SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
const THREAT_RULES = [
  'failed_signins',
  'id_enumeration',
  'rejected_tokens',
  'csrf_failures',
  'lockout',
  'new_address_signin',
  'permission_denied',
] as const;
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The route label of a request no route matched (404s, static files, refusals before routing). */
export const UNMATCHED = 'unmatched';

export interface MetricsOptions {
  /** The control pool: the control-plane reads run on it. */
  pool: Pool;
  /** Pools whose usage is reported, by name (e.g. `{ control, orm }`). */
  pools: Record<string, Pool>;
  log: Logger;
  /** METRICS_TOKEN: a scraper's bearer token; undefined: only signed-in admins read /metrics. */
  token?: string;
  cacheMs?: number;
  /** Milliseconds since the epoch (ages are computed at scrape time from cached timestamps). */
  now?: () => number;
}

interface Snapshot {
  ok: boolean;
  seconds: number;
  tenants?: TenantStateRow[];
  audit?: AuditRow;
  backups?: BackupAgeRow;
  jobs?: JobRow[];
  threats?: ThreatFlagRow[];
}

type RoutedRequest = IncomingMessage & { route?: { path?: unknown }; baseUrl?: string };

export class Metrics {
  readonly registry = new Registry();
  readonly #options: Required<Omit<MetricsOptions, 'token'>>;
  readonly #tokenDigest: Buffer | undefined;
  readonly #requests: Counter<'method' | 'route' | 'status'>;
  readonly #latency: Histogram<'method' | 'route'>;
  #snapshot: { at: number; value: Promise<Snapshot> } | undefined;

  constructor(options: MetricsOptions) {
    this.#options = { cacheMs: DEFAULT_CACHE_MS, now: Date.now, ...options };
    this.#tokenDigest = options.token === undefined ? undefined : digest(options.token);
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: METRICS_PREFIX });
    this.#requests = new Counter({
      name: `${METRICS_PREFIX}http_requests_total`,
      help: 'HTTP requests answered by this instance, by method, route pattern and status ("aborted": the client left first).',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.#latency = new Histogram({
      name: `${METRICS_PREFIX}http_request_duration_seconds`,
      help: 'Time from a request arriving to its response being sent (or the client leaving), by method and route pattern.',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.#poolGauges(registers);
    this.#controlPlaneGauges(registers);
    this.#threatGauges(registers);
  }

  // --- Threat flags (control.threat_flags, docs/ADMIN.md) ----------------------

  #threatGauges(registers: Registry[]): void {
    const self = this;
    const sum = (rows: ThreatFlagRow[], key: 'rule' | 'severity', value: string, field: 'open' | 'total') =>
      rows.filter((r) => r[key] === value).reduce((n, r) => n + r[field], 0);
    new Gauge<'severity'>({
      name: `${METRICS_PREFIX}threat_flags_open`,
      help: 'Threat flags not yet acknowledged, by severity (every severity, 0 included).',
      labelNames: ['severity'],
      registers,
      async collect() {
        const s = await self.#read();
        this.reset();
        if (!s.threats) return;
        for (const severity of THREAT_SEVERITIES)
          this.set({ severity }, sum(s.threats, 'severity', severity, 'open'));
      },
    });
    new Gauge<'rule'>({
      name: `${METRICS_PREFIX}threat_flags_total`,
      help: 'Threat flags ever raised, open or acknowledged, by rule (every rule, 0 included); a bump of an open flag is not a new one.',
      labelNames: ['rule'],
      registers,
      async collect() {
        const s = await self.#read();
        this.reset();
        if (!s.threats) return;
        const rules = new Set<string>([...THREAT_RULES, ...s.threats.map((r) => r.rule)]);
        for (const rule of rules) this.set({ rule }, sum(s.threats, 'rule', rule, 'total'));
      },
    });
  }

  /** Whether METRICS_TOKEN is set, i.e. scrapers can read without a session. */
  get acceptsToken(): boolean {
    return this.#tokenDigest !== undefined;
  }

  /** Constant-time comparison of a presented bearer token with METRICS_TOKEN (SHA-256 digests: equal lengths). */
  tokenMatches(presented: string | undefined): boolean {
    if (this.#tokenDigest === undefined || presented === undefined) return false;
    return timingSafeEqual(digest(presented), this.#tokenDigest);
  }

  /**
   * Wraps the server's request handler so every request is counted, whatever
   * answers it (health checks and body-parser refusals included). The route
   * label is read when the response is done: Express has set `req.route` and
   * `req.baseUrl` on this same object by then.
   */
  instrument<H extends (req: IncomingMessage, res: ServerResponse) => void>(handler: H) {
    return (req: IncomingMessage, res: ServerResponse): void => {
      this.observe(req, res);
      handler(req, res);
    };
  }

  /** Counts this request when its response is done (finished or aborted). */
  observe(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    res.once('close', () => {
      const method = METHODS.has(req.method ?? '') ? (req.method as string) : 'other';
      const route = routeLabel(req as RoutedRequest);
      const status = res.writableFinished ? String(res.statusCode) : 'aborted';
      this.#requests.inc({ method, route, status });
      this.#latency.observe({ method, route }, (performance.now() - started) / 1000);
    });
  }

  /** The exposition text and its content type (text/plain; version=0.0.4). */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  // --- Pools: read from the pool objects at scrape time, no query -------------

  #poolGauges(registers: Registry[]): void {
    const pools = Object.entries(this.#options.pools);
    const gauge = (name: string, help: string, read: (p: Pool) => number) =>
      new Gauge({
        name: `${METRICS_PREFIX}${name}`,
        help,
        labelNames: ['pool'],
        registers,
        collect() {
          for (const [pool, p] of pools) this.set({ pool }, read(p));
        },
      });
    gauge('db_pool_connections', 'Connections the pool holds open (busy and idle).', (p) => p.totalCount);
    gauge('db_pool_idle_connections', 'Open connections not checked out.', (p) => p.idleCount);
    gauge(
      'db_pool_waiting_clients',
      'Callers waiting for a connection (the pool is at its maximum).',
      (p) => p.waitingCount,
    );
    gauge('db_pool_max_connections', 'The most connections the pool opens.', (p) => p.options.max ?? 10);
  }

  // --- The control plane: the same on every instance --------------------------

  #controlPlaneGauges(registers: Registry[]): void {
    const self = this;
    // Labelled: fill sets the series there are (none after a failed read).
    const labelled = <L extends string>(
      name: string,
      help: string,
      labelNames: L[],
      fill: (g: Gauge<L>, s: Snapshot) => void,
    ) =>
      new Gauge<L>({
        name: `${METRICS_PREFIX}${name}`,
        help,
        labelNames,
        registers,
        async collect() {
          const s = await self.#read();
          this.reset();
          fill(this, s);
        },
      });
    // One value, or none: absent rather than a 0 that would read as "all fine".
    const single = (name: string, help: string, read: (s: Snapshot, now: number) => number | undefined) =>
      new OptionalGauge({
        name: `${METRICS_PREFIX}${name}`,
        help,
        registers,
        async collect() {
          const value = read(await self.#read(), self.#options.now());
          const gauge = this as OptionalGauge;
          gauge.present = value !== undefined;
          if (value !== undefined) gauge.set(value);
        },
      });

    single(
      'metrics_database_read_ok',
      '1 if the last read of the control plane for metrics worked, else 0 (the control-plane metrics are then absent).',
      (s) => (s.ok ? 1 : 0),
    );
    single(
      'metrics_database_read_seconds',
      'How long the last read of the control plane for metrics took.',
      (s) => s.seconds,
    );

    labelled('tenants', 'Tenants by state (every state, 0 included).', ['state'], (g, s) => {
      if (!s.tenants) return;
      for (const state of TENANT_STATES) g.set({ state }, 0);
      for (const row of s.tenants) g.set({ state: row.state }, row.n);
    });

    single(
      'audit_inbox_rows',
      'Audit events written but not yet sealed into the hash chains.',
      (s) => s.audit?.backlog,
    );
    single(
      'audit_inbox_oldest_age_seconds',
      'Age of the oldest unsealed audit event; 0 when the inbox is empty.',
      (s, now) => (s.audit ? (ageSeconds(now, s.audit.oldest) ?? 0) : undefined),
    );
    single(
      'audit_last_seal_timestamp_seconds',
      'When the sealer last sealed events (its newest registry checkpoint); absent before the first seal.',
      (s) => (s.audit?.last_seal ? epochSeconds(s.audit.last_seal) : undefined),
    );

    single(
      'backup_live_tenants',
      'Live tenants (active, suspended, archived): the ones backups are about.',
      (s) => s.backups?.live,
    );
    single(
      'backup_tenants_without_backup',
      'Live tenants with no succeeded backup at all.',
      (s) => s.backups?.without,
    );
    single(
      'backup_oldest_latest_age_seconds',
      "Over live tenants that have a succeeded backup: the age of the oldest one's newest succeeded backup (the most out-of-date tenant). Absent when no tenant has one.",
      (s, now) => ageSeconds(now, s.backups?.oldest_latest ?? null),
    );

    labelled(
      'job_runs_last_day',
      'Job runs started in the last 24 hours, by job and outcome (from the job-run history; fan-outs count one run per tenant).',
      ['job', 'outcome'],
      (g, s) => {
        for (const row of s.jobs ?? []) {
          for (const outcome of JOB_OUTCOMES) g.set({ job: row.job, outcome }, row.recent[outcome] ?? 0);
        }
      },
    );
    labelled(
      'job_last_run_timestamp_seconds',
      'When the newest run of a job with this outcome finished (succeeded or failed); absent if none is in the history.',
      ['job', 'outcome'],
      (g, s) => {
        for (const row of s.jobs ?? []) {
          if (row.last_succeeded_at)
            g.set({ job: row.job, outcome: 'succeeded' }, epochSeconds(row.last_succeeded_at));
          if (row.last_failed_at)
            g.set({ job: row.job, outcome: 'failed' }, epochSeconds(row.last_failed_at));
        }
      },
    );
    labelled(
      'job_last_duration_seconds',
      'How long the newest finished run of a job took (whatever its outcome).',
      ['job'],
      (g, s) => {
        for (const row of s.jobs ?? [])
          if (row.last_seconds !== null) g.set({ job: row.job }, row.last_seconds);
      },
    );
    labelled(
      'job_last_failed',
      '1 if the newest finished run of a job failed or was interrupted, else 0.',
      ['job'],
      (g, s) => {
        for (const row of s.jobs ?? []) {
          if (row.last_outcome) g.set({ job: row.job }, row.last_outcome === 'succeeded' ? 0 : 1);
        }
      },
    );
  }

  /** One read of the control plane, shared by every gauge of a scrape and by scrapes within cacheMs. */
  #read(): Promise<Snapshot> {
    const now = this.#options.now();
    if (this.#snapshot && now - this.#snapshot.at < this.#options.cacheMs) return this.#snapshot.value;
    const value = this.#query();
    this.#snapshot = { at: now, value };
    return value;
  }

  // Sequential on one pool, no transaction: five short statements must not
  // take five connections from a small control pool, nor hold a snapshot.
  async #query(): Promise<Snapshot> {
    const { pool, log } = this.#options;
    const started = performance.now();
    try {
      const tenants = (await pool.query<TenantStateRow>(tenantsByState())).rows;
      const audit = (await pool.query<AuditRow>(auditState())).rows[0];
      const backups = (await pool.query<BackupAgeRow>(backupAges())).rows[0];
      const jobs = (await pool.query<JobRow>(jobState(JOB_WINDOW_SECONDS))).rows;
      const threats = (await pool.query<ThreatFlagRow>(threatFlags())).rows;
      return {
        ok: true,
        seconds: (performance.now() - started) / 1000,
        tenants,
        audit,
        backups,
        jobs,
        threats,
      };
    } catch (err) {
      // Failures are cached too: a database that is down is not asked again on every scrape.
      log.warn('metrics: reading the control plane failed', { error: err });
      return { ok: false, seconds: (performance.now() - started) / 1000 };
    }
  }
}

/**
 * A gauge without labels that can be absent: prom-client always writes a
 * label-less gauge, 0 when unset, which would say "no backlog" or "backed up
 * just now" when the truth is "could not read" or "never".
 */
class OptionalGauge extends Gauge<string> {
  present = false;

  override async get() {
    const metric = await super.get();
    return this.present ? metric : { ...metric, values: [] };
  }
}

/** The route PATTERN a request matched, with its router's base (`/api/v1/notes/:id`), never the raw URL. */
export function routeLabel(req: RoutedRequest): string {
  const pattern = req.route?.path;
  const base = typeof req.baseUrl === 'string' ? req.baseUrl : '';
  if (typeof pattern === 'string') return `${base}${pattern}`;
  if (Array.isArray(pattern)) return `${base}${pattern.map(String).join('|')}`;
  if (pattern instanceof RegExp) return `${base}${String(pattern)}`;
  return UNMATCHED;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function epochSeconds(at: Date): number {
  return at.getTime() / 1000;
}

function ageSeconds(now: number, at: Date | null): number | undefined {
  return at ? Math.max(0, (now - at.getTime()) / 1000) : undefined;
}
