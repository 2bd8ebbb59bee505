import { createHash } from 'node:crypto';
import { createDecoder, createVerifier } from 'fast-jwt';
import type { ProxyConfig } from './config.js';

/** CONSUMER_UNKNOWN is recorded for an API key not in the table or a JWT that fails verification. */
export const CONSUMER_UNKNOWN = 'unknown';

/** ConsumerIdentifier names the caller of a request without ever keeping its secret. */
export type ConsumerIdentifier = (headers: Record<string, string | string[] | undefined>) => string;

/**
 * createConsumerIdentifier maps an API key (by SHA-256 lookup) or a bearer JWT's claim to a
 * consumer id; '' when the request carries neither. The proxy observes, it does not enforce:
 * an unknown key still reaches the upstream.
 */
export function createConsumerIdentifier(config: ProxyConfig['consumers']): ConsumerIdentifier {
  const header = config.apiKeyHeader.toLowerCase();
  const byHash = new Map(config.apiKeys.map((k) => [k.sha256, k.id]));
  const jwt = config.jwt;
  const claim = jwt?.claim ?? 'sub';
  const key = jwt?.secret ?? jwt?.publicKey;
  const read = jwt ? (key ? createVerifier({ key, cache: 1000 }) : createDecoder()) : undefined;

  return (headers) => {
    const apiKey = headers[header];
    if (typeof apiKey === 'string' && apiKey !== '') {
      return byHash.get(createHash('sha256').update(apiKey).digest('hex')) ?? CONSUMER_UNKNOWN;
    }
    if (read) {
      const auth = headers.authorization;
      if (typeof auth === 'string' && auth.length > 7 && auth.slice(0, 7).toLowerCase() === 'bearer ') {
        try {
          const payload = read(auth.slice(7).trim()) as Record<string, unknown>;
          const value = payload[claim];
          return typeof value === 'string' && value !== '' ? value.slice(0, 128) : CONSUMER_UNKNOWN;
        } catch {
          return CONSUMER_UNKNOWN;
        }
      }
    }
    return '';
  };
}
