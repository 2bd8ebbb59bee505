import { trace } from '@opentelemetry/api';
import type { TelemetryConfig } from '@tapwire/config';
import { type DestinationStream, type Logger, pino } from 'pino';

/** REDACTED_KEYS are field names whose values never reach a log line, at any of the first three levels. */
export const REDACTED_KEYS = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'api-key',
  'x-api-key',
  'apiKey',
  'password',
  'token',
  'secret',
  'routingKey',
  'webhookUrl',
] as const;

/** REDACTED is the text that replaces a secret in logs and events. */
export const REDACTED = '[REDACTED]';

function redactPaths(): string[] {
  const paths: string[] = [];
  for (const key of REDACTED_KEYS) {
    const leaf = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `.${key}` : `["${key}"]`;
    for (const prefix of ['', '*', '*.*', '*.*.*']) {
      paths.push(prefix === '' ? leaf.replace(/^\./, '') : `${prefix}${leaf}`);
    }
  }
  return paths;
}

/** LoggerOptions configures createLogger; `destination` defaults to stdout. */
export interface LoggerOptions {
  readonly name: string;
  readonly level: TelemetryConfig['logLevel'];
  readonly destination?: DestinationStream;
  /** File descriptor written when no destination is given: 1 for services, 2 for CLI commands. */
  readonly fd?: 1 | 2;
  /** Write each line before returning (for a worker thread, whose unwritten lines die with it). */
  readonly sync?: boolean;
}

/**
 * createLogger returns a pino logger writing JSON lines, with secrets redacted and the active
 * OpenTelemetry trace_id/span_id on every line logged inside a span.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      name: options.name,
      level: options.level,
      redact: { paths: redactPaths(), censor: REDACTED },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin() {
        const ctx = trace.getActiveSpan()?.spanContext();
        return ctx ? { trace_id: ctx.traceId, span_id: ctx.spanId } : {};
      },
    },
    options.destination ?? pino.destination({ dest: options.fd ?? 1, sync: options.sync ?? false }),
  );
}

export type { Logger };
