// Required MFA (admins and auditors can be made to need it): a signed-in
// principal whose account requires a second factor but has none enrolled may
// only enrol, look at who they are, fetch a CSRF token and sign out. Anything
// else is refused until enrolment is done. Runs after the session middleware,
// before any router; fails closed: a path not on the list is refused.
import type { RequestHandler } from 'express';
import { MfaEnrolmentRequiredError } from '../errors.ts';

interface OpenRoute {
  methods: ReadonlySet<string> | 'any';
  path: RegExp;
}

const READ = new Set(['GET', 'HEAD']);
const FORM = new Set(['GET', 'HEAD', 'POST']);
const POST = new Set(['POST']);

/** What a principal who still has to enrol may reach. Express matches paths case-insensitively, so do we. */
export const OPEN_DURING_ENROLMENT: readonly OpenRoute[] = [
  { methods: 'any', path: /^\/api\/v1\/mfa(\/[\w-]*)?\/?$/i },
  { methods: READ, path: /^\/api\/v1\/me\/?$/i },
  { methods: READ, path: /^\/api\/v1\/csrf\/?$/i },
  { methods: POST, path: /^\/api\/v1\/auth\/logout\/?$/i },
  // The pages for the same things, and what those pages load.
  { methods: FORM, path: /^\/account\/mfa(\/[\w-]*)?\/?$/i },
  { methods: POST, path: /^\/logout\/?$/i },
  { methods: READ, path: /^\/(assets|static)\/[\w./-]+$/i },
  { methods: READ, path: /^\/favicon\.ico$/i },
];

export function isOpenDuringEnrolment(method: string, path: string): boolean {
  return OPEN_DURING_ENROLMENT.some(
    (r) => (r.methods === 'any' || r.methods.has(method.toUpperCase())) && r.path.test(path),
  );
}

export const requireMfaEnrolment: RequestHandler = (req, _res, next) => {
  const user = req.user;
  if (!user?.mfaRequired || user.mfaEnabled) return next();
  if (isOpenDuringEnrolment(req.method, req.path)) return next();
  next(new MfaEnrolmentRequiredError());
};
