import type { RateLimiter } from './rate-limiter.js';
import { groupStatus, type Notification, type Notifier } from './types.js';

/** RetryPolicy bounds the attempts of one notification. */
export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
}

/** DeliveryOutcome is how a notification ended: delivered, skipped (resolved-only and not wanted), failed (retries exhausted) or rejected (4xx: the receiver is broken). */
export interface DeliveryOutcome {
  readonly outcome: 'delivered' | 'skipped' | 'failed' | 'rejected';
  readonly attempts: number;
  readonly reason: string;
}

/**
 * deliver sends a notification through one notifier: rate-limited per destination, retried with
 * exponential backoff and full jitter on 429 (waiting at least its Retry-After), 5xx and network
 * errors, never retried on other statuses. The one retry policy of every receiver.
 */
export async function deliver(
  notifier: Notifier,
  notification: Notification,
  deps: {
    limiter: RateLimiter;
    policy: RetryPolicy;
    signal: AbortSignal;
    sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
    random?: () => number;
  },
): Promise<DeliveryOutcome> {
  if (!notifier.sendResolved && groupStatus(notification.alerts) === 'resolved')
    return { outcome: 'skipped', attempts: 0, reason: 'send_resolved is off' };
  const sleep = deps.sleep ?? abortableSleep;
  const random = deps.random ?? Math.random;
  let reason = '';
  for (let attempt = 1; attempt <= deps.policy.maxAttempts; attempt++) {
    if (deps.signal.aborted) return { outcome: 'failed', attempts: attempt - 1, reason: 'stopped' };
    await deps.limiter.take(notifier.destination, deps.signal);
    const result = await notifier.send(notification, deps.signal);
    if (result.ok) return { outcome: 'delivered', attempts: attempt, reason: '' };
    reason = result.reason;
    if (!result.retryable) return { outcome: 'rejected', attempts: attempt, reason };
    if (attempt === deps.policy.maxAttempts) break;
    const backoff = Math.min(deps.policy.maxBackoffMs, deps.policy.initialBackoffMs * 2 ** (attempt - 1));
    const jittered = Math.round(random() * backoff);
    await sleep(Math.max(jittered, result.retryAfterMs ?? 0), deps.signal);
  }
  return { outcome: 'failed', attempts: deps.policy.maxAttempts, reason };
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}
