import {
  SIGNAL_KINDS as ANALYTICS_SIGNAL_KINDS,
  QUANTILES,
  SIGNAL_SATURATION_METRICS,
} from '@tapwire/analytics';
import { loadConfig } from '@tapwire/config';
import { SILENCE_MATCHER } from '@tapwire/schema';
import { z } from 'zod';
import { DURATION, duration, durationMs, labelName, labelSet } from './fields.js';
import { receiversSchema } from './receivers.js';
import { checkSloWindows, resolveSlo, type Slo, sloDefaultsSchema, slosSchema } from './slos.js';

/**
 * The alerting configuration file: rule groups (Prometheus-like), the notification route tree,
 * inhibition rules and receivers (Alertmanager's names and meaning), and SLOs (slos.ts). Validated as a whole; every
 * problem is reported with its path (groups.0.rules.2.for: …).
 */

const labels = labelSet;

/** SIGNAL_KINDS are what a rule measures (the analytics Store's signals). */
export const SIGNAL_KINDS = ANALYTICS_SIGNAL_KINDS;

/** SATURATION_METRICS are the saturation values a rule can watch (per instance, or per upstream). */
export const SATURATION_METRICS = SIGNAL_SATURATION_METRICS;

/** REQUEST_DIMENSIONS are the labels request rules filter and group by. */
export const REQUEST_DIMENSIONS = ['tenant', 'service', 'route', 'method', 'consumer'] as const;

/** SATURATION_DIMENSIONS are the labels saturation rules filter and group by (target: targets_unhealthy only). */
export const SATURATION_DIMENSIONS = ['tenant', 'service', 'instance', 'upstream', 'target'] as const;

const COMPARISONS = ['>', '>=', '<', '<=', '==', '!='] as const;

/** Comparison is a rule's threshold comparison. */
export type Comparison = (typeof COMPARISONS)[number];

/** ruleSchema is one alerting rule. */
export const ruleSchema = z
  .strictObject({
    id: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be 1-128 letters, digits, "_", "." or "-"'),
    alert: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be an alert name ([A-Za-z_][A-Za-z0-9_]*)'),
    kind: z.enum(SIGNAL_KINDS),
    quantile: z.literal(QUANTILES).optional().describe('latency_quantile only: 0.5, 0.9, 0.95 or 0.99.'),
    metric: z.enum(SATURATION_METRICS).optional().describe('saturation only.'),
    filters: z.record(z.string(), z.string().min(1).max(512)).default({}),
    group_by: z.array(z.string()).default([]),
    window: duration('5m'),
    op: z.enum(COMPARISONS).default('>'),
    threshold: z.number(),
    clear_threshold: z
      .number()
      .optional()
      .describe('Hysteresis: a firing alert clears only past this value.'),
    for: duration('0s'),
    keep_firing_for: duration('0s'),
    min_samples: z.number().int().min(0).default(0),
    // Prometheus resolves an alert whose expression returns nothing, so no data defaults to `ok`:
    // with `keep_last` an alert stayed firing after its traffic stopped, until traffic came back.
    no_data: z
      .strictObject({
        state: z
          .enum(['ok', 'alerting', 'nodata', 'keep_last'])
          .default('ok')
          .describe(
            'When the query returns no series at all: ok (not breaching, a firing alert resolves; default), alerting (breaching), nodata (a separate <alert>_NoData series fires) or keep_last (no change).',
          ),
        after: duration('0s').describe('How long no data must last before the policy applies; default 0s.'),
      })
      .prefault({}),
    on_error: z
      .strictObject({ state: z.enum(['ok', 'alerting', 'error', 'keep_last']).default('keep_last') })
      .prefault({}),
    missing_series_evals_to_resolve: z.number().int().min(1).default(2),
    severity: z.enum(['critical', 'error', 'warning', 'info']).default('error'),
    receivers: z
      .array(z.string().min(1))
      .optional()
      .describe(
        "Send this rule's alerts to these receivers (with the root route's grouping) instead of through the route tree.",
      ),
    labels: labels.default({}),
    annotations: z.record(z.string(), z.string().max(4096)).default({}),
  })
  .superRefine((r, ctx) => {
    if (r.kind === 'latency_quantile' && r.quantile === undefined)
      ctx.addIssue({ code: 'custom', path: ['quantile'], message: 'latency_quantile rules need a quantile' });
    if (r.kind === 'saturation' && r.metric === undefined)
      ctx.addIssue({ code: 'custom', path: ['metric'], message: 'saturation rules need a metric' });
    const dims: readonly string[] =
      r.kind !== 'saturation'
        ? REQUEST_DIMENSIONS
        : r.metric === 'targets_unhealthy'
          ? SATURATION_DIMENSIONS
          : SATURATION_DIMENSIONS.filter((d) => d !== 'target');
    for (const [i, g] of r.group_by.entries())
      if (!dims.includes(g))
        ctx.addIssue({ code: 'custom', path: ['group_by', i], message: `must be one of ${dims.join(', ')}` });
    for (const f of Object.keys(r.filters))
      if (!dims.includes(f))
        ctx.addIssue({ code: 'custom', path: ['filters', f], message: `must be one of ${dims.join(', ')}` });
    if (r.clear_threshold !== undefined) {
      const above = r.op === '>' || r.op === '>=';
      const below = r.op === '<' || r.op === '<=';
      if ((above && r.clear_threshold > r.threshold) || (below && r.clear_threshold < r.threshold))
        ctx.addIssue({
          code: 'custom',
          path: ['clear_threshold'],
          message: 'must be on the healthy side of threshold',
        });
    }
  });

