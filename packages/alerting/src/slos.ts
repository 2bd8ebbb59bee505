import { z } from 'zod';
import { DURATION, duration, durationMs, durationText, labelSet, uniqueNames } from './fields.js';

/**
 * Service level objectives in the alerting file (`slos:`), and the multi-window, multi-burn-rate
 * alerts generated for each (the Google SRE workbook, "Alerting on SLOs"): page when the 1h and
 * 5m burn rates both exceed 14.4 or the 6h and 30m both exceed 6, ticket when the 3d and 6h both
 * exceed 1. Factors, windows and severities are configurable per file (`slo_defaults`) and per SLO.
 */

const MINUTE_MS = 60_000;

/** wholeMinutes is a duration that is a whole number of minutes (SLO counts are per minute). */
const wholeMinutes = (fallback?: string) => {
  const text = z.string().regex(DURATION, 'must be a duration such as 5m, 1h or 28d');
  return (fallback === undefined ? text : text.default(fallback))
    .transform((s) => durationMs(s))
    .refine(
      (ms) => ms >= MINUTE_MS && ms % MINUTE_MS === 0,
      'must be a whole number of minutes (at least 1m)',
    );
};

/** SLO_SELECTOR_FIELDS are what an SLO's selector can pin (equality on each given field). */
export const SLO_SELECTOR_FIELDS = ['tenant', 'service', 'route', 'method', 'consumer'] as const;

/** STATUS_CLASSES are the status classes an availability SLI may name among its bad statuses. */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** StatusClass is one of 1xx … 5xx. */
export type StatusClass = (typeof STATUS_CLASSES)[number];

const selectorValue = z.string().min(1).max(512).optional();
const httpStatus = z.number().int().min(100).max(599);

/** sloSelectorSchema picks the requests an SLO is about; every field is optional, each is equality. */
export const sloSelectorSchema = z.strictObject({
  tenant: selectorValue,
  service: selectorValue,
  route: selectorValue.describe('Route template, e.g. /users/:id.'),
  method: selectorValue,
  consumer: selectorValue.describe('API key id or JWT subject.'),
});

/** sloSliSchema is what counts as a good request: not answered a bad status, or taking at most a threshold. */
export const sloSliSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('availability'),
    bad_statuses: z
      .array(z.union([z.enum(STATUS_CLASSES), httpStatus]))
      .min(1)
      .default(['5xx'])
      .describe('Statuses (or classes such as 5xx) that make a request bad. Default: [5xx].'),
    ignored_statuses: z
      .array(httpStatus)
      .default([])
      .describe('Statuses left out of both good and total (e.g. 429). Default: [].'),
  }),
  z.strictObject({
    kind: z.literal('latency'),
    threshold_ms: z
      .number()
      .positive()
      .max(3_600_000)
      .describe(
        'A request is good when it took at most this, in ms (the store rounds it down to an edge of its 1 % latency histogram and reports the edge applied).',
      ),
  }),
]);

/** SloSli is a validated SLI. */
export type SloSli = z.infer<typeof sloSliSchema>;

const burnWindowPairSchema = z
  .strictObject({
    long: wholeMinutes(),
    short: wholeMinutes(),
    factor: z.number().positive().max(1_000_000).describe('Both windows must burn faster than this.'),
  })
  .superRefine((p, ctx) => {
    if (p.short >= p.long)
      ctx.addIssue({ code: 'custom', path: ['short'], message: 'must be shorter than long' });
  });

/** BurnWindowPair is one condition of a burn-rate alert: both windows burn faster than `factor`. */
export type BurnWindowPair = z.infer<typeof burnWindowPairSchema>;

const SEVERITIES = ['critical', 'error', 'warning', 'info'] as const;

const pairList = z
  .array(burnWindowPairSchema)
  .max(8)
  .superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((p, i) => {
      const key = `${p.long}/${p.short}`;
      if (seen.has(key))
        ctx.addIssue({
          code: 'custom',
          path: [i],
          message: 'the same long and short windows are listed twice',
        });
      seen.add(key);
    });
  });

const tierSchema = (severity: (typeof SEVERITIES)[number], windows: unknown[]) =>
  z.strictObject({
    severity: z
      .enum(SEVERITIES)
      .default(severity)
      .describe(`Severity label of the alert. Default: ${severity}.`),
    windows: pairList
      .prefault(windows as never)
      .describe('Window pairs, any of which fires the alert; [] disables it.'),
  });

