// Every request carries an id, echoed in X-Request-Id and in every log line
// about it, so a user's report can be matched to the server's logs. An id from
// a proxy is kept only if it is short and plain: it goes into our logs verbatim.
import { randomUUID } from 'node:crypto';
import type { RequestHandler, Response } from 'express';

declare global {
  namespace Express {
    interface Locals {
      requestId: string;
    }
  }
}

export const REQUEST_ID_HEADER = 'X-Request-Id';
const SANE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** The incoming id if it is sane, a fresh UUID otherwise. */
export function chooseRequestId(incoming: string | string[] | undefined): string {
  return typeof incoming === 'string' && SANE_ID.test(incoming) ? incoming : randomUUID();
}

export function requestId(): RequestHandler {
  return (req, res, next) => {
    const id = chooseRequestId(req.headers[REQUEST_ID_HEADER.toLowerCase()]);
    res.locals.requestId = id;
    res.setHeader(REQUEST_ID_HEADER, id);
    next();
  };
}

export function requestIdOf(res: Response): string {
  return res.locals.requestId ?? 'unknown';
}
