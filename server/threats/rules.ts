// The threat rules (docs/ADMIN.md, "Threats"): what raises a flag, about
// what subject, at which severity. Burst rules count hits per subject within
// THREAT_WINDOW_MINUTES and raise a flag when the count reaches their
// threshold; instant rules raise one at the first hit.
import type { Config } from '../../kernel/config.ts';

export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Counted within the window: a flag when a subject reaches the threshold. */
export const BURST_RULES = ['failed_signins', 'id_enumeration', 'rejected_tokens', 'csrf_failures'] as const;
export type BurstRule = (typeof BURST_RULES)[number];

/** A flag at the first hit. */
export const INSTANT_RULES = ['lockout', 'new_address_signin', 'permission_denied'] as const;
export type InstantRule = (typeof INSTANT_RULES)[number];

export type Rule = BurstRule | InstantRule;
export const RULES: readonly Rule[] = [...BURST_RULES, ...INSTANT_RULES];

/** Severity of each rule's flags. */
export const SEVERITY: Readonly<Record<Rule, Severity>> = {
  failed_signins: 'medium',
  id_enumeration: 'medium',
  rejected_tokens: 'medium',
  csrf_failures: 'medium',
  lockout: 'high',
  new_address_signin: 'medium',
  // A tenant role refused by PostgreSQL: a bug, or an attempt to reach another tenant.
  permission_denied: 'critical',
};

/** What each rule means, for the page and the docs. */
export const RULE_TITLES: Readonly<Record<Rule, string>> = {
  failed_signins: 'Burst of failed sign-ins',
  id_enumeration: 'Many missing workspace ids from one session',
  rejected_tokens: 'Burst of rejected API tokens',
  csrf_failures: 'Burst of CSRF failures',
  lockout: 'Account locked after failed sign-ins',
  new_address_signin: 'Admin or auditor signed in from a new address',
  permission_denied: 'Permission denied inside a tenant unit of work',
};

export interface ThreatRules {
  windowMs: number;
  thresholds: Readonly<Record<BurstRule, number>>;
  /** How far back a privileged account's earlier sign-in addresses count as known. */
  knownAddressDays: number;
}

export const KNOWN_ADDRESS_DAYS = 30;

/** The rules' numbers from the settings (THREAT_*). */
export function threatRules(
  config: Pick<
    Config,
    'THREAT_WINDOW_MINUTES' | 'THREAT_FAILED_SIGNINS' | 'THREAT_NOT_FOUND_BURST' | 'THREAT_REJECTED_BURST'
  >,
): ThreatRules {
  return {
    windowMs: config.THREAT_WINDOW_MINUTES * 60_000,
    thresholds: {
      failed_signins: config.THREAT_FAILED_SIGNINS,
      id_enumeration: config.THREAT_NOT_FOUND_BURST,
      rejected_tokens: config.THREAT_REJECTED_BURST,
      csrf_failures: config.THREAT_REJECTED_BURST,
    },
    knownAddressDays: KNOWN_ADDRESS_DAYS,
  };
}

/**
 * Whether the n-th hit of a window is written to the flag: at the threshold
 * (the flag opens, or an open one is bumped), then at twice, four times ...
 * the threshold. A flood of hits thus costs a handful of writes, not one each;
 * the count written is the hits seen so far in the window.
 */
export function flushesAt(n: number, threshold: number): boolean {
  if (n < threshold || n % threshold !== 0) return false;
  const k = n / threshold;
  return (k & (k - 1)) === 0;
}
