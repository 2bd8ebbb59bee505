import { ALWAYS_REDACTED_HEADERS, REDACTED } from '@tapwire/telemetry';

// The query redactor is shared with the OTLP receiver, so it lives in @tapwire/telemetry.
export { createQueryRedactor, type QueryRedactor } from '@tapwire/telemetry';

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
