import { REDACTED } from '@tapwire/telemetry';
import { ALWAYS_REDACTED_HEADERS } from './config.js';

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

/** HeaderRecorder picks configured headers for span attributes, redacting secrets. */
export type HeaderRecorder = (
  headers: Record<string, string | string[] | undefined>,
  prefix: string,
  into: Record<string, string>,
) => void;

/** createHeaderRecorder records the listed headers; always- and configured-redacted ones become [REDACTED]. */
export function createHeaderRecorder(record: readonly string[], redact: readonly string[]): HeaderRecorder {
  const redacted = new Set([...ALWAYS_REDACTED_HEADERS, ...redact.map((h) => h.toLowerCase())]);
  const names = record.map((h) => h.toLowerCase());
  return (headers, prefix, into) => {
    for (const name of names) {
      const v = headers[name];
      if (v === undefined) continue;
      into[`${prefix}${name}`] = redacted.has(name) ? REDACTED : Array.isArray(v) ? v.join(', ') : v;
    }
  };
}
