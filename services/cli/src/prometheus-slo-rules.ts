import {
  type AlertingConfig,
  durationText,
  errorBudget,
  REPORT_WINDOWS_MS,
  SLO_ALERT_NAMES,
  type Slo,
  sloAlertWindowsMs,
  sloBurnRules,
} from '@tapwire/alerting';
import { stringify } from 'yaml';

/**
 * Prometheus recording and alerting rules equivalent to the SLOs of an alerting file and their
 * burn-rate alerts, over the proxy's own metrics: tapwire_proxy_requests_total{upstream,class}
 * and tapwire_proxy_request_duration_seconds{upstream}. Those carry no route, method or consumer
 * and count statuses by class only, so an SLO that needs more is left out with the reason as a
 * comment — never exported as a rule that would measure something else.
 */

/** REQUESTS_METRIC is the proxy's request counter, by upstream and status class. */
export const REQUESTS_METRIC = 'tapwire_proxy_requests_total';
/** DURATION_METRIC is the proxy's request duration histogram, by upstream. */
export const DURATION_METRIC = 'tapwire_proxy_request_duration_seconds';
/** ERROR_RATIO_RECORD is the recorded error ratio of an SLO (label slo) over a window. */
export const ERROR_RATIO_RECORD = 'tapwire_slo:error_ratio';

/** ProxyUpstream is what an upstream's `upstream` label stands for in access-log terms. */
export interface ProxyUpstream {
  /** upstream is the metric label value: the upstream name, or `unmatched`. */
  readonly upstream: string;
  readonly service: string;
  readonly tenant: string;
}

/** PrometheusExportOptions say where the SLOs came from and how upstreams map to services and tenants. */
export interface PrometheusExportOptions {
  /** source names the alerting file, for the header. */
  readonly source: string;
  /** upstreams of the proxy configuration; undefined when none is configured (each upstream is then assumed named after its service). */
  readonly upstreams: readonly ProxyUpstream[] | undefined;
  /** bucketsS are the duration histogram's `le` edges, in seconds. */
  readonly bucketsS: readonly number[];
}

const quote = (v: string) => JSON.stringify(v);
const escapeRegex = (v: string) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** upstreamMatcher is the `upstream` matcher of an SLO's service and tenant, or why there is none. */
function upstreamMatcher(
  slo: Slo,
  options: PrometheusExportOptions,
): { matcher: string[] } | { reason: string } {
  const { service, tenant } = slo.selector;
  if (service === undefined && tenant === undefined) return { matcher: [] };
  if (options.upstreams === undefined) {
    if (tenant !== undefined)
      return {
        reason: `its selector pins tenant ${quote(tenant)}, which maps to upstreams only through the proxy configuration (pass it with -c)`,
      };
    return { matcher: [`upstream=${quote(service ?? '')}`] };
  }
  const names = options.upstreams
    .filter(
      (u) =>
        (service === undefined || u.service === service) && (tenant === undefined || u.tenant === tenant),
    )
    .map((u) => u.upstream);
  if (names.length === 0)
    return {
      reason: `no upstream of proxy.upstreams serves ${[service === undefined ? '' : `service ${quote(service)}`, tenant === undefined ? '' : `tenant ${quote(tenant)}`].filter(Boolean).join(' and ')}`,
    };
  return {
    matcher: [
      names.length === 1
        ? `upstream=${quote(names[0] ?? '')}`
        : `upstream=~${quote(names.map(escapeRegex).join('|'))}`,
    ],
  };
}

/** errorRatio is the PromQL of an SLO's error ratio over a window, or why it cannot be written. */
function errorRatioExpr(
  slo: Slo,
  options: PrometheusExportOptions,
): ((window: string) => string) | { reason: string } {
  const unsupported = (['route', 'method', 'consumer'] as const).filter((f) => slo.selector[f] !== undefined);
  if (unsupported.length > 0)
    return {
      reason: `its selector pins ${unsupported.join(', ')}, which ${REQUESTS_METRIC} does not carry (its labels are upstream and class)`,
    };
  const up = upstreamMatcher(slo, options);
  if ('reason' in up) return up;
  const sel = (extra: string[]) => {
    const all = [...up.matcher, ...extra];
    return all.length === 0 ? '' : `{${all.join(',')}}`;
  };
  if (slo.sli.kind === 'availability') {
    const single = slo.sli.bad_statuses.filter((s) => typeof s === 'number');
    if (single.length > 0)
      return {
        reason: `bad_statuses lists single statuses (${single.join(', ')}); ${REQUESTS_METRIC} counts status classes only`,
      };
    if (slo.sli.ignored_statuses.length > 0)
      return {
        reason: `ignored_statuses (${slo.sli.ignored_statuses.join(', ')}) cannot be left out: ${REQUESTS_METRIC} counts status classes only`,
      };
    const classes = slo.sli.bad_statuses as string[];
    const bad =
      classes.length === 1 ? `class=${quote(classes[0] ?? '')}` : `class=~${quote(classes.join('|'))}`;
    return (w) =>
      `sum(rate(${REQUESTS_METRIC}${sel([bad])}[${w}])) / sum(rate(${REQUESTS_METRIC}${sel([])}[${w}]))`;
  }
  const thresholdS = slo.sli.threshold_ms / 1000;
  if (!options.bucketsS.includes(thresholdS))
    return {
      reason: `its latency threshold ${slo.sli.threshold_ms} ms is not a bucket edge of ${DURATION_METRIC} (edges: ${options.bucketsS.map((b) => `${b * 1000} ms`).join(', ')})`,
    };
  const le = `le=${quote(String(thresholdS))}`;
  return (w) =>
    `1 - (sum(rate(${DURATION_METRIC}_bucket${sel([le])}[${w}])) / sum(rate(${DURATION_METRIC}_count${sel([])}[${w}])))`;
}

