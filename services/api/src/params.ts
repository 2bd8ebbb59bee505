import {
  ALERT_STATES_LISTED,
  CONSUMER_SORTS,
  OVERVIEW_SORTS,
  QUANTILES,
  SOURCES,
  STATUS_CLASSES,
} from '@tapwire/analytics';
import { LIMITS, parseTime, SILENCE_MATCHER, tenantSchema, traceIdSchema } from '@tapwire/schema';
import { z } from 'zod';

/**
 * Query-string schemas of the /v1 endpoints. Every value is bounded here, so what reaches the
 * Store is already valid; the handlers then check the window and point limits from config.
 */

const TIME_HINT = 'must be RFC 3339 (2026-11-26T10:00:00Z) or relative (now, now-15m, now-24h, now-7d)';

function timeExpression(fallback: string) {
  return z
    .string()
    .max(64)
    .default(fallback)
    .transform((text, ctx) => {
      const ms = parseTime(text);
      if (ms === undefined || ms < 0 || ms > 4_102_444_800_000) {
        ctx.addIssue({ code: 'custom', message: TIME_HINT });
        return z.NEVER;
      }
      return Math.floor(ms / 1000);
    })
    .describe(`Time: ${TIME_HINT.replace('must be ', '')}. Default: ${fallback}.`);
}

const UNIT_S: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

const stepSchema = z
  .string()
  .regex(/^[1-9][0-9]{0,5}[smhd]?$/, 'must be a duration such as 30s, 5m, 1h or a number of seconds')
  .transform((text, ctx) => {
    const unit = /[smhd]$/.test(text) ? text.slice(-1) : 's';
    const seconds = Number.parseInt(text, 10) * (UNIT_S[unit] ?? 1);
    if (seconds > 86_400) {
      ctx.addIssue({ code: 'custom', message: 'must be at most 1d' });
      return z.NEVER;
    }
    return seconds;
  })
  .optional()
  .describe(
    'Series resolution (30s, 5m, 1h, …). Default: chosen so the window has about `defaultPoints` points.',
  );

const text = (max: number, what: string) => z.string().min(1).max(max).describe(what);
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const filterShape = {
  from: timeExpression('now-1h'),
  to: timeExpression('now'),
  tenant: tenantSchema
    .optional()
    .describe('Tenant to read (tokens bound to a tenant may only name their own).'),
  service: text(LIMITS.serviceChars, 'Service name.').optional(),
  route: text(LIMITS.routeChars, 'Route template, e.g. /users/:id.').optional(),
  method: z
    .string()
    .regex(/^[A-Za-z]{1,16}$/, 'must be an HTTP method such as GET')
    .transform((m) => m.toUpperCase())
    .optional()
    .describe('HTTP method.'),
  consumer: text(LIMITS.nameChars, 'Consumer: API-key id or JWT subject.').optional(),
  status_class: z.enum(STATUS_CLASSES).optional().describe('HTTP status class.'),
};

const source = z
  .enum(SOURCES)
  .default('auto')
  .describe('auto: 1-minute rollups when the window, step and filters allow, raw rows otherwise.');

/** overviewParams is the query string of GET /v1/overview. */
export const overviewParams = z.strictObject({
  ...filterShape,
  group_by: z
    .enum(['service', 'route'])
    .default('service')
    .describe('One row per service, or per route and method.'),
  sort: z.enum(OVERVIEW_SORTS).default('p99').describe('Order of the rows. Default: p99.'),
  order: z.enum(['desc', 'asc']).default('desc'),
  limit: int(1, 1000).default(50).describe('Rows per page (1-1000). Default: 50.'),
  offset: int(0, 100_000).default(0).describe('Rows to skip (pages of an aggregate are cheap).'),
  source,
});

/** seriesParams is the query string of GET /v1/series. */
export const seriesParams = z.strictObject({
  ...filterShape,
  step: stepSchema,
  quantiles: z
    .string()
    .max(64)
    .default('0.5,0.9,0.99')
    .transform((list, ctx) => {
      const levels = [...new Set(list.split(',').map((s) => Number(s.trim())))];
      const allowed = new Set<number>(QUANTILES);
      if (levels.length === 0 || levels.some((l) => !allowed.has(l))) {
        ctx.addIssue({
          code: 'custom',
          message: `must be a comma-separated subset of ${QUANTILES.join(',')}`,
        });
        return z.NEVER;
      }
      return levels as (typeof QUANTILES)[number][];
    })
    .describe(`Latency quantiles, a subset of ${QUANTILES.join(',')}. Default: 0.5,0.9,0.99.`),
  source,
});

/** saturationParams is the query string of GET /v1/saturation. */
export const saturationParams = z.strictObject({
  from: filterShape.from,
  to: filterShape.to,
  tenant: filterShape.tenant,
  service: filterShape.service,
  instance: text(LIMITS.serviceChars, 'Proxy instance.').optional(),
  upstream: text(LIMITS.serviceChars, 'Upstream name.').optional(),
  step: stepSchema,
  source,
});

