// helmet with a CSP written out in full rather than helmet's defaults, which
// allow inline styles and any https: font. Every script, style and image is
// served by the app itself; nothing inline, no CDN, no framing.
import type { RequestHandler } from 'express';
import helmet from 'helmet';

export const CSP_DIRECTIVES = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  scriptSrcAttr: ["'none'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'"],
  fontSrc: ["'self'"],
  connectSrc: ["'self'"],
  objectSrc: ["'none'"],
  frameAncestors: ["'none'"],
  baseUri: ["'self'"],
  formAction: ["'self'"],
} as const;

export function securityHeaders(): RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: Object.fromEntries(Object.entries(CSP_DIRECTIVES).map(([k, v]) => [k, [...v]])),
    },
    // The legacy header says what frame-ancestors says, for browsers that only know it.
    xFrameOptions: { action: 'deny' },
    // Our own pages see where a form came from (the admin console returns there after a
    // password confirmation); no other site ever gets a Referer from us.
    referrerPolicy: { policy: 'same-origin' },
  });
}

/**
 * `Cache-Control: no-store` on every answer unless its route says otherwise
 * (only the content-hashed assets do, in render.ts): pages and API answers
 * carry personal data, CSRF tokens and one-time secrets, which no browser
 * cache or shared proxy may keep. Set up front, so even an error or a 404
 * cannot forget it.
 */
export function noStore(): RequestHandler {
  return (_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  };
}
