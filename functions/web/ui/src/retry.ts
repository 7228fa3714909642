// Retries and bounded concurrency for the requests straight to the bucket, shared by every upload
// path (docs/web.md): the chunk PUTs, the multipart part PUTs and the single presigned POST. A request
// that may pass on a second try (`retry`: a network error or a 5xx, see bucket.ts) is tried up to
// ATTEMPTS times with a growing pause; a 4xx is never retried (the same request would be refused again).
import type { BucketError } from "./bucket";

export const ATTEMPTS = 3;
export const CONCURRENCY = 4;

export type RetryOptions = {
  attempts?: number;
  /** The pause before attempt k+1 after attempt k failed, in ms. */
  pause?: (k: number) => number;
  sleep?: (ms: number) => Promise<void>;
  /** True when retrying is pointless (another request of the same upload already failed). */
  giveUp?: () => boolean;
};

/** An error after the last attempt: the request's own error, with how many attempts were made. */
export type Failed = BucketError & { attempts: number };

const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Run `attempt` until it succeeds, it fails with an error that is not `retry`, or ATTEMPTS are spent.
 * `onBytes` gets the bytes of the current attempt only: it is reset to 0 when an attempt fails, so a
 * caller that adds it to its total never counts the bytes of a failed attempt twice. */
export async function retrying<R>(attempt: (onBytes: (n: number) => void) => Promise<R>, onBytes: (n: number) => void,
  o: RetryOptions = {}): Promise<R> {
  const attempts = o.attempts ?? ATTEMPTS;
  for (let k = 1; ; k++) {
    try {
      return await attempt(onBytes);
    } catch (e) {
      onBytes(0);
      const err = e as BucketError;
      if (!err.retry || k >= attempts || o.giveUp?.()) throw Object.assign(err, { attempts: k }) as Failed;
      await (o.sleep ?? sleepMs)((o.pause ?? ((n) => 400 * n))(k));
      if (o.giveUp?.()) throw Object.assign(err, { attempts: k }) as Failed;
    }
  }
}

export type SendAll<T, R> = RetryOptions & {
  concurrency?: number;
  /** One attempt at sending an item; reports that attempt's bytes. */
  send: (item: T, onBytes: (n: number) => void) => Promise<R>;
  /** Bytes already on the server before these items (a resume). */
  base?: number;
  /** Total bytes sent so far: `base`, the items done, and the bytes of the attempts in flight. */
  onBytes: (sent: number) => void;
  onSent?: (item: T, result: R) => void;
  /** Why to take no more items (checked before each one), or null. */
  stopReason?: () => string | null;
  /** The error to throw for an item that failed (after its attempts). */
  failure: (item: T, e: Failed) => Error;
};

/** Send every item, `concurrency` at once, each with `retrying`; returns the results in the items'
 * order. The first item that fails stops the others taking new items (those in flight finish) and
 * its `failure` is thrown. */
export async function sendAll<T extends { size: number }, R>(items: T[], o: SendAll<T, R>): Promise<R[]> {
  const queue = items.map((item, i) => ({ item, i }));
  const results: R[] = new Array(items.length);
  const inflight = new Map<number, number>();
  let done = o.base ?? 0;
  let failed: Error | null = null;
  const report = () => o.onBytes(done + [...inflight.values()].reduce((a, b) => a + b, 0));
  async function worker() {
    for (let next = queue.shift(); next && !failed; next = queue.shift()) {
      const { item, i } = next;
      const stop = o.stopReason?.();
      if (stop) { failed = Object.assign(new Error(stop), { status: 0, stopped: true }); return; }
      try {
        results[i] = await retrying((onb) => o.send(item, onb), (n) => { inflight.set(i, Math.min(n, item.size)); report(); },
          { ...o, giveUp: () => !!failed || !!o.giveUp?.() });
      } catch (e) {
        inflight.delete(i);
        failed ??= o.failure(item, e as Failed);
        return;
      }
      inflight.delete(i);
      done += item.size;
      report();
      o.onSent?.(item, results[i]);
    }
  }
  await Promise.all(Array.from({ length: Math.min(o.concurrency ?? CONCURRENCY, items.length) }, worker));
  if (failed) throw failed;
  return results;
}

/** "… (after 3 attempts)" when there was more than one. */
export const afterAttempts = (e: Failed) => (e.attempts > 1 ? ` (after ${e.attempts} attempts)` : "");
