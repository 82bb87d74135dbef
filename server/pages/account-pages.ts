// The account pages: where you are signed in (revoke one, or all others),
// password, two-step sign-in (set up, new recovery codes, turn off) and API
// tokens. Secrets shown once (recovery codes, a new token) are rendered in the
// answer to the POST itself, never kept in the session for a redirect. Every
// form that checks the password or a code counts toward the account's sign-in
// lockout (abuse/attempts.ts).
import { type Request, type Response, Router } from 'express';
import { InvalidInputError } from '../../kernel/errors.ts';
import { DELETE_CONFIRMATION } from '../accounts/account-deletion.ts';
import { changePassword } from '../accounts/accounts.ts';
import { createToken, listTokens, revokeToken } from '../accounts/api-tokens.ts';
import {
  confirmEnrolment,
  disableMfa,
  mfaStatus,
  regenerateRecoveryCodes,
  startEnrolment,
} from '../accounts/mfa.ts';
import { NotFoundError } from '../app-errors.ts';
import { requirePageOwner, requirePageUser, signedIn } from '../auth/guards.ts';
import { deleteOwnAccount } from '../auth/own-account.ts';
import { logIn } from '../auth/session-middleware.ts';
import { flash, render } from '../http/render.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { signOutEverywhere } from '../sessions/sign-out-everywhere.ts';
import { field, formProblem } from './page-forms.ts';

const ROLE_LABELS = { user: 'Workspace owner', auditor: 'Auditor', admin: 'Administrator' } as const;

/** " Ended 2 API tokens; ...": nothing when there were none. */
function tokensEndedText(n: number): string {
  if (n === 0) return '';
  return ` Ended ${n === 1 ? '1 API token' : `${n} API tokens`}; create new ones for the scripts that still need them.`;
}

export function accountPages(deps: RouteDeps): Router {
  const router = Router();

  // Forms that check the password or a code: counted with sign-ins by the account lockout.
  const checked = deps.attempts.guard;
  router.get('/account', (req, res) => showAccountPage(deps, req, res));
  // --- Password ---------------------------------------------------------
  router.post('/account/password', checked, (req, res) => changePasswordFromForm(deps, req, res));
  // --- Sessions ---------------------------------------------------------
  router.post('/account/sessions/revoke-all', (req, res) => revokeOtherSessions(deps, req, res));
  router.post('/account/sessions/:id/revoke', (req, res) => revokeSessionFromForm(deps, req, res));
  // --- Two-step sign-in (MFA) -------------------------------------------
  // These paths stay open to an account that must enrol first (requireMfaEnrolment in auth/guards.ts).
  router.get('/account/mfa', (req, res) => showMfaPage(deps, req, res));
  router.post('/account/mfa/setup', (req, res) => startMfaSetup(deps, req, res));
  router.post('/account/mfa/enable', checked, (req, res) => enableMfaFromForm(deps, req, res));
  router.post('/account/mfa/recovery-codes', checked, (req, res) => regenerateCodesFromForm(deps, req, res));
  router.post('/account/mfa/disable', checked, (req, res) => disableMfaFromForm(deps, req, res));
  // --- API tokens -------------------------------------------------------
  router.post('/account/tokens', (req, res) => createTokenFromForm(deps, req, res));
  router.post('/account/tokens/:id/revoke', (req, res) => revokeTokenFromForm(deps, req, res));
  // --- Your data: delete the account --------------------------------------
  router.post('/account/delete', checked, (req, res) => deleteAccountFromForm(deps, req, res));

  return router;
}

async function showAccount(
  deps: RouteDeps,
  req: Request,
  res: Response,
  extra: Record<string, unknown>,
  status = 200,
) {
  const user = requirePageUser(req);
  const [sessions, mfa, tokens] = await Promise.all([
    deps.registry.list(user.userId, user.sessionId),
    mfaStatus(deps.pool, user.userId),
    user.role === 'user' ? listTokens(deps.pool, user.userId) : Promise.resolve(null),
  ]);
  // This device first, then the most recently used.
  sessions.sort(
    (a, b) => Number(b.current) - Number(a.current) || +new Date(b.lastSeenAt) - +new Date(a.lastSeenAt),
  );
  const data = {
    title: 'Account',
    roleLabel: ROLE_LABELS[user.role],
    sessions,
    mfa,
    tokens,
    deleteConfirmation: DELETE_CONFIRMATION,
  };
  render(res, 'account', { tokenValues: {}, deleteValues: {}, ...data, ...extra }, status);
}

/** Same login under a new session id: turning MFA on or off is a privilege change. */
async function renewSession(req: Request, user: Express.User, mfaEnabled: boolean) {
  await logIn(req, { ...user, mfaEnabled });
}

async function showAccountPage(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  if (!signedIn(req)) return res.redirect(303, '/login');
  await showAccount(deps, req, res, {});
}

async function changePasswordFromForm(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const user = requirePageUser(req);
  try {
    const next = field(req, 'newPassword');
    if (next !== field(req, 'confirmPassword')) {
      throw new InvalidInputError('The two new passwords are not the same.');
    }
    const current = field(req, 'currentPassword');
    const keep = user.sessionId ?? null;
    const ended = await changePassword(deps.pool, user.userId, current, next, keep, whoOf(req));
    // A privilege change: this session continues under a new id.
    await logIn(req, user);
    const text = 'Your password has been changed. Every other session has been signed out.';
    flash(req, 'success', `${text}${tokensEndedText(ended.tokensEnded)}`);
  } catch (err) {
    const problem = formProblem(res, err);
    return showAccount(deps, req, res, { passwordError: problem.message }, problem.status);
  }
  res.redirect(303, '/account');
}

