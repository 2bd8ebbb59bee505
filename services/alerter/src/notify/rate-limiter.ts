/** RateLimiter hands out send slots per destination at a steady rate with a small burst. */
export interface RateLimiter {
  /** take resolves when the destination may send (immediately while its bucket has tokens). */
  take(destination: string, signal?: AbortSignal): Promise<void>;
}

/**
 * createRateLimiter is a token bucket per destination (Slack asks ~1 message/s per webhook,
 * PagerDuty ~2 events/s per key); waiting callers are served in order.
 */
export function createRateLimiter(options: {
  ratePerSecond: (destination: string) => number;
  burst: number;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}): RateLimiter {
  const now = options.now ?? (() => performance.now());
  const sleep =
    options.sleep ??
    ((ms: number, signal?: AbortSignal) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        signal?.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        });
      }));
  const buckets = new Map<string, { tokens: number; at: number; queue: Promise<void> }>();
  return {
    take(destination, signal) {
      const rate = options.ratePerSecond(destination);
      let b = buckets.get(destination);
      if (!b) {
        b = { tokens: options.burst, at: now(), queue: Promise.resolve() };
        buckets.set(destination, b);
      }
      const bucket = b;
      const turn = bucket.queue.then(async () => {
        const t = now();
        bucket.tokens = Math.min(options.burst, bucket.tokens + ((t - bucket.at) / 1000) * rate);
        bucket.at = t;
        if (bucket.tokens < 1) {
          await sleep(((1 - bucket.tokens) / rate) * 1000, signal);
          bucket.tokens = 1;
          bucket.at = now();
        }
        bucket.tokens -= 1;
      });
      bucket.queue = turn;
      return turn;
    },
  };
}
