import {
  durationText,
  evaluateSlo,
  evaluateSlos,
  REPORT_WINDOWS_MS,
  SLO_SERIES_MAX_STEPS,
  type Slo,
  type SloEvaluation,
  sloSeries,
  sloWindowEnd,
} from '@tapwire/alerting';
import type { AlertsResult, Scope, Store } from '@tapwire/analytics';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { type Principal, scopeFor } from './auth.js';
import { ApiError } from './errors.js';
import { sloListParams, sloNameParams, sloSeriesParams } from './params.js';
import type { SloCatalog } from './slo-catalog.js';

/**
 * GET /v1/slos and GET /v1/slos/:name: each SLO's SLI, error budget and burn rates now, computed
 * exactly from the Store's counts (one sloCountsMany call for every SLO of a list, which reads
 * each data level once for all of them; cached like every answer), and a series
 * of budget remaining and burn rate per step. Tenancy: a tenant's token sees the SLOs of its
 * tenant and those naming no tenant, and every count is restricted to its tenant.
 */

/** SLO_SERIES_DEFAULT_STEPS is about how many steps a series without `step` has. */
export const SLO_SERIES_DEFAULT_STEPS = 96;

const MINUTE_S = 60;

const budgetSchema = z.object({
  total: z.number().describe('Bad requests the window may hold: (1 − objective) · requests.'),
  spent: z.number().int().describe('Bad requests in the window.'),
  remaining: z.number().describe('total − spent; negative once overspent.'),
  remaining_pct: z
    .number()
    .describe('100 · remaining / total; 100 with no traffic, negative once overspent.'),
});

const sloAlertSchema = z.object({
  rule_id: z.string(),
  tier: z.string().describe('page or ticket.'),
  long_window: z.string(),
  short_window: z.string(),
  state: z.string(),
  value: z.number().nullable().describe('The smaller of the two burn rates at the last evaluation.'),
  since_us: z.number().int(),
});

/** sloStatusSchema is one SLO as GET /v1/slos answers it. */
export const sloStatusSchema = z.object({
  name: z.string(),
  description: z.string(),
  selector: z.record(z.string(), z.string()).describe('The requests the SLO is about (equality per field).'),
  labels: z.record(z.string(), z.string()),
  objective: z.number().describe('Target share of good requests, percent.'),
  window: z.string().describe('Rolling window of the error budget, e.g. 28d.'),
  at: z.number().int().describe('End (exclusive) of every window: now floored to the minute, epoch seconds.'),
  sli: z.object({
    kind: z.enum(['availability', 'latency']),
    good: z.number().int().describe('Good requests in the SLO window.'),
    total: z.number().int().describe('Requests counted in the SLO window.'),
    value_pct: z.number().nullable().describe('100 · good / total; null with no traffic.'),
    bad_statuses: z.array(z.union([z.string(), z.number()])).optional(),
    ignored_statuses: z.array(z.number()).optional(),
    threshold_ms_declared: z.number().optional().describe('Latency SLIs: the threshold in the file.'),
    threshold_ms: z
      .number()
      .optional()
      .describe(
        'Latency SLIs: the threshold applied — the largest edge 1.01^k of the 1 % latency histogram at or below the declared one; good = duration ≤ it, exactly.',
      ),
  }),
  budget: budgetSchema,
  burn_rates: z
    .record(z.string(), z.number())
    .describe(
      'Burn rate per window ending at `at`: 5m, 30m, 1h, 6h, 1d, 3d, the SLO window and each window of its burn-rate alerts. (bad/total)/(1 − objective); 0 with no traffic.',
    ),
  alerts: z
    .array(sloAlertSchema)
    .describe(
      'Its burn-rate alert series the token may see (pending, firing, recovering, recently resolved).',
    ),
});

/** SloStatus is one SLO as answered. */
export type SloStatus = z.infer<typeof sloStatusSchema>;

const sloDetailSchema = sloStatusSchema.extend({
  series: z.object({
    from: z.number().int().describe('First step end, epoch seconds.'),
    to: z.number().int().describe('Last step end, epoch seconds.'),
    step: z.number().int().describe('Seconds between step ends.'),
    burn_window: z.string().describe('Window of each step’s burn rate.'),
    points: z.array(
      z.object({
        at: z.number().int().describe('End of the windows of this step, epoch seconds.'),
        budget: budgetSchema.describe('Error budget over the SLO window ending at `at`.'),
        burn_rate: z.number().describe('Burn rate over burn_window ending at `at`.'),
      }),
    ),
  }),
});