async function revokeOtherSessions(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const user = requirePageUser(req);
  const keep = user.sessionId ?? null;
  const ended = await signOutEverywhere(deps.pool, deps.registry, user.userId, keep, whoOf(req));
  const n = ended.sessionsEnded;
  const text = n === 1 ? 'Signed out of 1 other session.' : `Signed out of ${n} other sessions.`;
  flash(req, 'success', `${text}${tokensEndedText(ended.tokensEnded)}`);
  res.redirect(303, '/account');
}

async function revokeSessionFromForm(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const user = requirePageUser(req);
  try {
    await deps.registry.revoke(String(req.params.id), user.userId, 'revoked by the user', whoOf(req));
    flash(req, 'success', 'That session has been signed out.');
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
    flash(req, 'info', 'That session had already ended.');
  }
  res.redirect(303, '/account');
}

async function showMfaPage(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const user = signedIn(req);
  if (!user) return res.redirect(303, '/login');
  const mfa = await mfaStatus(deps.pool, user.userId);
  if (mfa.enabled) return res.redirect(303, '/account#mfa-title');
  render(res, 'mfa', { title: 'Two-step sign-in', mfa });
}

async function startMfaSetup(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const user = requirePageUser(req);
  try {
    const setup = await startEnrolment(deps.pool, user.userId);
    render(res, 'mfa-setup', { title: 'Set up two-step sign-in', setup });
  } catch (err) {
    const problem = formProblem(res, err);
    flash(req, 'error', problem.message);
    res.redirect(303, '/account');
  }
}

async function enableMfaFromForm(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const user = requirePageUser(req);
  let recoveryCodes: string[];
  try {
    recoveryCodes = await confirmEnrolment(
      deps.pool,
      user.userId,
      field(req, 'password'),
      field(req, 'code'),
      user.sessionId ?? null,
      whoOf(req),
    );
    await renewSession(req, user, true);
  } catch (err) {
    const problem = formProblem(res, err);
    // The QR code is not shown again: the app already holds the secret, and a new one would void it.
    const data = { title: 'Set up two-step sign-in', setup: null, error: problem.message };
    return render(res, 'mfa-setup', data, problem.status);
  }
  deps.log.info('mfa enabled', { userId: user.userId });
  render(res, 'mfa-codes', { title: 'Your recovery codes', recoveryCodes, justEnabled: true });
}

async function regenerateCodesFromForm(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const user = requirePageUser(req);
  let recoveryCodes: string[];
  try {
    const [password, code] = [field(req, 'password'), field(req, 'code')];
    recoveryCodes = await regenerateRecoveryCodes(deps.pool, user.userId, password, code, whoOf(req));
  } catch (err) {
    const problem = formProblem(res, err);
    return showAccount(deps, req, res, { mfaError: problem.message }, problem.status);
  }
  deps.log.info('mfa recovery codes regenerated', { userId: user.userId });
  render(res, 'mfa-codes', { title: 'Your recovery codes', recoveryCodes, justEnabled: false });
}

async function disableMfaFromForm(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const user = requirePageUser(req);
  try {
    await disableMfa(deps.pool, user.userId, field(req, 'password'), field(req, 'code'), whoOf(req));
    await renewSession(req, user, false);
  } catch (err) {
    const problem = formProblem(res, err);
    return showAccount(deps, req, res, { mfaError: problem.message }, problem.status);
  }
  deps.log.info('mfa disabled', { userId: user.userId });
  flash(req, 'success', 'Two-step sign-in is off. Your password alone now signs you in.');
  res.redirect(303, '/account');
}

async function createTokenFromForm(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const user = requirePageOwner(req);
  const tokenValues = { name: field(req, 'name'), scope: field(req, 'scope') };
  try {
    const created = await createToken(deps.pool, user.userId, tokenValues, whoOf(req));
    // Shown in this answer only (render sets no-store): the secret is not stored anywhere.
    await showAccount(deps, req, res, { newToken: created });
  } catch (err) {
    const problem = formProblem(res, err);
    return showAccount(deps, req, res, { tokenError: problem.message, tokenValues }, problem.status);
  }
}

async function revokeTokenFromForm(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const user = requirePageOwner(req);
  try {
    await revokeToken(deps.pool, user.userId, String(req.params.id), whoOf(req));
    flash(req, 'success', 'That API token has been revoked. Scripts using it can no longer get in.');
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
    flash(req, 'info', 'That API token had already been revoked.');
  }
  res.redirect(303, '/account');
}

// (The export is a plain link to GET /api/v1/export: the browser downloads it with the session cookie.)
async function deleteAccountFromForm(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  requirePageOwner(req);
  try {
    const body = {
      confirm: field(req, 'confirm'),
      password: field(req, 'password'),
      totp: field(req, 'totp'),
    };
    await deleteOwnAccount(deps, req, res, { ...body, totp: body.totp.trim() || undefined });
  } catch (err) {
    const problem = formProblem(res, err);
    // The typed phrase is kept (it is no secret); the password and code never are.
    const deleteValues = { confirm: field(req, 'confirm') };
    return showAccount(deps, req, res, { deleteError: problem.message, deleteValues }, problem.status);
  }
  // Signed out now: the sign-in page says what happened.
  res.redirect(303, '/login?notice=account-deleted');
}