/** Rule is one validated alerting rule (durations in ms). */
export type Rule = z.infer<typeof ruleSchema>;

/** ruleGroupSchema is a named set of rules evaluated on one interval. */
export const ruleGroupSchema = z.strictObject({
  name: z.string().min(1).max(128),
  interval: duration('15s'),
  /** Evaluate windows ending this long ago, so ingestion lag does not read as a dip. */
  query_offset: duration('0s'),
  rules: z.array(ruleSchema).min(1),
});

/** RuleGroup is one validated rule group. */
export type RuleGroup = z.infer<typeof ruleGroupSchema>;

const matcher = z.string().regex(SILENCE_MATCHER, 'must be a matcher such as severity="critical"');

/** Route is one node of the notification route tree. */
export interface Route {
  receiver: string | undefined;
  group_by: string[] | undefined;
  group_wait: number | undefined;
  group_interval: number | undefined;
  repeat_interval: number | undefined;
  matchers: string[];
  continue: boolean;
  routes: Route[];
}

const optionalDuration = z
  .string()
  .regex(DURATION, 'must be a duration such as 30s, 5m or 1h')
  .transform((s) => durationMs(s))
  .optional();

/** routeSchema is a route: matchers, receiver, grouping timers and child routes (which inherit unset fields). */
export const routeSchema: z.ZodType<Route, unknown> = z.lazy(() =>
  z
    .strictObject({
      receiver: z.string().optional(),
      group_by: z.array(z.string()).optional(),
      group_wait: optionalDuration,
      group_interval: optionalDuration,
      repeat_interval: optionalDuration,
      matchers: z.array(matcher).default([]),
      continue: z.boolean().default(false),
      routes: z.array(routeSchema).default([]),
    })
    .transform((r) => ({
      receiver: r.receiver,
      group_by: r.group_by,
      group_wait: r.group_wait,
      group_interval: r.group_interval,
      repeat_interval: r.repeat_interval,
      matchers: r.matchers,
      continue: r.continue,
      routes: r.routes,
    })),
);

