import { emitConfigShape } from '@tapwire/emission';
import { tenantSchema } from '@tapwire/schema';
import { DEFAULT_REDACTED_QUERY_PARAMS } from '@tapwire/telemetry';
import { z } from 'zod';

const port = z.number().int().min(0).max(65_535);

/** otlpTokenSchema is one token the receiver accepts, stored only as the SHA-256 of its text. */
export const otlpTokenSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, "_", "." or "-"')
    .describe('Name of the token (logged and in metrics; never the token itself).'),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters (`tapwire api hash-token` prints it)')
    .describe('SHA-256 of the token text, hex. The token itself never appears in config.'),
  tenant: tenantSchema.describe('Tenant the spans sent with this token belong to.'),
});

/** OtlpToken is one validated receiver token. */
export type OtlpToken = z.infer<typeof otlpTokenSchema>;

/** otlpConfigSchema configures the OTLP trace receiver: listeners, tokens, limits, redaction, throttling, emission. */
export const otlpConfigSchema = z
  .strictObject({
    grpc: z
      .strictObject({
        host: z.string().default('0.0.0.0').describe('Address of OTLP/gRPC. Default: 0.0.0.0.'),
        port: port.default(4317).describe('Port of OTLP/gRPC. Default: 4317.'),
      })
      .prefault({}),
    http: z
      .strictObject({
        host: z
          .string()
          .default('0.0.0.0')
          .describe('Address of OTLP/HTTP (POST /v1/traces). Default: 0.0.0.0.'),
        port: port.default(4318).describe('Port of OTLP/HTTP. Default: 4318.'),
      })
      .prefault({}),
    admin: z
      .strictObject({
        host: z
          .string()
          .default('127.0.0.1')
          .describe('Address of /healthz, /readyz and /metrics. Default: 127.0.0.1.'),
        port: port.default(9468).describe('Port of the admin endpoints. Default: 9468.'),
      })
      .prefault({}),
    tokens: z
      .array(otlpTokenSchema)
      .default([])
      .describe(
        'Tokens apps send as "Authorization: Bearer <token>" or "x-tapwire-token: <token>" (gRPC: the same metadata keys); each maps to one tenant. Without any, every export is refused (401 / UNAUTHENTICATED).',
      )
      .superRefine((tokens, ctx) => {
        const seen = new Set<string>();
        tokens.forEach((t, i) => {
          if (seen.has(t.sha256))
            ctx.addIssue({ code: 'custom', path: [i, 'sha256'], message: 'duplicate token hash' });
          seen.add(t.sha256);
        });
      }),
    limits: z
      .strictObject({
        maxMessageBytes: z
          .number()
          .int()
          .min(1024)
          .max(256 * 1024 * 1024)
          .default(4 * 1024 * 1024)
          .describe(
            'Largest export request, in bytes, after decompression; larger ones get 413 / RESOURCE_EXHAUSTED. Default: 4194304 (4 MiB, the gRPC default).',
          ),
        maxSpansPerRequest: z
          .number()
          .int()
          .min(1)
          .max(1_000_000)
          .default(10_000)
          .describe('Most spans one export request may hold; more → 400 / INVALID_ARGUMENT. Default: 10000.'),
        maxAttributesPerSpan: z
          .number()
          .int()
          .min(1)
          .max(128)
          .default(128)
          .describe(
            'Most attributes a span may have (OpenTelemetry’s default limit); a span with more is rejected (partial success). Default: 128.',
          ),
        maxAttributeValueChars: z
          .number()
          .int()
          .min(64)
          .max(4096)
          .default(4096)
          .describe(
            'Longest attribute value kept, in characters; longer ones are cut and marked. Default: 4096.',
          ),
        maxEventsPerSpan: z
          .number()
          .int()
          .min(0)
          .max(128)
          .default(128)
          .describe('Most span events kept per span; the rest are dropped and counted. Default: 128.'),
        maxLinksPerSpan: z
          .number()
          .int()
          .min(0)
          .max(128)
          .default(128)
          .describe('Most links kept per span; the rest are dropped and counted. Default: 128.'),
      })
      .prefault({}),
    redaction: z
      .strictObject({
        attributeKeys: z
          .array(z.string().min(1).max(256))
          .default([])
          .describe(
            'Extra attribute keys whose values are replaced by [REDACTED] (exact, case-insensitive); http.request.header.authorization, cookies and the like always are.',
          ),
        queryParams: z
          .array(z.string().min(1).max(128))
          .default([...DEFAULT_REDACTED_QUERY_PARAMS])
          .describe(
            'Query parameters whose values are replaced by [REDACTED] in URL attributes (url.full, url.query, http.url, http.target, url.original), case-insensitive.',
          ),
      })
      .prefault({}),
    throttle: z
      .strictObject({
        maxInFlightBytes: z
          .number()
          .int()
          .min(1024)
          .default(64 * 1024 * 1024)
          .describe(
            'Most request bytes being received, decoded and written at once; beyond it exports are refused as retryable (429 / RESOURCE_EXHAUSTED). Default: 67108864 (64 MiB).',
          ),
        maxLogBacklogRatio: z
          .number()
          .min(0.1)
          .max(1)
          .default(0.9)
          .describe(
            'Share of emit.logMaxBytes the unshipped local log may fill (Kafka slow or away) before exports are refused as retryable; the rest of the cap absorbs what is in flight. Default: 0.9.',
          ),
        retryAfterS: z
          .number()
          .int()
          .min(1)
          .max(3600)
          .default(5)
          .describe(
            'Wait a refused exporter is told to observe (Retry-After, google.rpc.RetryInfo), in seconds; also how long the receiver keeps refusing after the local log failed a write. Default: 5.',
          ),
      })
      .prefault({}),
    emit: z
      .strictObject(
        emitConfigShape({ section: 'otlp', noun: 'OTLP receiver', defaultLogDir: '.tapwire/otlp-log' }),
      )
      .prefault({}),
    shutdownGraceMs: z
      .number()
      .int()
      .min(0)
      .default(15_000)
      .describe('On SIGTERM: longest wait for in-flight exports and event shipping, in ms. Default: 15000.'),
  })
  .prefault({});

/** OtlpConfig is the validated OTLP receiver configuration. */
export type OtlpConfig = z.infer<typeof otlpConfigSchema>;
