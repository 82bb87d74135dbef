// What every page handler needs: form fields as strings, who is signed in, and
// how a failed form is shown again. Forms post a hidden _csrf field, checked by
// the global CSRF middleware before any of this runs.
import type { Request, Response } from 'express';
import { RateLimitedError } from '../app-errors.ts';
import { type HttpProblem, problemFor } from '../http/http-errors.ts';
import { sentence } from '../http/render.ts';

/** A form field as a string ('' when missing, repeated or not text). */
export function field(req: Request, name: string): string {
  const value = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value : '';
}

/**
 * What to tell a person whose form failed, with the status the API would use;
 * or rethrow: internal failures and an unreachable session store go on to the
 * error handler (showing a form again needs a session for its token).
 */
export function formProblem(res: Response, err: unknown): HttpProblem {
  const problem = problemFor(err);
  if (problem.code === 'internal_error' || problem.code === 'sessions_unavailable') throw err;
  if (err instanceof RateLimitedError) res.setHeader('Retry-After', String(err.retryAfterSeconds));
  return { ...problem, message: sentence(problem.message) };
}

/**
 * Where a signed-in person starts: enrolment first when their account requires
 * MFA and has none; then owners their workspace, auditors and admins (who have
 * none) their account (auditors reach /audit from the menu).
 */
export function homeOf(user: Express.User): string {
  if (user.mfaRequired && !user.mfaEnabled) return '/account/mfa';
  return user.role === 'user' ? '/workspace' : '/account';
}
