/**
 * Generates the Grafana dashboards in dashboards/*.json from GRAFANA_SQL (packages/analytics),
 * typed against @grafana/schema's Dashboard. `npm run dashboards` writes them; a test fails when
 * the committed files differ from what this produces.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Dashboard, type Panel, ThresholdsMode, type VariableModel } from '@grafana/schema';
import { GRAFANA_SQL, type GrafanaQueryName } from '../packages/analytics/src/grafana.js';

const DATASOURCE = { type: 'grafana-clickhouse-datasource', uid: 'tapwire-clickhouse' };
// The ClickHouse plugin's Format enum: 0 time series, 1 table, 3 trace.
const FORMAT = { timeseries: 0, table: 1, traces: 3 } as const;

interface PanelSpec {
  title: string;
  query: GrafanaQueryName;
  type: 'timeseries' | 'table' | 'state-timeline' | 'stat' | 'bargauge' | 'traces';
  /** Width in grid columns (24 is the whole row). Default 12. */
  width?: number;
  unit?: string;
  description?: string;
  links?: { title: string; url: string }[];
  decimals?: number;
  /** Threshold steps (colours from the first value up), drawn by stat and bar gauge panels. */
  thresholds?: { color: string; value: number | null }[];
}

function panels(specs: readonly PanelSpec[]): Panel[] {
  return specs.map((s, i) => ({
    id: i + 1,
    type: s.type,
    title: s.title,
    ...(s.description ? { description: s.description } : {}),
    datasource: DATASOURCE,
    gridPos: {
      h: s.width === 24 ? 12 : 8,
      w: s.width ?? 12,
      x: s.width === 24 ? 0 : (i % 2) * 12,
      y: Math.floor(i / 2) * 8 + (s.width === 24 && i % 2 === 1 ? 8 : 0),
    },
    targets: [
      {
        refId: 'A',
        datasource: DATASOURCE,
        editorType: 'sql',
        queryType: s.type === 'timeseries' || s.type === 'traces' ? s.type : 'table',
        format: s.type === 'timeseries' || s.type === 'traces' ? FORMAT[s.type] : FORMAT.table,
        rawSql: GRAFANA_SQL[s.query],
      },
    ],
    fieldConfig: {
      defaults: {
        ...(s.unit ? { unit: s.unit } : {}),
        ...(s.links ? { links: s.links } : {}),
        ...(s.decimals !== undefined ? { decimals: s.decimals } : {}),
        ...(s.thresholds ? { thresholds: { mode: ThresholdsMode.Absolute, steps: s.thresholds } } : {}),
      },
      overrides: [],
    },
    options: {},
  }));
}

function variable(name: string, label: string, query: GrafanaQueryName): VariableModel {
  return {
    name,
    label,
    type: 'query',
    datasource: DATASOURCE,
    query: GRAFANA_SQL[query],
    definition: GRAFANA_SQL[query],
    refresh: 2,
    includeAll: true,
    allValue: '__all',
    multi: false,
    current: { text: 'All', value: '$__all' },
  } as VariableModel;
}

/** textVariable is a free-text variable, e.g. an SLO's objective (Grafana cannot read the alerting file). */
function textVariable(name: string, label: string, value: string, description: string): VariableModel {
  return {
    name,
    label,
    description,
    type: 'textbox',
    query: value,
    current: { text: value, value },
    options: [{ selected: true, text: value, value }],
  } as VariableModel;
}

/** customVariable offers fixed choices, written `text : value`. */
function customVariable(
  name: string,
  label: string,
  choices: readonly (readonly [string, string])[],
  description: string,
): VariableModel {
  const [first] = choices;
  if (!first) throw new Error(`variable ${name} has no choices`);
  return {
    name,
    label,
    description,
    type: 'custom',
    query: choices.map(([text, value]) => (text === value ? value : `${text} : ${value}`)).join(','),
    current: { text: first[0], value: first[1] },
    options: choices.map(([text, value], i) => ({ selected: i === 0, text, value })),
    includeAll: false,
    multi: false,
  } as VariableModel;
}

function dashboard(
  uid: string,
  title: string,
  vars: VariableModel[],
  specs: readonly PanelSpec[],
): Dashboard {
  return {
    uid,
    title,
    tags: ['tapwire'],
    editable: true,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-1h', to: 'now' },
    timezone: 'utc',
    templating: { list: vars },
    annotations: { list: [] },
    links: [
      {
        title: 'Tapwire',
        type: 'dashboards',
        tags: ['tapwire'],
        asDropdown: true,
        icon: 'external link',
        includeVars: true,
        keepTime: true,
        targetBlank: false,
        tooltip: '',
        url: '',
      },
    ],
    panels: panels(specs),
  };
}

const tenant = variable('tenant', 'Tenant', 'varTenant');
const service = variable('service', 'Service', 'varService');
const route = variable('route', 'Route', 'varRoute');

