import { isatty } from 'node:tty';
import { trace } from '@opentelemetry/api';
import type { TelemetryConfig } from '@tapwire/config';
import { type DestinationStream, type Logger, pino } from 'pino';
import { prettyFactory } from 'pino-pretty';

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
  /**
   * How lines are written: JSON, human-readable, or `auto` (the default): human-readable when the
   * file descriptor is a terminal, else JSON. A given `destination` is never a terminal.
   */
  readonly format?: TelemetryConfig['logFormat'];
}

/** prettyLogs says whether createLogger writes human-readable lines for this format and output. */
export function prettyLogs(format: TelemetryConfig['logFormat'], terminal: boolean): boolean {
  return format === 'pretty' || (format === 'auto' && terminal);
}

/**
 * prettyDestination turns pino's JSON lines into human-readable ones, one line per entry, and
 * writes them to `out` in the same call: a synchronous destination stays synchronous, so a worker
 * thread loses no line (a pino transport would format on another thread, after the fact).
 */
function prettyDestination(out: DestinationStream, colorize: boolean): DestinationStream {
  const prettify = prettyFactory({
    colorize,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
  });
  const flushable = out as DestinationStream & { flush?(cb?: () => void): void; flushSync?(): void };
  return {
    write: (line: string) => out.write(prettify(line)),
    ...(flushable.flush ? { flush: (cb?: () => void) => flushable.flush?.(cb) } : {}),
    ...(flushable.flushSync ? { flushSync: () => flushable.flushSync?.() } : {}),
  } as DestinationStream;
}

/**
 * createLogger returns a pino logger writing JSON lines (human-readable ones on a terminal, see
 * `format`), with secrets redacted and the active OpenTelemetry trace_id/span_id on every line
 * logged inside a span.
 */
export function createLogger(options: LoggerOptions): Logger {
  const fd = options.fd ?? 1;
  const terminal = options.destination === undefined && isatty(fd);
  const out = options.destination ?? pino.destination({ dest: fd, sync: options.sync ?? false });
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
    prettyLogs(options.format ?? 'auto', terminal) ? prettyDestination(out, terminal) : out,
  );
}

export type { Logger };
