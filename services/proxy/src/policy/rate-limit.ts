import type { RateLimitPolicy } from './config.js';

/** RateLimitDecision is what a rate limit decided for one request and the headers that say so. */
export interface RateLimitDecision {
  readonly allowed: boolean;
  /** The quota per window that applied (the consumer's override or the policy's limit). */
  readonly limit: number;
  /** Requests left in the window after this one (0 when refused). */
  readonly remaining: number;
  /** Seconds until a request would be allowed again (≥ 1); 0 when allowed. */
  readonly retryAfterSeconds: number;
  /** RateLimit-Policy and RateLimit header values (draft-ietf-httpapi-ratelimit-headers-10). */
  readonly policyHeader: string;
  readonly stateHeader: string;
}

/** RateLimiter counts requests per key for every rate-limit policy; it never throws. */
export interface RateLimiter {
  /**
   * take counts one request of `consumer` ('' or 'unknown' when anonymous) from `clientAddress`
   * under `policy`, unless that would pass the limit; a refused request is not counted.
   */
  take(policy: RateLimitPolicy, consumer: string, clientAddress: string): RateLimitDecision;
  /** keys is how many keys a policy holds now (for tests and metrics). */
  keys(policy: RateLimitPolicy): number;
}

/** RATE_LIMIT_MAX_KEYS is the default cap on keys per policy; past it the least recently counted go first. */
export const RATE_LIMIT_MAX_KEYS = 100_000;

// Idle keys checked for removal per request: enough to keep up with any arrival rate, O(1) each.
const SWEEP_PER_TAKE = 4;

interface Counter {
  /** Index of the fixed window `current` counts (floor(now / window)). */
  window: number;
  previous: number;
  current: number;
}

interface CompiledLimit {
  readonly windowMs: number;
  readonly windowSeconds: number;
  readonly byClient: boolean;
  readonly limit: number;
  readonly overrides: ReadonlyMap<string, number>;
  readonly name: string;
  /** RateLimit-Policy per limit in use (the policy's and each override's). */
  readonly policyHeaders: Map<number, string>;
  /**
   * Counters in order of the window they were last counted in (a key is moved to the end when
   * first counted in a new window), so idle and oldest keys are always at the front.
   */
  readonly counters: Map<string, Counter>;
}

/**
 * createRateLimiter builds the sliding-window counters of every rate-limit policy, compiled on
 * first use and keyed by the policy object. A key's usage is the current fixed window's count plus
 * the previous window's weighted by how much of it the sliding window still covers (Cloudflare's
 * and Kong's "sliding" limiter): O(1) memory per key, no double burst at a window edge, and the
 * first window is exact. Keys idle for two windows are dropped a few per request; past `maxKeys`
 * per policy the least recently counted key is evicted. `now` is a monotonic clock in ms.
 */
export function createRateLimiter(opts: { now: () => number; maxKeys?: number }): RateLimiter {
  const { now } = opts;
  const maxKeys = opts.maxKeys ?? RATE_LIMIT_MAX_KEYS;
  const compiled = new WeakMap<RateLimitPolicy, CompiledLimit>();

  function compile(p: RateLimitPolicy): CompiledLimit {
    const c: CompiledLimit = {
      windowMs: p.windowSeconds * 1000,
      windowSeconds: p.windowSeconds,
      byClient: p.by === 'client',
      limit: p.limit,
      overrides: new Map(p.overrides.map((o) => [o.consumer, o.limit])),
      name: p.policyName,
      policyHeaders: new Map(),
      counters: new Map(),
    };
    compiled.set(p, c);
    return c;
  }

  function policyHeader(c: CompiledLimit, limit: number): string {
    let h = c.policyHeaders.get(limit);
    if (h === undefined) {
      h = `"${c.name}";q=${limit};w=${c.windowSeconds}`;
      c.policyHeaders.set(limit, h);
    }
    return h;
  }

  function sweep(c: CompiledLimit, window: number): void {
    let n = 0;
    for (const [key, counter] of c.counters) {
      if (n++ === SWEEP_PER_TAKE || counter.window >= window - 1) return;
      c.counters.delete(key);
    }
  }

  return {
    take(policy, consumer, clientAddress) {
      const c = compiled.get(policy) ?? compile(policy);
      const anonymous = consumer === '' || consumer === 'unknown';
      // Consumer ids and addresses live in one map: a prefix keeps an id from posing as an address.
      const key = c.byClient || anonymous ? `a ${clientAddress}` : `c ${consumer}`;
      const limit = anonymous ? c.limit : (c.overrides.get(consumer) ?? c.limit);
      const t = now();
      const window = Math.floor(t / c.windowMs);
      const intoWindow = t - window * c.windowMs;
      sweep(c, window);
      let counter = c.counters.get(key);
      if (counter === undefined) {
        if (c.counters.size >= maxKeys) {
          const oldest = c.counters.keys().next();
          if (!oldest.done) c.counters.delete(oldest.value);
        }
        counter = { window, previous: 0, current: 0 };
        c.counters.set(key, counter);
      } else if (counter.window !== window) {
        counter.previous = counter.window === window - 1 ? counter.current : 0;
        counter.current = 0;
        counter.window = window;
        c.counters.delete(key);
        c.counters.set(key, counter);
      }
      const weight = (c.windowMs - intoWindow) / c.windowMs;
      const used = counter.current + Math.floor(counter.previous * weight);
      const toWindowEnd = Math.max(1, Math.ceil((c.windowMs - intoWindow) / 1000));
      if (used < limit) {
        counter.current++;
        const remaining = limit - used - 1;
        return {
          allowed: true,
          limit,
          remaining,
          retryAfterSeconds: 0,
          policyHeader: policyHeader(c, limit),
          stateHeader: `"${c.name}";r=${remaining};t=${toWindowEnd}`,
        };
      }
      const retryAfterSeconds = Math.max(1, Math.ceil(waitMs(counter, limit, intoWindow, c.windowMs) / 1000));
      return {
        allowed: false,
        limit,
        remaining: 0,
        retryAfterSeconds,
        policyHeader: policyHeader(c, limit),
        stateHeader: `"${c.name}";r=0;t=${retryAfterSeconds}`,
      };
    },
    keys(policy) {
      return compiled.get(policy)?.counters.size ?? 0;
    },
  };
}

/**
 * waitMs is how long until current + floor(previous × weight) drops below the limit: within this
 * window as the previous one's weight fades, else in the next window as this one's does.
 */
function waitMs(counter: Counter, limit: number, intoWindow: number, windowMs: number): number {
  const { previous, current } = counter;
  // used < limit ⇔ floor(prev × w) ≤ limit − 1 − current ⇔ prev × w < limit − current.
  if (current < limit && previous > 0) {
    // prev × (windowMs − x) / windowMs < limit − current  ⇔  x > windowMs × (1 − (limit − current) / prev)
    const x = windowMs * (1 - (limit - current) / previous);
    return Math.max(0, Math.floor(x) + 1 - intoWindow);
  }
  // Next window: previous becomes `current`, current becomes 0.
  const x = windowMs * (1 - limit / current);
  return windowMs - intoWindow + Math.max(0, Math.floor(x) + 1);
}
