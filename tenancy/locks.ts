// Advisory lock keys, all in one place so two features never share one by accident.
// Two-int form: (namespace, key). Transaction-scoped only: released at COMMIT/ROLLBACK.

const NAMESPACE_CONTROL = 0x454e4301; // "ENC" + 1
const NAMESPACE_TENANT = 0x454e4302;

export const controlLock = () => ({
  text: 'SELECT pg_advisory_xact_lock($1, 0)',
  values: [NAMESPACE_CONTROL],
});

/** Serialises every schema change of one tenant (provision, migrate, drop, restore). */
export const tenantLock = (tenantId: string) => ({
  text: 'SELECT pg_advisory_xact_lock($1, hashtext($2))',
  values: [NAMESPACE_TENANT, tenantId],
});