/** promTemplate turns Tapwire's annotation placeholders into Prometheus template syntax. */
function promTemplate(text: string, threshold: number, window: string): string {
  return text.replace(
    /\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\s*\}\}/g,
    (whole, key: string, sub?: string) => {
      if (key === 'labels' && sub) return `{{ $labels.${sub} }}`;
      if (key === 'value') return '{{ $value }}';
      if (key === 'threshold') return String(threshold);
      if (key === 'window') return window;
      return whole;
    },
  );
}

function sloGroup(slo: Slo, expr: (window: string) => string, interval: string) {
  const windows = [...new Set([...REPORT_WINDOWS_MS, ...sloAlertWindowsMs(slo)])].sort((a, b) => a - b);
  const budget = errorBudget(slo.objective);
  const record = (ms: number) => `${ERROR_RATIO_RECORD}:rate${durationText(ms)}`;
  const rules: Record<string, unknown>[] = windows.map((ms) => ({
    record: record(ms),
    expr: expr(durationText(ms)),
    labels: { slo: slo.name },
  }));
  for (const b of sloBurnRules(slo)) {
    const { long, short, factor } = b.pair;
    const over = (ms: number) => `${record(ms)}{slo=${quote(slo.name)}} > (${factor} * ${budget})`;
    const annotations: Record<string, string> = {
      summary: `SLO ${slo.name} is burning its error budget more than ${factor}× as fast as allowed over ${durationText(long)} and ${durationText(short)}`,
    };
    if (slo.description) annotations.description = slo.description;
    for (const [k, v] of Object.entries(slo.annotations))
      annotations[k] = promTemplate(v, factor, durationText(long));
    rules.push({
      alert: b.alert,
      expr: `${over(long)} and ${over(short)}`,
      labels: { ...b.labels, severity: b.severity },
      annotations,
    });
  }
  return { name: `tapwire-slo-${slo.name}`, interval, rules };
}

/** prometheusSloRules renders a Prometheus rule file (YAML) for every SLO that the proxy metrics can express. */
export function prometheusSloRules(config: AlertingConfig, options: PrometheusExportOptions): string {
  const header = [
    `Prometheus rules for the SLOs of ${options.source}, generated by \`tapwire slo export --prometheus\`.`,
    `Error ratios are recorded as ${ERROR_RATIO_RECORD}:rate<window>{slo} from the proxies' ${REQUESTS_METRIC}`,
    `(availability) and ${DURATION_METRIC} (latency: share not in the bucket le=<threshold>; Tapwire rounds`,
    'the threshold down to an edge of its 1 % histogram, so a request just under the threshold may be slow there).',
    'Burn-rate alerts follow the SRE workbook: both windows of a pair above factor × (1 − objective).',
    `In Alertmanager, let a page mute the ticket of the same SLO (Tapwire's alerter does this itself):`,
    `  inhibit_rules: [{ source_matchers: ['alertname="${SLO_ALERT_NAMES.page}"'], target_matchers: ['alertname="${SLO_ALERT_NAMES.ticket}"'], equal: [slo] }]`,
  ];
  if (options.upstreams === undefined)
    header.push(
      'No proxy upstreams are configured: a service selector is assumed to be the name of its upstream',
      '(true unless proxy.upstreams[].service renames it; pass the configuration with -c to map them).',
    );
  const groups: unknown[] = [];
  for (const slo of config.slos) {
    const expr = errorRatioExpr(slo, options);
    if (typeof expr === 'function')
      groups.push(sloGroup(slo, expr, durationText(config.slo_defaults.interval)));
    else header.push(`SLO ${slo.name} is not exported: ${expr.reason}.`);
  }
  if (config.slos.length === 0) header.push('The file declares no SLO.');
  return `${header.map((l) => `# ${l}`).join('\n')}\n${stringify({ groups }, { lineWidth: 0 })}`;
}
