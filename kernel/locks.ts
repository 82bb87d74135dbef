// Advisory lock keys, all in one place so two features never share one by accident.
// Two-int form: (namespace, key). Transaction-scoped (released at COMMIT/ROLLBACK),
// except the tenant's session-level pair below, which a backup holds around its snapshot.

const NAMESPACE_CONTROL = 0x454e4301; // "ENC" + 1
const NAMESPACE_TENANT = 0x454e4302;
const NAMESPACE_AUDIT = 0x454e4303;

export const controlLock = () => ({
  text: 'SELECT pg_advisory_xact_lock($1, 0)',
  values: [NAMESPACE_CONTROL],
});

/** Serialises every schema change of one tenant (provision, migrate, drop, restore). */
export const tenantLock = (tenantId: string) => ({
  text: 'SELECT pg_advisory_xact_lock($1, hashtext($2))',
  values: [NAMESPACE_TENANT, tenantId],
});

/**
 * The same key as tenantLock, held by the session (across transactions) until
 * tenantSessionUnlock or the end of the connection: a backup takes it before
 * it opens its snapshot, so a schema change of that tenant waits for the
 * backup (or the backup for it). Session and transaction advisory locks on one
 * key conflict with each other.
 */
export const tenantSessionLock = (tenantId: string) => ({
  text: 'SELECT pg_advisory_lock($1, hashtext($2))',
  values: [NAMESPACE_TENANT, tenantId],
});

/** Releases tenantSessionLock; true if this session held it. */
export const tenantSessionUnlock = (tenantId: string) => ({
  text: 'SELECT pg_advisory_unlock($1, hashtext($2)) AS unlocked',
  values: [NAMESPACE_TENANT, tenantId],
});

/**
 * Serialises every write to the audit chains and keys (seal, key publish and
 * rotation) across all instances: one sealer at a time, anywhere.
 */
export const auditLock = () => ({
  text: 'SELECT pg_advisory_xact_lock($1, 1)',
  values: [NAMESPACE_AUDIT],
});

/** The same lock, not waited for: true if taken (a sealer that finds another at work can skip its turn). */
export const auditTryLock = () => ({
  text: 'SELECT pg_try_advisory_xact_lock($1, 1) AS locked',
  values: [NAMESPACE_AUDIT],
});

const NAMESPACE_JOBS = 0x454e4304;

/**
 * One run of a scheduled job at a time, anywhere: held by the session for the
 * run (pg-boss's queue policy keeps a second job from starting, this lock also
 * covers `enclave jobs run` and a job left 'active' by a killed process, whose
 * lock PostgreSQL released with its connection). Not waited for.
 */
export const jobTryLock = (job: string) => ({
  text: 'SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked',
  values: [NAMESPACE_JOBS, job],
});

export const jobUnlock = (job: string) => ({
  text: 'SELECT pg_advisory_unlock($1, hashtext($2)) AS unlocked',
  values: [NAMESPACE_JOBS, job],
});

/** Whether some session holds the job's lock now (a run in progress), without taking it. */
export const jobLockHeld = (job: string) => ({
  text: `SELECT EXISTS (
           SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2
             AND classid = $1::int4::oid AND objid = hashtext($2)::oid) AS locked`,
  values: [NAMESPACE_JOBS, job],
});