/** SLO_ALERT_NAMES are the alert names of the generated burn-rate alerts. */
export const SLO_ALERT_NAMES = { page: 'SLOBurnRatePage', ticket: 'SLOBurnRateTicket' } as const;

/** SloTier is page or ticket. */
export type SloTier = keyof typeof SLO_ALERT_NAMES;

/** burnRateAlertsSchema is the file-wide burn-rate alerting, with the SRE workbook's defaults. */
export const burnRateAlertsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Generate burn-rate alerts. Default: true.'),
  page: tierSchema('critical', [
    { long: '1h', short: '5m', factor: 14.4 },
    { long: '6h', short: '30m', factor: 6 },
  ]).prefault({}),
  ticket: tierSchema('warning', [{ long: '3d', short: '6h', factor: 1 }]).prefault({}),
});

/** BurnRateAlerts is the effective burn-rate alerting of one SLO. */
export type BurnRateAlerts = z.infer<typeof burnRateAlertsSchema>;

const tierOverride = z.strictObject({
  severity: z.enum(SEVERITIES).optional(),
  windows: pairList.optional(),
});

/** sloDefaultsSchema is `slo_defaults`: evaluation timing and the burn-rate alerting every SLO inherits. */
export const sloDefaultsSchema = z.strictObject({
  interval: duration('30s').describe('How often every SLO is evaluated. Default: 30s.'),
  query_offset: duration('0s').describe('Evaluate windows ending this long ago (ingest lag). Default: 0s.'),
  burn_rate_alerts: burnRateAlertsSchema.prefault({}),
});

/** SloDefaults is the validated `slo_defaults`. */
export type SloDefaults = z.infer<typeof sloDefaultsSchema>;

/** Labels a generated alert sets itself; an SLO's own labels may not use them. */
const RESERVED_LABELS = ['alertname', 'severity', 'rule_id', 'slo', 'long_window', 'short_window'];

const objective = z
  .number()
  .gt(0, 'must be above 0')
  .lt(100, 'must be below 100')
  .refine((x) => decimals(x) <= 6, 'at most 6 decimal places')
  .describe('Target share of good requests, in percent (e.g. 99.9).');

/** sloSchema is one SLO as written in the file (its burn-rate alerting overrides the file default). */
export const sloSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be 1-128 letters, digits, "_", "." or "-"'),
    description: z.string().max(4096).default(''),
    selector: sloSelectorSchema.prefault({}),
    sli: sloSliSchema,
    objective,
    window: wholeMinutes('28d').describe('Rolling window of the error budget. Default: 28d.'),
    labels: labelSet.default({}),
    annotations: z.record(z.string(), z.string().max(4096)).default({}),
    burn_rate_alerts: z
      .strictObject({
        enabled: z.boolean().optional(),
        page: tierOverride.optional(),
        ticket: tierOverride.optional(),
      })
      .optional()
      .describe('Overrides of slo_defaults.burn_rate_alerts for this SLO.'),
  })
  .superRefine((s, ctx) => {
    for (const name of Object.keys(s.labels))
      if (RESERVED_LABELS.includes(name) || (SLO_SELECTOR_FIELDS as readonly string[]).includes(name))
        ctx.addIssue({
          code: 'custom',
          path: ['labels', name],
          message:
            'is set by the generated alerts (alertname, severity, rule_id, slo, windows, selector fields)',
        });
  });

/** Slo is one validated SLO with its effective burn-rate alerting (durations in ms). */
export interface Slo {
  readonly name: string;
  readonly description: string;
  readonly selector: z.infer<typeof sloSelectorSchema>;
  readonly sli: SloSli;
  /** objective is a percentage, 0 < objective < 100. */
  readonly objective: number;
  /** window is the rolling budget window, in ms. */
  readonly window: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly burn_rate_alerts: BurnRateAlerts;
}

/** checkSloWindows reports burn-rate windows longer than their SLO's window (at the field that set them). */
export function checkSloWindows(
  slos: readonly z.infer<typeof sloSchema>[],
  defaults: SloDefaults,
  ctx: z.RefinementCtx,
): void {
  for (const [i, raw] of slos.entries()) {
    const slo = resolveSlo(raw, defaults);
    if (!slo.burn_rate_alerts.enabled) continue;
    for (const tier of ['page', 'ticket'] as const)
      for (const [j, p] of slo.burn_rate_alerts[tier].windows.entries()) {
        if (p.long <= slo.window) continue;
        const own = raw.burn_rate_alerts?.[tier]?.windows !== undefined;
        ctx.addIssue({
          code: 'custom',
          path: own ? ['slos', i, 'burn_rate_alerts', tier, 'windows', j, 'long'] : ['slos', i, 'window'],
          message: own
            ? 'must not be longer than the SLO window'
            : `must be at least the ${durationText(p.long)} long window of the ${tier} burn-rate alert (or override burn_rate_alerts.${tier}.windows)`,
        });
      }
  }
}

