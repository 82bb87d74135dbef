// Password and code checks other than the sign-in request itself: a signed-in
// person confirming their password (to change it, delete the account, change
// two-step sign-in) or a code, and the sign-in page's code step. Each counts
// toward the SAME per-account lockout and per-IP limit as sign-in. Without
// that, a stolen session is an unlimited password oracle (every guess one
// argon2 hash), and a lockout earned at the sign-in form does not hold here.
//
// The abuse middleware runs before sessions and cannot know whose account a
// request is about; these run after, with the account in hand: `guard` as
// route middleware for a signed-in person's own checks, `begin` where the
// account comes from elsewhere (the pending sign-in of the code step).
import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from '../../kernel/logger.ts';
import { RateLimitedError, SessionsUnavailableError } from '../app-errors.ts';
import {
  type Attempt,
  type AttemptCounter,
  type AttemptTally,
  accountKey,
  retryAfterSeconds,
} from './lockout.ts';

export interface AccountRef {
  userId: string;
  email: string;
}

export interface CredentialAttempt {
  /** The password or code was right: the account's failures are forgotten, as after a sign-in. */
  succeeded(): Promise<void>;
  /** Not a guess after all (refused for something else than a wrong password or code): taken back. */
  notChecked(): Promise<void>;
}

export interface CredentialAttemptsOptions {
  counter: AttemptCounter;
  secret: string;
  /** The sign-in limiter of failures per address: the same instance, so the same counts. */
  perIp: RequestHandler;
  tally: AttemptTally;
  log: Logger;
}

/** How a refusal behind a session names what there were too many of. */
const BEHIND_SESSION = 'wrong passwords or codes for this account';

// Whether a guarded check passed, for the per-IP limiter, which asks when the response is sent.
const passedChecks = new WeakMap<Response, () => boolean>();

/** Whether the check guarded here for this response passed; undefined when none was guarded. */
export function checkPassed(res: Response): boolean | undefined {
  return passedChecks.get(res)?.();
}

export class CredentialAttempts {
  readonly #options: CredentialAttemptsOptions;

  constructor(options: CredentialAttemptsOptions) {
    this.#options = options;
  }

  /**
   * Call right before checking a password or code of `account`. Refuses (429,
   * nothing checked) while the account is locked or this address has too many
   * failures; otherwise counts the attempt, as a failure until `succeeded()`.
   */
  async begin(
    req: Request,
    res: Response,
    account: AccountRef,
    what = 'failed sign-ins',
    passed?: () => boolean,
  ): Promise<CredentialAttempt> {
    let ok = false;
    passedChecks.set(res, passed ?? (() => ok));
    const { counter, secret, perIp, tally } = this.#options;
    // A stored email is always a normalised address; fail closed all the same.
    const key = accountKey(secret, account.email) ?? `user:${account.userId}`;
    try {
      await runHandler(perIp, req, res);
      let attempt: Attempt;
      try {
        attempt = await counter.attempt(key);
      } catch (err) {
        throw new SessionsUnavailableError(err);
      }
      if (!attempt.allowed) throw new RateLimitedError(retryAfterSeconds(attempt.retryAfterMs), what);
    } catch (err) {
      if (err instanceof RateLimitedError) tally.refusedOrFailed(account.userId);
      throw err;
    }
    const warn = (err: unknown) =>
      this.#options.log.warn('could not update the failures of an account', {
        error: (err as Error).message,
      });
    return {
      succeeded: async () => {
        ok = true;
        await counter.reset(key).catch(warn);
      },
      notChecked: async () => {
        ok = true;
        await counter.undo(key).catch(warn);
      },
    };
  }

  /**
   * Route middleware for a signed-in person's check of their own password or
   * code. The attempt is counted before the handler runs, so parallel guesses
   * cannot all get through before the first is counted, and settled by the
   * answer: below 400 a success; 401 (a wrong password or code: the one answer
   * the guarded routes give for it), 429 or a server error a failure; any
   * other refusal (a form filled in wrong, a state that does not allow the
   * change) no guess at all, so the count is taken back.
   */
  readonly guard: RequestHandler = (req, res, next) => {
    const user = req.user;
    // No signed-in browser session: the route refuses the request without checking anything.
    if (user?.via !== 'session') return next();
    const account = { userId: user.userId, email: user.email };
    const failed = () => res.statusCode === 401 || res.statusCode === 429 || res.statusCode >= 500;
    this.begin(req, res, account, BEHIND_SESSION, () => !failed()).then((attempt) => {
      res.once('finish', () => {
        if (res.statusCode < 400) void attempt.succeeded();
        else if (!failed()) void attempt.notChecked();
        else if (res.statusCode === 401) this.#options.tally.refusedOrFailed(account.userId);
      });
      next();
    }, next);
  };
}

/** Runs a middleware as a promise: resolves when it calls next(), rejects with its error. */
function runHandler(handler: RequestHandler, req: Request, res: Response): Promise<void> {
  return new Promise((resolve, reject) => {
    Promise.resolve(handler(req, res, (err?: unknown) => (err ? reject(err) : resolve()))).catch(reject);
  });
}
