// The auditor's JSON API under /api/v1/audit: search sealed entries, the
// latest signed checkpoints, the public keys, and the export bundle.
//
// Auditors only. Workspace owners (and their API tokens) get 403, and so do
// admins: the trail records what admins do, and reading it is the auditor's
// separate duty (ops still have `enclave audit export` on the database host).
// Every call is itself audited (audit/search.ts, audit/export.ts).
import { type Request, type Response, Router } from 'express';
import { exportBundle } from '../../audit/export.ts';
import { selectHasChain } from '../../audit/export-sql.ts';
import {
  decodeCursor,
  latestCheckpoints,
  parseFilter,
  recordAuditorRead,
  searchEntries,
} from '../../audit/search.ts';
import { publicKeys } from '../../audit/signing.ts';
import { canonicalBytes } from '../../audit/verifier/canonical.ts';
import { tenantChain } from '../../audit/verifier/entry.ts';
import { run } from '../../kernel/db.ts';
import { InvalidInputError } from '../../kernel/errors.ts';
import { NotFoundError } from '../app-errors.ts';
import { auditorOnly } from '../auth/guards.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';

export const AUDIT_API = '/api/v1/audit';
const CHAIN = /^(t_[a-z0-9]{12}|platform|registry)$/;

export function auditApiRoutes(deps: RouteDeps): Router {
  const router = Router();
  router.use(AUDIT_API, ...auditorOnly);
  router.get(`${AUDIT_API}/entries`, (req, res) => searchEntriesApi(deps, req, res));
  router.get(`${AUDIT_API}/checkpoints`, (req, res) => listCheckpointsApi(deps, req, res));
  router.get(`${AUDIT_API}/public-keys`, (req, res) => listPublicKeysApi(deps, req, res));
  router.get(`${AUDIT_API}/export`, (req, res) => exportBundleApi(deps, req, res));

  return router;
}

async function searchEntriesApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const filter = parseFilter(req.query, ['cursor', 'limit']);
  const page = await searchEntries(deps.pool, filter, {
    cursor: decodeCursor(req.query.cursor),
    limit: limitOf(req.query.limit),
    by: whoOf(req),
  });
  res.json(page);
}

async function listCheckpointsApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const { tenant } = parseFilter(pick(req, ['tenant']), []);
  rejectUnknown(req, ['tenant', 'after', 'format']);
  const after = typeof req.query.after === 'string' && req.query.after ? req.query.after : null;
  if (after !== null && !CHAIN.test(after)) throw new InvalidInputError('after must be a chain name');
  const result = await latestCheckpoints(deps.pool, { tenant, after, by: whoOf(req) });
  if (req.query.format === 'jsonl') {
    // A checkpoints.jsonl: what `enclave audit verify --prev` reads next time.
    res.type('application/x-ndjson').attachment('enclave-audit-checkpoints.jsonl');
    res.send(
      result.checkpoints
        .map(
          (c) => `${canonicalBytes({ checkpoint: c.checkpoint, signature: c.signature }).toString('utf8')}\n`,
        )
        .join(''),
    );
    return;
  }
  if (req.query.format !== undefined && req.query.format !== 'json')
    throw new InvalidInputError('format must be json or jsonl');
  res.json(result);
}

async function listPublicKeysApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  rejectUnknown(req, ['format']);
  const keys = await publicKeys(deps.pool);
  await recordAuditorRead(deps.pool, whoOf(req), 'audit.keys.read', { keys: keys.length });
  if (req.query.format === 'pem') {
    // Several PEM blocks in one file: what `enclave audit verify --key` accepts (current key first).
    res.type('application/x-pem-file').attachment('enclave-audit-keys.pem');
    res.send(keys.map((k) => k.pem).join(''));
    return;
  }
  if (req.query.format !== undefined && req.query.format !== 'json')
    throw new InvalidInputError('format must be json or pem');
  res.json({
    keys: keys.map((k) => ({
      keyId: k.keyId,
      current: k.retiredAt === null,
      pem: k.pem,
      createdAt: k.createdAt,
      retiredAt: k.retiredAt,
    })),
  });
}

async function exportBundleApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  await sendBundle(deps, req, res);
}

/**
 * Streams the bundle of `?tenant=&from=&to=` (the same selection as `enclave
 * audit export`) as a download. exportBundle spools first, so a failure before
 * the first byte is still an ordinary error answer; after it, the download is
 * cut short, which the verifier reports as a broken archive.
 */
export async function sendBundle(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  rejectUnknown(req, ['tenant', 'from', 'to']);
  const filter = parseFilter(req.query);
  if (filter.tenant === 'platform')
    throw new InvalidInputError(
      'a bundle holds one tenant or every chain: leave tenant empty for the platform chain',
    );
  if (filter.tenant && (await run(deps.pool, selectHasChain(tenantChain(filter.tenant)))).rowCount === 0)
    throw new NotFoundError('This tenant has no sealed audit trail yet.');
  const by = whoOf(req);
  const day = new Date().toISOString().slice(0, 10);
  res.status(200).set({
    'Content-Type': 'application/gzip',
    'Content-Disposition': `attachment; filename="enclave-audit-${filter.tenant ?? 'all'}-${day}.tar.gz"`,
  });
  try {
    await exportBundle(deps.pool, res, {
      tenant: filter.tenant,
      from: filter.from,
      to: filter.to,
      actor: by.actor,
      signer: deps.auditSigner,
      ...(by.context ? { context: by.context } : {}),
    });
  } catch (err) {
    if (!res.headersSent) {
      // A refusal before the first byte is an ordinary error answer, not a download.
      res.removeHeader('Content-Disposition');
      res.removeHeader('Content-Type');
      throw err;
    }
    deps.log.warn('audit export cut short', { error: err });
    if (!res.destroyed) res.destroy();
  }
}

function limitOf(raw: unknown): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (typeof raw !== 'string' || !/^\d{1,4}$/.test(raw))
    throw new InvalidInputError('limit must be a whole number from 1 to 500');
  return Number(raw);
}

function pick(req: Request, names: string[]): Record<string, unknown> {
  const query = req.query as Record<string, unknown>;
  return Object.fromEntries(names.filter((n) => n in query).map((n) => [n, query[n]]));
}

function rejectUnknown(req: Request, allowed: string[]): void {
  const unknown = Object.keys(req.query as object).filter((k) => !allowed.includes(k));
  if (unknown.length) throw new InvalidInputError(`unknown query parameter ${unknown.join(', ')}`);
}