/** slosSchema is the `slos:` list; names are unique. */
export const slosSchema = z.array(sloSchema).superRefine(uniqueNames('SLO'));

/** resolveSlo applies the file's default burn-rate alerting under one SLO's overrides. */
export function resolveSlo(slo: z.infer<typeof sloSchema>, defaults: SloDefaults): Slo {
  const d = defaults.burn_rate_alerts;
  const o = slo.burn_rate_alerts;
  return {
    ...slo,
    burn_rate_alerts: {
      enabled: o?.enabled ?? d.enabled,
      page: { severity: o?.page?.severity ?? d.page.severity, windows: o?.page?.windows ?? d.page.windows },
      ticket: {
        severity: o?.ticket?.severity ?? d.ticket.severity,
        windows: o?.ticket?.windows ?? d.ticket.windows,
      },
    },
  };
}

/** SloBurnRule is one generated burn-rate condition: an alert series per SLO, tier and window pair. */
export interface SloBurnRule {
  /** id is `slo:<name>:<tier>:<long>/<short>` (user rule ids cannot contain ":"). */
  readonly id: string;
  readonly alert: (typeof SLO_ALERT_NAMES)[SloTier];
  readonly slo: string;
  readonly tier: SloTier;
  readonly pair: BurnWindowPair;
  readonly severity: (typeof SEVERITIES)[number];
  /** labels are the SLO's labels, its selector, slo, long_window and short_window. */
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

const DEFAULT_ANNOTATIONS: Record<SloTier, Record<string, string>> = {
  page: {
    summary:
      'SLO {{ .labels.slo }} is burning its error budget {{ .value }}× as fast as allowed over {{ .labels.long_window }} and {{ .labels.short_window }} (page above {{ .threshold }}×)',
  },
  ticket: {
    summary:
      'SLO {{ .labels.slo }} is burning its error budget {{ .value }}× as fast as allowed over {{ .labels.long_window }} and {{ .labels.short_window }} (ticket above {{ .threshold }}×)',
  },
};

/** sloBurnRules expands an SLO into its burn-rate conditions (none when its alerting is disabled). */
export function sloBurnRules(slo: Slo): SloBurnRule[] {
  if (!slo.burn_rate_alerts.enabled) return [];
  const selector = Object.fromEntries(
    Object.entries(slo.selector).filter((e): e is [string, string] => e[1] !== undefined),
  );
  return (['page', 'ticket'] as const).flatMap((tier) =>
    slo.burn_rate_alerts[tier].windows.map((pair) => {
      const long = durationText(pair.long);
      const short = durationText(pair.short);
      return {
        id: `slo:${slo.name}:${tier}:${long}/${short}`,
        alert: SLO_ALERT_NAMES[tier],
        slo: slo.name,
        tier,
        pair,
        severity: slo.burn_rate_alerts[tier].severity,
        labels: { ...slo.labels, ...selector, slo: slo.name, long_window: long, short_window: short },
        annotations: {
          ...DEFAULT_ANNOTATIONS[tier],
          ...(slo.description ? { description: slo.description } : {}),
          ...slo.annotations,
        },
      };
    }),
  );
}

/** SLO_INHIBIT_RULE is built in: a firing page of an SLO mutes the ticket of the same SLO. */
export const SLO_INHIBIT_RULE = {
  source_matchers: [`alertname="${SLO_ALERT_NAMES.page}"`],
  target_matchers: [`alertname="${SLO_ALERT_NAMES.ticket}"`],
  equal: ['slo'],
} as const;

/** decimals counts the decimal places of a number as written (99.95 → 2). */
export function decimals(x: number): number {
  const text = String(x);
  const e = /e-(\d+)$/.exec(text);
  if (e) {
    const mantissa = text.slice(0, text.indexOf('e'));
    return Number(e[1]) + (mantissa.split('.')[1]?.length ?? 0);
  }
  return text.split('.')[1]?.length ?? 0;
}