/** alertingConfigSchema is the whole alerting file. */
export const alertingConfigSchema = z
  .strictObject({
    groups: z.array(ruleGroupSchema).default([]),
    route: routeSchema,
    inhibit_rules: z
      .array(
        z.strictObject({
          source_matchers: z.array(matcher).min(1),
          target_matchers: z.array(matcher).min(1),
          equal: z.array(labelName).default([]),
        }),
      )
      .default([]),
    receivers: receiversSchema,
    slo_defaults: sloDefaultsSchema
      .prefault({})
      .describe('Evaluation interval, query offset and burn-rate alerting every SLO inherits.'),
    slos: slosSchema.default([]).describe('Service level objectives; each gets burn-rate alerts.'),
  })
  .superRefine((c, ctx) => {
    checkSloWindows(c.slos, c.slo_defaults, ctx);
    const names = new Set(c.receivers.map((r) => r.name));
    const ids = new Set<string>();
    for (const [gi, g] of c.groups.entries()) {
      for (const [ri, r] of g.rules.entries()) {
        if (ids.has(r.id))
          ctx.addIssue({
            code: 'custom',
            path: ['groups', gi, 'rules', ri, 'id'],
            message: `duplicate rule id ${r.id}`,
          });
        ids.add(r.id);
        for (const [i, name] of (r.receivers ?? []).entries())
          if (!names.has(name))
            ctx.addIssue({
              code: 'custom',
              path: ['groups', gi, 'rules', ri, 'receivers', i],
              message: `unknown receiver ${name}`,
            });
      }
    }
    const walk = (route: Route, path: (string | number)[]) => {
      if (route.receiver !== undefined && !names.has(route.receiver))
        ctx.addIssue({
          code: 'custom',
          path: [...path, 'receiver'],
          message: `unknown receiver ${route.receiver}`,
        });
      for (const [i, child] of route.routes.entries()) walk(child, [...path, 'routes', i]);
    };
    if (c.route.receiver === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['route', 'receiver'],
        message: 'the root route needs a receiver',
      });
    walk(c.route, ['route']);
  })
  .transform(({ slos, ...c }) => ({
    ...c,
    slos: slos.map((s): Slo => resolveSlo(s, c.slo_defaults)),
  }));

/** AlertingConfig is the validated alerting file. */
export type AlertingConfig = z.infer<typeof alertingConfigSchema>;

/** Matcher is one parsed label matcher. */
export interface Matcher {
  readonly name: string;
  readonly op: '=' | '!=' | '=~' | '!~';
  readonly value: string;
  readonly regex: RegExp | undefined;
}

/** parseMatcher reads `name="value"` (=, !=, =~, !~; regexes are anchored, as in Alertmanager). */
export function parseMatcher(text: string): Matcher {
  const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$/.exec(text);
  if (!m) throw new Error(`not a matcher: ${text}`);
  const op = m[2] as Matcher['op'];
  const value = (m[3] ?? '').replace(/\\(.)/g, '$1');
  return {
    name: m[1] ?? '',
    op,
    value,
    regex: op === '=~' || op === '!~' ? new RegExp(`^(?:${value})$`) : undefined,
  };
}

/** matches says whether a label set satisfies a matcher (a missing label reads as ""). */
export function matches(m: Matcher, set: Readonly<Record<string, string>>): boolean {
  const v = set[m.name] ?? '';
  switch (m.op) {
    case '=':
      return v === m.value;
    case '!=':
      return v !== m.value;
    case '=~':
      return m.regex?.test(v) ?? false;
    case '!~':
      return !(m.regex?.test(v) ?? false);
  }
}

/** renderTemplate fills {{ .value }}, {{ .threshold }}, {{ .labels.name }} and {{ .window }} placeholders. */
export function renderTemplate(
  template: string,
  data: { value: number | null; threshold: number; labels: Readonly<Record<string, string>>; window: string },
): string {
  return template.replace(
    /\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\s*\}\}/g,
    (whole, key: string, sub?: string) => {
      if (key === 'labels' && sub) return data.labels[sub] ?? '';
      if (key === 'value')
        return data.value === null ? 'no data' : String(Math.round(data.value * 1000) / 1000);
      if (key === 'threshold') return String(data.threshold);
      if (key === 'window') return data.window;
      return whole;
    },
  );
}

/** loadAlertingFile reads and validates an alerting file (YAML or JSON); the error names every bad rule and field. */
export function loadAlertingFile(path: string): AlertingConfig {
  return loadConfig(alertingConfigSchema, { file: path, env: {} });
}
