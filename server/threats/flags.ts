// Reading and acknowledging threat flags (the admin API and page). An
// acknowledgement closes the flag with the admin's note, in one transaction
// with its `threat.acknowledge` event in the platform audit chain; the next
// hit of the same rule and subject opens a new flag.
import { type AuditBy, record } from '../../kernel/audit-inbox.ts';
import { type Pool, run, transaction } from '../../kernel/db.ts';
import { ConflictError, NotFoundError } from '../app-errors.ts';
import * as sql from './detector-sql.ts';
import { RULE_TITLES, type Rule, type Severity } from './rules.ts';

export interface FlagView {
  id: string;
  rule: string;
  title: string;
  severity: Severity;
  subject: string;
  firstSeen: string;
  lastSeen: string;
  count: number;
  details: Record<string, unknown>;
  state: 'open' | 'acknowledged';
  acknowledgedAt: string | null;
  acknowledgedBy: { id: string; email: string | null } | null;
  note: string | null;
}

export const FLAG_ID = /^[1-9]\d{0,17}$/;

export function flagView(row: sql.FlagRow): FlagView {
  return {
    id: row.id,
    rule: row.rule,
    title: RULE_TITLES[row.rule as Rule] ?? row.rule,
    severity: row.severity,
    subject: row.subject,
    firstSeen: row.first_seen.toISOString(),
    lastSeen: row.last_seen.toISOString(),
    count: Number(row.count),
    details: row.details,
    state: row.acknowledged_at ? 'acknowledged' : 'open',
    acknowledgedAt: row.acknowledged_at?.toISOString() ?? null,
    acknowledgedBy: row.acknowledged_by
      ? { id: row.acknowledged_by, email: row.acknowledged_by_email }
      : null,
    note: row.ack_note,
  };
}

export interface FlagPage {
  flags: FlagView[];
  nextCursor: string | null;
}

export async function listThreatFlags(pool: Pool, filter: sql.ListFilter): Promise<FlagPage> {
  const { rows } = await run<sql.FlagRow>(pool, sql.listFlags(filter));
  const page = rows.slice(0, filter.limit);
  const more = rows.length > filter.limit;
  return { flags: page.map(flagView), nextCursor: more ? (page.at(-1)?.id ?? null) : null };
}

export async function openFlagsBySeverity(pool: Pool): Promise<Record<Severity, number>> {
  const out: Record<Severity, number> = { low: 0, medium: 0, high: 0, critical: 0 };
  const { rows } = await run<{ severity: Severity; n: number }>(pool, sql.openBySeverity());
  for (const r of rows) out[r.severity] = r.n;
  return out;
}

/** Acknowledges flag `id` with `note`: NotFoundError if there is none, ConflictError if it is not open. */
export async function acknowledgeThreatFlag(
  pool: Pool,
  id: string,
  note: string,
  by: AuditBy & { actor: { id?: string | null } },
): Promise<FlagView> {
  if (!FLAG_ID.test(id)) throw new NotFoundError('No such threat flag.');
  const userId = by.actor.id;
  if (!userId) throw new Error('an acknowledgement needs the admin who made it');
  return transaction(pool, async (client) => {
    const { rows } = await run<{
      id: string;
      rule: string;
      severity: string;
      subject: string;
      count: string;
    }>(client, sql.acknowledgeFlag(id, userId, note));
    const done = rows[0];
    if (!done) {
      const exists = (await run<sql.FlagRow>(client, sql.flagById(id))).rows[0];
      if (!exists) throw new NotFoundError('No such threat flag.');
      throw new ConflictError('This flag is already acknowledged.');
    }
    await record(client, by, {
      tenantId: null,
      action: 'threat.acknowledge',
      resource: { type: 'threat_flag', id: done.id },
      outcome: 'success',
      code: done.rule,
      details: {
        rule: done.rule,
        severity: done.severity,
        subject: done.subject,
        count: Number(done.count),
        note,
      },
    });
    const row = (await run<sql.FlagRow>(client, sql.flagById(id))).rows[0] as sql.FlagRow;
    return flagView(row);
  });
}
