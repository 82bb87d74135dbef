// The pages people use to get in and out: register, sign in (with the second
// step when the account has MFA) and sign out; the account pages are in
// account-pages.ts. They call the same services as the JSON API. After success
// they redirect (post/redirect/get); after a failure a person can fix, the form
// comes back with the message and what was typed, never a password.
import { type Request, type Response, Router } from 'express';
import { InvalidInputError } from '../../kernel/errors.ts';
import { findUser, register } from '../accounts/accounts.ts';
import { describeSignInNotices } from '../accounts/notices.ts';
import { MfaRequiredError } from '../app-errors.ts';
import { signedIn } from '../auth/guards.ts';
import { logOut } from '../auth/session-middleware.ts';
import { authenticateLocal, checkSignInCode, signInNotices, startSession } from '../auth/sign-in.ts';
import { displayTime, flash, render } from '../http/render.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { field, formProblem, homeOf } from './page-forms.ts';

/** A correct password, waiting for the second factor. Never a signed-in session. */
interface PendingMfa {
  userId: string;
  startedAt: number;
  attempts: number;
}

declare module 'express-session' {
  interface SessionData {
    pendingMfa?: PendingMfa;
  }
}

const PENDING_MFA_MS = 5 * 60_000;
/** Wrong codes before the password must be typed again (the rate limiter counts them too). */
const PENDING_MFA_ATTEMPTS = 5;

// A fixed set of notices a redirect may ask for: never text taken from the URL.
const NOTICES: Record<string, string> = {
  'signed-out': 'You have signed out.',
  'mfa-expired': 'That took too long or too many tries. Please sign in again.',
  'account-deleted': 'Your account and your workspace have been deleted, and you are signed out everywhere.',
  'admin-created': 'The admin account is ready. Sign in with it.',
};

export function signInPages(deps: RouteDeps): Router {
  const router = Router();
  router.get('/', redirectHome);
  // --- Register ---------------------------------------------------------
  router.get('/register', showRegisterForm);
  router.post('/register', (req, res) => registerFromForm(deps, req, res));
  // --- Sign in ----------------------------------------------------------
  router.get('/login', showSignInForm);
  router.post('/login', (req, res) => signInFromForm(deps, req, res));
  router.get('/login/mfa', showMfaStep);
  router.post('/login/mfa', (req, res) => finishMfaStep(deps, req, res));
  // --- Sign out ---------------------------------------------------------
  router.post('/logout', (req, res) => signOutFromForm(deps, req, res));

  return router;
}

// Owners start in their workspace; auditors and admins on their account page (homeOf).
function redirectHome(req: Request, res: Response): void {
  const user = signedIn(req);
  res.redirect(303, user ? homeOf(user) : '/login');
}

function showRegisterForm(req: Request, res: Response): void {
  if (signedIn(req)) {
    res.redirect(303, '/');
    return;
  }
  render(res, 'register', { title: 'Create account', values: {} });
}

async function registerFromForm(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const values = { email: field(req, 'email'), displayName: field(req, 'displayName') };
  let name: string;
  try {
    const password = req.body?.password;
    const { user } = await register(deps.pool, { ...values, password }, deps.migrations, whoOf(req));
    await startSession(deps, req, user, 'registration');
    name = user.display_name;
  } catch (err) {
    const problem = formProblem(res, err);
    const data = { title: 'Create account', values, error: problem.message };
    return render(res, 'register', data, problem.status);
  }
  flash(req, 'success', `Welcome, ${name}. Your workspace is ready.`);
  res.redirect(303, '/');
}

function showSignInForm(req: Request, res: Response): void {
  if (signedIn(req)) {
    res.redirect(303, '/');
    return;
  }
  const notice = NOTICES[String(req.query.notice ?? '')];
  const messages = notice ? [{ kind: 'info', text: notice }] : [];
  render(res, 'login', { title: 'Sign in', values: {}, messages });
}

