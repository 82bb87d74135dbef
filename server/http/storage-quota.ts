// Every write to a workspace, from the JSON API and the pages alike, runs with
// the storage quota in force: this wraps the unit of work that requireWorkspace
// attached, for every method that may change something. The database counts
// and refuses (server/workspace/storage.ts); reads never carry the quota, so
// a read can never be refused for a full workspace.
import type { RequestHandler } from 'express';
import { withStorageQuota } from '../workspace/storage.ts';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/** After requireWorkspace: writes get the quota (bytes; 0 means none). */
export function storageQuota(quotaBytes: number): RequestHandler {
  return (req, _res, next) => {
    const run = req.workspace;
    if (run && !SAFE.has(req.method)) {
      req.workspace = (fn, options) => run(withStorageQuota(quotaBytes, fn), options);
    }
    next();
  };
}
