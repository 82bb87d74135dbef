// express-session asks its store to "touch" a session (renew its expiry) at the
// end of every request, and holds the response until the store answers: one
// Redis EXPIRE (or one PostgreSQL UPDATE) per request, on the request's path.
// Renewing an idle timeout of minutes on every request buys nothing, so this
// process renews each session at most once per interval and answers the other
// touches at once. A session then expires between `idle - interval` and `idle`
// after its last request; the interval is a tenth of the idle timeout, at most
// a minute. Saves (a changed session) are never skipped.
//
// What this process remembers is bounded: at most `maxEntries` session ids,
// oldest first out (a forgotten session is simply touched again).
import type session from 'express-session';

export interface TouchThrottleOptions {
  idleSeconds: number;
  maxEntries: number;
  now?: () => number;
}

/** The interval: a tenth of the idle timeout, at most 60 s. */
export function touchIntervalMs(idleSeconds: number): number {
  return Math.min(60_000, Math.floor((idleSeconds * 1000) / 10));
}

export function throttleTouch<S extends session.Store>(store: S, options: TouchThrottleOptions): S {
  const { maxEntries } = options;
  const now = options.now ?? Date.now;
  const interval = touchIntervalMs(options.idleSeconds);
  const touchedAt = new Map<string, number>(); // insertion order = oldest first
  const touch = store.touch?.bind(store);
  const destroy = store.destroy.bind(store);
  if (!touch || maxEntries === 0) return store;

  store.touch = (sid, sess, callback) => {
    const at = now();
    const last = touchedAt.get(sid);
    // A callback in the same tick would end the response before express-session writes its head.
    if (last !== undefined && at - last < interval) return void process.nextTick(() => callback?.());
    touchedAt.delete(sid);
    touchedAt.set(sid, at);
    if (touchedAt.size > maxEntries) touchedAt.delete(touchedAt.keys().next().value as string);
    // express-session's types give the callback no argument; stores pass their error in it.
    const answer = callback as ((err?: unknown) => void) | undefined;
    touch(sid, sess, ((err?: unknown) => {
      if (err) touchedAt.delete(sid); // not renewed: try again next time
      answer?.(err);
    }) as () => void);
  };
  store.destroy = (sid, callback) => {
    touchedAt.delete(sid);
    destroy(sid, callback);
  };
  return store;
}
