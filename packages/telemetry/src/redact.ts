import { REDACTED } from './logger.js';

/** DEFAULT_REDACTED_QUERY_PARAMS are query parameters whose values never leave the process. */
export const DEFAULT_REDACTED_QUERY_PARAMS = [
  'token',
  'access_token',
  'api_key',
  'apikey',
  'key',
  'password',
  'secret',
  'signature',
] as const;

/** ALWAYS_REDACTED_HEADERS are never recorded in clear, whatever the configuration says. */
export const ALWAYS_REDACTED_HEADERS = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
] as const;

/** QueryRedactor replaces the values of sensitive query parameters. */
export type QueryRedactor = (query: string) => string;

/** createQueryRedactor builds a redactor for the named parameters (case-insensitive, also when percent-encoded). */
export function createQueryRedactor(params: readonly string[]): QueryRedactor {
  const names = new Set(params.map((p) => p.toLowerCase()));
  return (query) => {
    if (query === '') return '';
    const parts = query.split('&');
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      const eq = part.indexOf('=');
      const rawName = eq === -1 ? part : part.slice(0, eq);
      let name: string;
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, ' ')).toLowerCase();
      } catch {
        name = rawName.toLowerCase();
      }
      if (names.has(name)) parts[i] = `${rawName}=${REDACTED}`;
    }
    return parts.join('&');
  };
}