async function signInFromForm(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const values = { email: field(req, 'email') };
  try {
    const user = await authenticateLocal(deps, req);
    try {
      // No code yet: passes for accounts without a second factor.
      await checkSignInCode(deps, req, user, undefined);
    } catch (err) {
      if (!(err instanceof MfaRequiredError)) throw err;
      // A fresh session id, so a session planted before the password step
      // cannot be used to finish someone else's sign-in with just a code.
      await regenerate(req);
      req.session.pendingMfa = { userId: user.id, startedAt: Date.now(), attempts: 0 };
      return res.redirect(303, '/login/mfa');
    }
    const principal = await startSession(deps, req, user);
    await flashSignInNotices(deps, req, user.id);
    res.redirect(303, homeOf(principal));
  } catch (err) {
    const problem = formProblem(res, err);
    return render(res, 'login', { title: 'Sign in', values, error: problem.message }, problem.status);
  }
}

function showMfaStep(req: Request, res: Response): void {
  if (signedIn(req)) {
    res.redirect(303, '/');
    return;
  }
  if (!livePending(req)) {
    res.redirect(303, '/login?notice=mfa-expired');
    return;
  }
  render(res, 'login-mfa', { title: 'Enter your code' });
}

async function finishMfaStep(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const pending = livePending(req);
  if (!pending) return res.redirect(303, '/login?notice=mfa-expired');
  const user = await findUser(deps.pool, pending.userId);
  if (!user) {
    delete req.session.pendingMfa;
    return res.redirect(303, '/login?notice=mfa-expired');
  }
  try {
    const code = field(req, 'code');
    if (!code.trim()) throw new InvalidInputError('Enter the code to continue.');
    // Each code counts toward the account's lockout, as at the API's sign-in.
    const attempt = await deps.attempts.begin(req, res, { userId: user.id, email: user.email });
    pending.attempts += 1;
    const method = await checkSignInCode(deps, req, user, code);
    // A new session: pendingMfa is not carried over.
    const principal = await startSession(deps, req, user, method);
    await attempt.succeeded();
    await flashSignInNotices(deps, req, user.id);
    res.redirect(303, homeOf(principal));
  } catch (err) {
    const problem = formProblem(res, err);
    if (pending.attempts >= PENDING_MFA_ATTEMPTS) {
      delete req.session.pendingMfa;
      return res.redirect(303, '/login?notice=mfa-expired');
    }
    return render(res, 'login-mfa', { title: 'Enter your code', error: problem.message }, problem.status);
  }
}

async function signOutFromForm(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const user = signedIn(req);
  if (user?.sessionId) {
    await deps.registry
      .revoke(user.sessionId, user.userId, 'signed out', whoOf(req), 'auth.logout')
      .catch(() => {});
  }
  if (req.session) {
    await logOut(req);
    await destroy(req);
  }
  res.redirect(303, '/login?notice=signed-out');
}

/** What happened to the account since the last sign-in, on the first page after this one. */
async function flashSignInNotices(deps: RouteDeps, req: Request, userId: string): Promise<void> {
  for (const text of describeSignInNotices(await signInNotices(deps, userId), displayTime)) {
    flash(req, 'info', text);
  }
}

/** The pending second step of this session, unless it is too old or out of tries. */
function livePending(req: Request): PendingMfa | undefined {
  const pending = req.session?.pendingMfa;
  if (!pending) return undefined;
  if (Date.now() - pending.startedAt > PENDING_MFA_MS || pending.attempts >= PENDING_MFA_ATTEMPTS) {
    delete req.session.pendingMfa;
    return undefined;
  }
  return pending;
}

function regenerate(req: Request): Promise<void> {
  return new Promise((resolve, reject) => req.session.regenerate((err) => (err ? reject(err) : resolve())));
}

function destroy(req: Request): Promise<void> {
  return new Promise((resolve) => req.session.destroy(() => resolve()));
}
