// The one place SQL identifiers are made and quoted. Tenant schema and role
// names are generated here, never taken from user input, and checked against
// a pattern before they reach any SQL text.
import { randomBytes } from 'node:crypto';

const TENANT_ID = /^[a-z0-9]{12}$/;
const TENANT_NAME = /^t_[a-z0-9]{12}$/;
const ASIDE_NAME = /^t_[a-z0-9]{12}_p[0-9]{14}[a-z0-9]{4}$/;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

export class InvalidIdentifierError extends Error {
  constructor(what: string, value: string) {
    super(`refusing ${what} ${JSON.stringify(value)}: it does not match the generated-name pattern`);
    this.name = 'InvalidIdentifierError';
  }
}

/** 12 random characters from [a-z0-9]: 62 bits, enough that role names never collide across databases. */
export function newTenantId(): string {
  const bytes = randomBytes(12);
  let id = '';
  for (const b of bytes) id += ALPHABET[b % ALPHABET.length];
  return id;
}

export function isTenantId(value: string): boolean {
  return TENANT_ID.test(value);
}

export function tenantNames(tenantId: string): { schema: string; role: string } {
  if (!isTenantId(tenantId)) throw new InvalidIdentifierError('tenant id', tenantId);
  return { schema: `t_${tenantId}`, role: `t_${tenantId}` };
}

/** Checks a generated tenant schema or role name and returns it unchanged. */
export function checkTenantName(name: string): string {
  if (!TENANT_NAME.test(name)) throw new InvalidIdentifierError('tenant schema/role name', name);
  return name;
}

/**
 * The name a restore gives a tenant's previous schema when it sets it aside:
 * `<schema>_p<UTC yyyymmddhhmmss><4 random>`, e.g. t_abc123def456_p20261202070000x7k2.
 */
export function asideSchemaName(schema: string, at: Date = new Date()): string {
  checkTenantName(schema);
  const stamp = at.toISOString().replace(/\D/g, '').slice(0, 14);
  const bytes = randomBytes(4);
  let suffix = '';
  for (const b of bytes) suffix += ALPHABET[b % ALPHABET.length];
  return checkAsideSchemaName(`${schema}_p${stamp}${suffix}`);
}

/** Checks a set-aside schema name (asideSchemaName's pattern) and returns it unchanged. */
export function checkAsideSchemaName(name: string): string {
  if (!ASIDE_NAME.test(name)) throw new InvalidIdentifierError('set-aside schema name', name);
  return name;
}

/** Quotes any identifier for SQL text (doubles embedded quotes). */
export function ident(name: string): string {
  if (name.length === 0 || name.length > 63 || name.includes('\0')) {
    throw new InvalidIdentifierError('identifier', name);
  }
  return `"${name.replaceAll('"', '""')}"`;
}