/** DASHBOARDS are the files written to dashboards/, by file name. */
export const DASHBOARDS: Record<string, Dashboard> = {
  'api-overview.json': dashboard(
    'tapwire-overview',
    'Tapwire · API overview',
    [tenant, service],
    [
      { title: 'Requests per second by service', query: 'overviewRps', type: 'timeseries', unit: 'reqps' },
      {
        title: '5xx error rate by service',
        query: 'overviewErrorRate',
        type: 'timeseries',
        unit: 'percentunit',
      },
      {
        title: 'Latency p50 / p90 / p99 by service',
        query: 'overviewLatency',
        type: 'timeseries',
        unit: 'ms',
      },
      { title: 'Busiest routes', query: 'overviewTopRoutes', type: 'table' },
    ],
  ),
  'route-drilldown.json': dashboard(
    'tapwire-route',
    'Tapwire · Route drill-down',
    [
      tenant,
      service,
      route,
      variable('consumer', 'Consumer', 'varConsumer'),
      textVariable(
        'trace_id',
        'Trace id',
        '',
        'trace shown in the trace panel (32 hex characters); empty: the slowest request of the route in the window.',
      ),
    ],
    [
      { title: 'Latency p50 / p90 / p99', query: 'routeLatency', type: 'timeseries', unit: 'ms' },
      { title: 'Requests per second by method', query: 'routeRps', type: 'timeseries', unit: 'reqps' },
      {
        title: 'Responses per second by status class',
        query: 'routeStatusClasses',
        type: 'timeseries',
        unit: 'reqps',
      },
      {
        title: 'Slowest requests (exemplars)',
        query: 'routeSlowest',
        type: 'table',
        description:
          'Each trace id links to its span tree in the Tapwire API, or shows it in the trace panel below.',
        // ${__data.fields.trace_id} is Grafana's data-link variable, not a template literal.
        links: [
          // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana interpolates this, not JavaScript.
          { title: 'Open the trace', url: 'http://localhost:8081/v1/traces/${__data.fields.trace_id}' },
          {
            title: 'Show the trace below',
            url:
              // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana interpolates this, not JavaScript.
              '/d/tapwire-route?${__url_time_range}&var-tenant=${tenant}&var-service=${service}&var-route=${route}&var-consumer=${consumer}&var-trace_id=${__data.fields.trace_id}',
          },
        ],
      },
      {
        title: 'Trace',
        query: 'routeTrace',
        type: 'traces',
        width: 24,
        description:
          'One trace across services: the proxy’s spans and the spans apps send over OTLP, nested by parent. The trace_id variable picks it (empty: the slowest request of the route in the window).',
      },
    ],
  ),
  'saturation.json': dashboard(
    'tapwire-saturation',
    'Tapwire · Saturation',
    [tenant, service],
    [
      {
        title: 'Event-loop utilization by proxy instance',
        query: 'saturationEventLoop',
        type: 'timeseries',
        unit: 'percentunit',
      },
      { title: 'Heap used by proxy instance', query: 'saturationHeap', type: 'timeseries', unit: 'bytes' },
      {
        title: 'Upstream in flight vs limit',
        query: 'saturationUpstreams',
        type: 'timeseries',
        unit: 'percentunit',
      },
      {
        title: 'Targets not healthy per upstream',
        query: 'saturationTargetsUnhealthy',
        type: 'timeseries',
        decimals: 0,
        description:
          'The most targets of a load-balanced upstream that were unhealthy (failing active health checks) or ejected (consecutive failed requests) in one sample.',
      },
      {
        title: 'Target health (instance, upstream, target)',
        query: 'saturationTargets',
        type: 'state-timeline',
        width: 24,
        description: "Each target's state as its proxy instance saw it: healthy, unhealthy or ejected.",
      },
    ],
  ),
  'policies.json': dashboard(
    'tapwire-policies',
    'Tapwire · Policies',
    [tenant, service, route],
    [
      {
        title: 'Cache hit ratio by route',
        query: 'policyCacheHitRatio',
        type: 'timeseries',
        unit: 'percentunit',
        description:
          '(hit + stale) / (hit + miss + stale) of the response cache; routes without a cache policy are not drawn.',
      },
      {
        title: 'Auth failures by kind',
        query: 'policyAuthFailures',
        type: 'timeseries',
        description:
          'Requests refused 401 auth_missing (no credentials) or auth_invalid (bad key or token), or 403 forbidden (missing scope or claim).',
      },
      {
        title: 'Rate-limited requests by consumer',
        query: 'policyRateLimited',
        type: 'timeseries',
        description:
          'Requests refused 429 rate_limited, per consumer (empty: anonymous clients, limited per address).',
      },
      {
        title: 'Quota use by consumer',
        query: 'policyQuotaUse',
        type: 'table',
        description:
          'Per consumer with a rate limit: its largest limit, the highest share of it used by a request, (limit − remaining) / limit, and the requests refused.',
      },
    ],
  ),
  'alerts.json': dashboard(
    'tapwire-alerts',
    'Tapwire · Alerts',
    [tenant],
    [
      { title: 'Alert states', query: 'alertsTimeline', type: 'state-timeline' },
      { title: 'Notifications delivered by receiver', query: 'alertsNotifications', type: 'timeseries' },
    ],
  ),
  'pipeline.json': dashboard(
    'tapwire-pipeline',
    'Tapwire · Pipeline health',
    [tenant],
    [
      { title: 'Consumer lag by topic', query: 'pipelineLag', type: 'timeseries' },
      { title: 'Dead letters by source topic', query: 'pipelineDlq', type: 'timeseries' },
      { title: 'Events dropped by proxies', query: 'pipelineDrops', type: 'timeseries' },
      {
        title: 'Proxy local log not yet shipped (share of logMaxBytes)',
        query: 'pipelineSpool',
        type: 'timeseries',
        unit: 'percentunit',
      },
    ],
  ),
};

