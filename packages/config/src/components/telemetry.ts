import { z } from 'zod';

/** LOG_LEVELS are pino's levels, plus `silent`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** LOG_FORMATS are how log lines are written: JSON, human-readable, or pretty on a terminal and JSON elsewhere. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;

/** telemetryConfigSchema configures logging and the service's own OpenTelemetry traces. */
export const telemetryConfigSchema = z
  .strictObject({
    logLevel: z
      .enum(LOG_LEVELS)
      .default('info')
      .describe('Minimum level of log lines on stdout. Default: info.'),
    logFormat: z
      .enum(LOG_FORMATS)
      .default('auto')
      .describe(
        'How log lines are written: json (one JSON object a line), pretty (human-readable), or auto: pretty when the output is a terminal, else json. Default: auto.',
      ),
    serviceName: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe('service.name of this process in traces and logs. Default: tapwire-<command>.'),
    otlpEndpoint: z
      .union([z.url({ protocol: /^https?$/ }), z.literal('')])
      .default('')
      .describe(
        'OTLP gRPC endpoint for the service’s own traces, e.g. http://127.0.0.1:4317. Empty: tracing off.',
      ),
    otlpHeaders: z
      .record(z.string(), z.string())
      .default({})
      .describe('Extra gRPC metadata sent with every OTLP export (e.g. an auth token). Never logged.'),
    traceSampleRatio: z
      .number()
      .min(0)
      .max(1)
      .default(1)
      .describe('Fraction of the service’s own root traces recorded (parent-based). Default: 1.'),
  })
  .prefault({});

/** TelemetryConfig configures logging and self-tracing. */
export type TelemetryConfig = z.infer<typeof telemetryConfigSchema>;