/** SloRoutesOptions are what the SLO routes need from the application around them. */
export interface SloRoutesOptions {
  readonly store: Store;
  readonly catalog: SloCatalog;
  /** answer runs a Store computation through the API's answer cache and metrics. */
  readonly answer: <T>(name: string, scope: Scope, query: unknown, compute: () => Promise<T>) => Promise<T>;
  /** now is the clock, epoch ms. */
  readonly now: () => number;
  /** maxWindowS bounds the series range, in seconds. */
  readonly maxWindowS: number;
  /** errorBody is the JSON error body; errorResponses the error statuses every /v1 route documents. */
  readonly errorBody: z.ZodType;
  readonly errorResponses: Record<number, z.ZodType>;
}

/** sloRoutes registers GET /v1/slos and GET /v1/slos/:name. */
export const sloRoutes: FastifyPluginAsyncZod<SloRoutesOptions> = async (app, options) => {
  const { store, catalog, answer, now } = options;

  function principalOf(request: FastifyRequest): Principal {
    if (!request.principal) throw new ApiError('TAPWIRE_API_UNAUTHORIZED');
    return request.principal;
  }

  const visibleIn = (scope: Scope) => (slo: Slo) =>
    slo.selector.tenant === undefined || scope.tenant === null || slo.selector.tenant === scope.tenant;

  // An evaluation depends on the definitions and the minute only: the cache keys on both.
  function evaluate(scope: Scope, slo: Slo, nowMs: number): Promise<SloEvaluation> {
    return answer('slo', scope, { slo, at: sloWindowEnd(nowMs) }, () =>
      evaluateSlo(store, scope, slo, nowMs),
    );
  }
  function evaluateAll(scope: Scope, slos: readonly Slo[], nowMs: number): Promise<SloEvaluation[]> {
    return answer('slos', scope, { slos, at: sloWindowEnd(nowMs) }, () =>
      evaluateSlos(store, scope, slos, nowMs),
    );
  }

  async function sloAlerts(scope: Scope, nowMs: number): Promise<AlertsResult['alerts']> {
    const { alerts } = await store.alerts(scope, { now: Math.floor(nowMs / 1000) });
    return alerts.filter((a) => a.rule_id.startsWith('slo:'));
  }

  function statusOf(slo: Slo, e: SloEvaluation, alerts: AlertsResult['alerts']): SloStatus {
    // The report windows first, then the SLO window, then the alert windows not among them.
    const order = [...REPORT_WINDOWS_MS.map(durationText), e.window];
    const rank = (w: string) => (order.includes(w) ? order.indexOf(w) : order.length);
    const selector: Record<string, string> = {};
    for (const [k, v] of Object.entries(slo.selector)) if (v !== undefined) selector[k] = v;
    return {
      name: slo.name,
      description: slo.description,
      selector,
      labels: { ...slo.labels },
      objective: slo.objective,
      window: e.window,
      at: e.at,
      sli: {
        kind: e.sli.kind,
        good: e.sli.good,
        total: e.sli.total,
        value_pct: e.sli.value_pct,
        ...(slo.sli.kind === 'availability'
          ? { bad_statuses: [...slo.sli.bad_statuses], ignored_statuses: [...slo.sli.ignored_statuses] }
          : { threshold_ms_declared: slo.sli.threshold_ms }),
        ...(e.sli.threshold_ms !== undefined ? { threshold_ms: e.sli.threshold_ms } : {}),
      },
      budget: e.budget,
      burn_rates: Object.fromEntries(Object.entries(e.burn_rates).sort(([a], [b]) => rank(a) - rank(b))),
      alerts: alerts
        .filter((a) => a.labels.slo === slo.name)
        .map((a) => ({
          rule_id: a.rule_id,
          tier: a.rule_id.split(':')[2] ?? '',
          long_window: a.labels.long_window ?? '',
          short_window: a.labels.short_window ?? '',
          state: a.state,
          value: a.value,
          since_us: a.since_us,
        })),
    };
  }

  const read = { scope: 'read' as const };

  app.get(
    '/v1/slos',
    {
      config: read,
      schema: {
        summary: 'Every SLO the token may see: SLI, error budget and burn rates over 5m … 3d, now',
        description:
          'SLOs come from the alerting file (`api.alertingFile`, reloaded on change and on SIGHUP). A tenant-bound token (or `tenant=`) sees the SLOs whose selector names its tenant or no tenant, and their counts cover only its tenant’s requests; an all-tenant token sees every SLO, each counted over the tenants its selector allows. Counts are exact: every request of each window.',
        querystring: sloListParams,
        response: { 200: z.object({ slos: z.array(sloStatusSchema) }), ...options.errorResponses },
      },
    },
    async (request) => {
      const scope = scopeFor(principalOf(request), request.query.tenant);
      const nowMs = now();
      const slos = catalog.list().filter(visibleIn(scope));
      const [evaluations, alerts] = await Promise.all([
        evaluateAll(scope, slos, nowMs),
        slos.length > 0 ? sloAlerts(scope, nowMs) : Promise.resolve([]),
      ]);
      return { slos: slos.map((slo, i) => statusOf(slo, evaluations[i] as SloEvaluation, alerts)) };
    },
  );

  app.get(
    '/v1/slos/:name',
    {
      config: read,
      schema: {
        summary: 'One SLO now, plus its budget remaining and burn rate at every step of a range',
        description: `As one entry of GET /v1/slos, plus \`series\`: at each step end from \`from\` to \`to\` (floored to the minute), the error budget over the SLO window ending there and the burn rate over \`burn_window\`. At most ${SLO_SERIES_MAX_STEPS} steps.`,
        params: sloNameParams,
        querystring: sloSeriesParams,
        response: { 200: sloDetailSchema, 404: options.errorBody, ...options.errorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      const scope = scopeFor(principalOf(request), q.tenant);
      const slo = catalog.list().find((s) => s.name === request.params.name && visibleIn(scope)(s));
      if (!slo) throw new ApiError('TAPWIRE_API_NOT_FOUND', `no SLO named "${request.params.name}"`);
      const range = seriesRange(q, options.maxWindowS);
      const nowMs = now();
      const [evaluation, alerts, series] = await Promise.all([
        evaluate(scope, slo, nowMs),
        sloAlerts(scope, nowMs),
        answer('slo-series', scope, { slo, range }, () =>
          sloSeries(store, scope, slo, {
            fromMs: range.from * 1000,
            toMs: range.to * 1000,
            stepMs: range.step * 1000,
            burnWindowMs: range.burnWindow * 1000,
          }),
        ),
      ]);
      return {
        ...statusOf(slo, evaluation, alerts),
        series: {
          from: range.from,
          to: range.to,
          step: range.step,
          burn_window: series.burn_window,
          points: series.points.map((p) => ({ at: p.at, budget: p.budget, burn_rate: p.burn_rate })),
        },
      };
    },
  );
};

/** seriesRange floors from and to to the minute and checks the step count (400 naming the parameter). */
function seriesRange(
  q: { from: number; to: number; step?: number | undefined; burn_window: number },
  maxWindowS: number,
): { from: number; to: number; step: number; burnWindow: number } {
  const from = Math.floor(q.from / MINUTE_S) * MINUTE_S;
  const to = Math.floor(q.to / MINUTE_S) * MINUTE_S;
  if (to <= from)
    throw new ApiError('TAPWIRE_API_BAD_REQUEST', 'to: must be at least a minute after from', {
      field: 'to',
    });
  if (to - from > maxWindowS)
    throw new ApiError(
      'TAPWIRE_API_BAD_REQUEST',
      `from: the range may cover at most ${maxWindowS / 3600} h`,
      {
        field: 'from',
      },
    );
  // Rounded, not ceiled: a range a second longer than 24 h still gets 15-minute steps.
  const step =
    q.step ?? Math.max(1, Math.round((to - from) / SLO_SERIES_DEFAULT_STEPS / MINUTE_S)) * MINUTE_S;
  const steps = Math.floor((to - from) / step) + 1;
  if (steps > SLO_SERIES_MAX_STEPS)
    throw new ApiError(
      'TAPWIRE_API_BAD_REQUEST',
      `step: at most ${SLO_SERIES_MAX_STEPS} steps per series, this range and step make ${steps}; use a larger step`,
      { field: 'step' },
    );
  return { from, to: from + (steps - 1) * step, step, burnWindow: q.burn_window };
}