/** consumersParams is the query string of GET /v1/consumers. */
export const consumersParams = z.strictObject({
  ...filterShape,
  sort: z.enum(CONSUMER_SORTS).default('rate'),
  order: z.enum(['desc', 'asc']).default('desc'),
  limit: int(1, 1000).default(50),
  offset: int(0, 100_000).default(0),
});

/** traceParams is the path of GET /v1/traces/:traceId. */
export const traceParams = z.strictObject({ traceId: traceIdSchema.describe('W3C trace id (32 hex).') });

/** traceLookupParams is the query string of GET /v1/traces/:traceId. */
export const traceLookupParams = z.strictObject({
  tenant: filterShape.tenant,
});

/** recentTracesParams is the query string of GET /v1/traces. */
export const recentTracesParams = z.strictObject({
  ...filterShape,
  status: int(100, 599).optional().describe('Exact HTTP status.'),
  min_duration_ms: z.coerce.number().min(0).max(86_400_000).optional().describe('Slowest requests only.'),
  limit: int(1, 500).default(20),
});

/** logsParams is the query string of GET /v1/logs. */
export const logsParams = z.strictObject({
  ...filterShape,
  status: int(100, 599).optional(),
  error_kind: z
    .string()
    .regex(/^[a-z_]{1,64}$/, 'must be an error kind such as upstream_timeout')
    .optional(),
  trace_id: traceIdSchema.optional(),
  min_duration_ms: z.coerce.number().min(0).max(86_400_000).optional(),
  path_prefix: z
    .string()
    .min(1)
    .max(LIMITS.pathChars)
    .optional()
    .describe('Only requests whose (redacted) path starts with this, e.g. /users/42.'),
  limit: int(1, 1000).default(100),
  cursor: z
    .string()
    .max(256)
    .optional()
    .describe('`next_cursor` of the previous page: continues after its last row (newest first).'),
});

/** pipelineParams is the query string of GET /v1/pipeline. */
export const pipelineParams = z.strictObject({
  from: timeExpression('now-15m'),
  to: filterShape.to,
  tenant: filterShape.tenant,
});

/** alertsParams is the query string of GET /v1/alerts. */
export const alertsParams = z.strictObject({
  tenant: filterShape.tenant,
  state: z.enum(ALERT_STATES_LISTED).optional().describe('Only series in this state.'),
  rule_id: z.string().min(1).max(128).optional(),
});

/** alertHistoryParams is the query string of GET /v1/alerts/history. */
export const alertHistoryParams = z.strictObject({
  from: timeExpression('now-24h'),
  to: filterShape.to,
  tenant: filterShape.tenant,
  rule_id: z.string().min(1).max(128).optional(),
  fingerprint: z
    .string()
    .regex(/^[0-9a-f]{16}$/, 'must be 16 hex characters')
    .optional(),
  limit: int(1, 1000).default(100),
});

const isoTime = z
  .string()
  .max(64)
  .refine((s) => parseTime(s) !== undefined, 'must be RFC 3339 or relative (now, now-15m)')
  .transform((s) => parseTime(s) ?? 0);

/** silenceBody is the body of POST /v1/silences. */
export const silenceBody = z
  .strictObject({
    matchers: z
      .array(z.string().max(1024).regex(SILENCE_MATCHER, 'must be a matcher such as service="checkout"'))
      .min(1)
      .max(32)
      .describe('Alertmanager matchers; a silence mutes alerts matching all of them.'),
    starts_at: isoTime.optional().describe('Default: now.'),
    ends_at: isoTime.optional().describe('End of the silence (or give duration).'),
    duration: z
      .string()
      .regex(/^[1-9][0-9]{0,5}[smhd]$/, 'must be a duration such as 30m or 2h')
      .optional()
      .describe('Length of the silence, e.g. 2h, when ends_at is not given.'),
    comment: z.string().min(1).max(4096),
  })
  .refine((b) => b.ends_at !== undefined || b.duration !== undefined, {
    message: 'give ends_at or duration',
    path: ['ends_at'],
  });

/** silenceIdParams is the path of DELETE /v1/silences/:id. */
export const silenceIdParams = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'must be a silence id'),
});

const wholeMinutes = (what: string) =>
  z
    .string()
    .regex(/^[1-9][0-9]{0,5}[mhd]$/, 'must be a whole number of minutes, hours or days such as 15m, 1h or 1d')
    .transform((text) => Number.parseInt(text, 10) * (UNIT_S[text.slice(-1)] ?? 60))
    .describe(what);

/** sloListParams is the query string of GET /v1/slos. */
export const sloListParams = z.strictObject({ tenant: filterShape.tenant });

/** sloNameParams is the path of GET /v1/slos/:name. */
export const sloNameParams = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be an SLO name')
    .describe('Name of the SLO.'),
});

/** sloSeriesParams is the query string of GET /v1/slos/:name. */
export const sloSeriesParams = z.strictObject({
  tenant: filterShape.tenant,
  from: timeExpression('now-24h'),
  to: timeExpression('now'),
  step: wholeMinutes(
    'Series resolution, whole minutes (15m, 1h, 1d). Default: the range / 96, rounded to a whole minute.',
  ).optional(),
  burn_window: wholeMinutes('Window of the burn rate reported at each step. Default: 1h.').default(3600),
});
