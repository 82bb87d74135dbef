-- Two indexes the audit trail's readers need (see docs/BENCHMARKS.md, "Audit
-- trail: sealing").
--
-- The sealer takes inbox rows in (txid, id) order below the snapshot's xmin
-- (audit/chain-sql.ts selectSealable). Without an index in that order every
-- batch scans and sorts the whole inbox: fine while the inbox is a few
-- seconds of events, quadratic after a backlog (an outage of the sealer, a
-- long transaction holding xmin back). With it a batch reads just its rows.
CREATE INDEX audit_inbox_seal_order_idx ON control.audit_inbox (txid, id);

-- The auditor's search (audit/search.ts) lists sealed entries newest first
-- across every chain and stops after one page: this index lets it walk the
-- log in that order and stop, instead of sorting the whole trail per page.
-- Registry entries (checkpoint records, not events) are never searched.
CREATE INDEX audit_log_time_idx ON control.audit_log (occurred_at, chain, seq) WHERE chain <> 'registry';
