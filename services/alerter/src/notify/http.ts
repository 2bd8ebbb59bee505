import { createHash } from 'node:crypto';
import type { DeliveryResult } from './types.js';

/** destinationId hashes a URL or key into a short, secret-free identifier. */
export function destinationId(kind: string, secret: string): string {
  return `${kind}:${createHash('sha256').update(secret).digest('hex').slice(0, 12)}`;
}

/** parseRetryAfter reads a Retry-After header (seconds or an HTTP date) as ms. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.round(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * postJson sends one JSON POST and classifies the outcome the way every receiver here does:
 * 2xx succeeds; 429 and 5xx and network errors may be retried (429 with its Retry-After); any
 * other status is permanent. `accept` can demand more of a 2xx (Slack's plain "ok").
 */
export async function postJson(
  url: string,
  body: string,
  options: {
    headers?: Record<string, string>;
    signal: AbortSignal;
    accept?: (status: number, text: string) => boolean;
  },
): Promise<DeliveryResult> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'Tapwire-Alerter/1', ...options.headers },
      body,
      signal: options.signal,
    });
  } catch (err) {
    const name = (err as Error).name;
    return {
      ok: false,
      retryable: true,
      reason: name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'network error',
    };
  }
  const text = await res.text().catch(() => '');
  if (res.status >= 200 && res.status < 300) {
    if (!options.accept || options.accept(res.status, text)) return { ok: true, status: res.status };
    return {
      ok: false,
      retryable: false,
      status: res.status,
      reason: `unexpected answer: ${text.slice(0, 200)}`,
    };
  }
  const reason = `HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`;
  if (res.status === 429) {
    const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
    return {
      ok: false,
      retryable: true,
      status: 429,
      reason,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    };
  }
  return { ok: false, retryable: res.status >= 500, status: res.status, reason };
}
