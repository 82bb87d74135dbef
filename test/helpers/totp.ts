// Time-based one-time codes (RFC 6238, 30 s steps) as an authenticator app makes them.
import { generate } from 'otplib';
import type request from 'supertest';

/** The code of the step `offset` periods from now (-1, 0 or +1). */
export function totp(secret: string, offset = 0): Promise<string> {
  return generate({ secret, epoch: Math.floor(Date.now() / 1000) + offset * 30 });
}

/** Waits for a fresh 30 s step if the current one ends too soon for a test to finish inside it. */
export async function steadyStep(needSeconds = 10): Promise<void> {
  const left = 30 - (Math.floor(Date.now() / 1000) % 30);
  if (left < needSeconds) await new Promise((resolve) => setTimeout(resolve, left * 1000 + 250));
}

export interface MfaEnrolment {
  /** The TOTP secret the authenticator app keeps. */
  secret: string;
  recoveryCodes: string[];
  /** The session's CSRF token after enabling (the session id changes). */
  csrf: string;
}

/** Turns MFA on for a signed-in person through the JSON API (with the code of step -1). */
export async function enrolMfa(person: {
  agent: request.Agent;
  csrf: string;
  password: string;
}): Promise<MfaEnrolment> {
  const setup = await person.agent.post('/api/v1/mfa/setup').set('X-CSRF-Token', person.csrf).expect(200);
  const enable = await person.agent
    .post('/api/v1/mfa/enable')
    .set('X-CSRF-Token', person.csrf)
    .send({ password: person.password, code: await totp(setup.body.secret, -1) })
    .expect(200);
  return { secret: setup.body.secret, recoveryCodes: enable.body.recoveryCodes, csrf: enable.body.csrfToken };
}
