import { createHash } from 'node:crypto';
import { createDecoder } from 'fast-jwt';
import type { ProxyConfig } from './config.js';
import type { JwtVerifier } from './policy/jwt.js';

/** CONSUMER_UNKNOWN is recorded for an API key not in the table or a JWT that fails verification. */
export const CONSUMER_UNKNOWN = 'unknown';

/** ConsumerIdentifier names the caller of a request without ever keeping its secret. */
export type ConsumerIdentifier = (headers: Record<string, string | string[] | undefined>) => string;

/** ApiKeyEntry is one configured API key: the consumer it names and the scopes it holds. */
export interface ApiKeyEntry {
  readonly id: string;
  readonly scopes: ReadonlySet<string>;
}

/** createApiKeyTable indexes the configured API keys by the hex SHA-256 of the key. */
export function createApiKeyTable(config: ProxyConfig['consumers']): Map<string, ApiKeyEntry> {
  return new Map(config.apiKeys.map((k) => [k.sha256, { id: k.id, scopes: new Set(k.scopes) }]));
}

/** lookupApiKey finds a presented API key by its SHA-256; the key itself is never kept. */
export function lookupApiKey(table: Map<string, ApiKeyEntry>, key: string): ApiKeyEntry | undefined {
  return table.get(createHash('sha256').update(key).digest('hex'));
}

/** bearerToken returns the token of an `Authorization: Bearer` header ('' when there is none). */
export function bearerToken(auth: string | string[] | undefined): string {
  if (typeof auth !== 'string' || auth.length <= 7 || auth.slice(0, 7).toLowerCase() !== 'bearer ') return '';
  return auth.slice(7).trim();
}

/** consumerClaim reads the claim recorded as the consumer ('unknown' when absent or not a string). */
export function consumerClaim(payload: Record<string, unknown>, claim: string): string {
  const value = payload[claim];
  return typeof value === 'string' && value !== '' ? value.slice(0, 128) : CONSUMER_UNKNOWN;
}

/**
 * createConsumerIdentifier maps an API key (by SHA-256 lookup) or a bearer JWT's claim to a
 * consumer id; '' when the request carries neither. This is observation only, for routes without
 * an auth policy: an unknown key still reaches the upstream. A JWT is checked by `jwt` (the same
 * verifier an auth policy uses) when keys are configured, else its claim is read unverified.
 */
export function createConsumerIdentifier(
  config: ProxyConfig['consumers'],
  jwt?: JwtVerifier,
): ConsumerIdentifier {
  const header = config.apiKeyHeader.toLowerCase();
  const table = createApiKeyTable(config);
  const claim = config.jwt?.claim ?? 'sub';
  const decode = config.jwt && !jwt ? createDecoder() : undefined;

  return (headers) => {
    const apiKey = headers[header];
    if (typeof apiKey === 'string' && apiKey !== '') {
      return lookupApiKey(table, apiKey)?.id ?? CONSUMER_UNKNOWN;
    }
    if (!jwt && !decode) return '';
    const token = bearerToken(headers.authorization);
    if (token === '') return '';
    if (jwt) {
      const r = jwt.verify(token);
      return r.ok ? consumerClaim(r.payload, claim) : CONSUMER_UNKNOWN;
    }
    try {
      return consumerClaim(decode!(token) as Record<string, unknown>, claim);
    } catch {
      return CONSUMER_UNKNOWN;
    }
  };
}