const BURN_COLOURS = [
  { color: 'green', value: null },
  { color: 'yellow', value: 1 },
  { color: 'orange', value: 6 },
  { color: 'red', value: 14.4 },
];

DASHBOARDS['slo.json'] = dashboard(
  'tapwire-slo',
  'Tapwire · SLO',
  [
    tenant,
    service,
    route,
    variable('method', 'Method', 'varSloMethod'),
    variable('consumer', 'Consumer', 'varSloConsumer'),
    customVariable(
      'sli',
      'SLI',
      [
        ['availability', 'availability'],
        ['latency', 'latency'],
      ],
      'sli.kind of the SLO.',
    ),
    textVariable('objective', 'Objective %', '99.9', 'objective of the SLO, in percent.'),
    customVariable(
      'window',
      'Window',
      [
        ['28d', '2419200'],
        ['30d', '2592000'],
        ['7d', '604800'],
        ['1d', '86400'],
      ],
      'window of the SLO (the value is in seconds; add yours as `14d : 1209600`).',
    ),
    textVariable(
      'threshold_ms',
      'Latency threshold (ms)',
      '300',
      'sli.threshold_ms of a latency SLO (rounded down to the 1 % histogram edge, as the API does).',
    ),
    textVariable(
      'bad_statuses',
      'Bad statuses',
      '5xx',
      'sli.bad_statuses of an availability SLO, comma-separated: classes (5xx) and codes (503).',
    ),
    textVariable(
      'ignored_statuses',
      'Ignored statuses',
      '',
      'sli.ignored_statuses of an availability SLO, comma-separated codes (429), left out of good and total.',
    ),
    textVariable(
      'page_1h_5m',
      'Page factor 1h/5m',
      '14.4',
      'Page when the 1h and 5m burn rates exceed this.',
    ),
    textVariable(
      'page_6h_30m',
      'Page factor 6h/30m',
      '6',
      'Page when the 6h and 30m burn rates exceed this.',
    ),
    textVariable(
      'ticket_3d_6h',
      'Ticket factor 3d/6h',
      '1',
      'Ticket when the 3d and 6h burn rates exceed this.',
    ),
  ],
  [
    {
      title: 'SLI over the window',
      query: 'sloSli',
      type: 'stat',
      unit: 'percent',
      decimals: 3,
      description:
        'Share of good requests over the SLO window ending at the end of the time range (floored to the minute), exact.',
    },
    {
      title: 'Error budget remaining',
      query: 'sloBudgetRemaining',
      type: 'stat',
      unit: 'percent',
      decimals: 2,
      thresholds: [
        { color: 'red', value: null },
        { color: 'orange', value: 0 },
        { color: 'yellow', value: 25 },
        { color: 'green', value: 50 },
      ],
      description: '100 · (1 − bad / allowed bad) over the SLO window; negative once overspent.',
    },
    {
      title: 'Burn rates now (5m, 30m, 1h, 6h, 1d, 3d)',
      query: 'sloBurnRatesNow',
      type: 'bargauge',
      decimals: 2,
      thresholds: BURN_COLOURS,
      description:
        "How many times faster than allowed the budget burns over each window. Colours mark the SRE workbook's factors (1, 6, 14.4); the alerts use the SLO's own.",
    },
    {
      title: 'Error budget remaining over time',
      query: 'sloBudgetSeries',
      type: 'timeseries',
      unit: 'percent',
    },
    {
      title: 'Burn rates over time, with the page and ticket factors',
      query: 'sloBurnSeries',
      type: 'timeseries',
      description:
        'Page when both windows of a pair burn above its factor (1h and 5m, 6h and 30m), ticket when 3d and 6h do. The factors are the variables.',
    },
    { title: 'SLI over the window, over time', query: 'sloSliSeries', type: 'timeseries', unit: 'percent' },
  ],
);

/** renderDashboard is a dashboard's file content. */
export function renderDashboard(d: Dashboard): string {
  return `${JSON.stringify(d, null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const [file, d] of Object.entries(DASHBOARDS))
    writeFileSync(fileURLToPath(new URL(`../dashboards/${file}`, import.meta.url)), renderDashboard(d));
  process.stdout.write(`wrote ${Object.keys(DASHBOARDS).length} dashboards\n`);
}
