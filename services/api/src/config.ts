import { adminListenerSchema, portSchema, tokenNameSchema, tokenSha256Schema } from '@tapwire/config';
import { tenantSchema } from '@tapwire/schema';
import { z } from 'zod';

/** SCOPES are what a token may do: read analytics, or also administer (pipeline health, later silences). */
export const SCOPES = ['read', 'admin'] as const;

/** Scope names one token permission. */
export type TokenScope = (typeof SCOPES)[number];

/** apiTokenSchema is one bearer token, stored only as the SHA-256 of its text. */
export const apiTokenSchema = z.strictObject({
  name: tokenNameSchema.describe(
    'Name of the token (logged and used as its rate-limit key; never the token itself).',
  ),
  sha256: tokenSha256Schema,
  tenant: z
    .union([z.literal('*'), tenantSchema])
    .describe('Tenant whose rows the token reads, or "*" for every tenant.'),
  scopes: z
    .array(z.enum(SCOPES))
    .min(1)
    .default(['read'])
    .describe('Permissions: "read" (every /v1 question), "admin" (also pipeline health). Default: [read].'),
});

/** ApiToken is one configured bearer token. */
export type ApiToken = z.infer<typeof apiTokenSchema>;

/** apiConfigSchema configures the analytics API service. */
export const apiConfigSchema = z
  .strictObject({
    listen: z
      .strictObject({
        host: z.string().default('0.0.0.0').describe('Address the API listens on. Default: 0.0.0.0.'),
        port: portSchema.default(8081).describe('Port of the API. Default: 8081.'),
      })
      .prefault({})
      .describe('Where the API listens.'),
    admin: adminListenerSchema(9466).describe('Admin endpoints of the API process.'),
    headersTimeoutMs: z
      .number()
      .int()
      .positive()
      // Node refuses a headers timeout above its request timeout (300 s by default).
      .max(300_000)
      .default(60_000)
      .describe(
        'Longest a client may take to send its request line and headers, in ms (at most 300000); then 408. Default: 60000.',
      ),
    tokens: z
      .array(apiTokenSchema)
      .default([])
      .describe('Bearer tokens. Without any, every /v1 request is refused with 401.')
      .superRefine((tokens, ctx) => {
        const seen = new Set<string>();
        tokens.forEach((t, i) => {
          if (seen.has(t.sha256))
            ctx.addIssue({ code: 'custom', path: [i, 'sha256'], message: 'duplicate token hash' });
          seen.add(t.sha256);
        });
      }),
    maxWindowHours: z
      .number()
      .int()
      .min(1)
      .max(24 * 400)
      .default(24 * 31)
      .describe('Longest time window one query may cover, in hours. Default: 744 (31 days).'),
    maxPoints: z
      .number()
      .int()
      .min(10)
      .max(20_000)
      .default(1500)
      .describe('Most points one series may have (window / step). Default: 1500.'),
    defaultPoints: z
      .number()
      .int()
      .min(10)
      .max(20_000)
      .default(300)
      .describe('Points aimed for when a series request gives no step. Default: 300.'),
    queryTimeoutS: z
      .number()
      .int()
      .min(1)
      .max(600)
      .default(10)
      .describe('ClickHouse max_execution_time per query, in seconds; slower answers are 504. Default: 10.'),
    maxResultRows: z
      .number()
      .int()
      .min(100)
      .default(200_000)
      .describe('ClickHouse max_result_rows per query; larger answers are 422. Default: 200000.'),
    maxQueryMemoryBytes: z
      .number()
      .int()
      .min(0)
      .default(2_000_000_000)
      .describe('ClickHouse max_memory_usage per query in bytes (0 = server default). Default: 2000000000.'),
    cacheTtlMs: z
      .number()
      .int()
      .min(0)
      .max(600_000)
      .default(5000)
      .describe('How long an identical query is answered from memory, in ms (0 disables). Default: 5000.'),
    cacheMaxEntries: z
      .number()
      .int()
      .min(1)
      .default(1000)
      .describe('Answers kept in the cache. Default: 1000.'),
    topicPrefix: z
      .string()
      .regex(/^[A-Za-z0-9._-]*$/)
      .default('')
      .describe('Prefix of the Kafka topic names (silences), as for the other services. Default: empty.'),
    alertingFile: z
      .string()
      .min(1)
      .optional()
      .describe(
        'The alerter’s alerting file, for GET /v1/rules (receivers are never shown) and the SLOs of GET /v1/slos (re-read on change and on SIGHUP; a file that does not validate keeps the SLOs in use). Default: none.',
      ),
    rateLimit: z
      .strictObject({
        max: z.number().int().min(1).default(600).describe('Requests per token per window. Default: 600.'),
        unauthenticatedMax: z
          .number()
          .int()
          .min(1)
          .default(60)
          .describe(
            'Requests per client address per window without a valid token (each a 401); beyond it 429. Default: 60.',
          ),
        windowMs: z
          .number()
          .int()
          .min(1000)
          .default(60_000)
          .describe('Rate-limit window in ms. Default: 60000.'),
      })
      .prefault({})
      .describe(
        'Rate limits per token, and per client address for requests without a valid token (429 with Retry-After beyond them).',
      ),
  })
  .prefault({});

/** ApiConfig configures the analytics API. */
export type ApiConfig = z.infer<typeof apiConfigSchema>;
