/**
 * Generates the Grafana dashboards in dashboards/*.json from GRAFANA_SQL (packages/analytics),
 * typed against @grafana/schema's Dashboard. `npm run dashboards` writes them; a test fails when
 * the committed files differ from what this produces.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Dashboard, Panel, VariableModel } from '@grafana/schema';
import { GRAFANA_SQL, type GrafanaQueryName } from '../packages/analytics/src/grafana.js';

const DATASOURCE = { type: 'grafana-clickhouse-datasource', uid: 'tapwire-clickhouse' };
// The ClickHouse plugin's Format enum: 0 time series, 1 table.
const FORMAT = { timeseries: 0, table: 1 } as const;

interface PanelSpec {
  title: string;
  query: GrafanaQueryName;
  type: 'timeseries' | 'table' | 'state-timeline';
  unit?: string;
  description?: string;
  links?: { title: string; url: string }[];
}

function panels(specs: readonly PanelSpec[]): Panel[] {
  return specs.map((s, i) => ({
    id: i + 1,
    type: s.type,
    title: s.title,
    ...(s.description ? { description: s.description } : {}),
    datasource: DATASOURCE,
    gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: Math.floor(i / 2) * 8 },
    targets: [
      {
        refId: 'A',
        datasource: DATASOURCE,
        editorType: 'sql',
        queryType: s.type === 'timeseries' ? 'timeseries' : 'table',
        format: s.type === 'timeseries' ? FORMAT.timeseries : FORMAT.table,
        rawSql: GRAFANA_SQL[s.query],
      },
    ],
    fieldConfig: {
      defaults: {
        ...(s.unit ? { unit: s.unit } : {}),
        ...(s.links ? { links: s.links } : {}),
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
      variable('route', 'Route', 'varRoute'),
      variable('consumer', 'Consumer', 'varConsumer'),
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
        description: 'Each trace id links to its span tree in the Tapwire API.',
        // ${__data.fields.trace_id} is Grafana's data-link variable, not a template literal.
        links: [
          // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana interpolates this, not JavaScript.
          { title: 'Open the trace', url: 'http://localhost:8081/v1/traces/${__data.fields.trace_id}' },
        ],
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

/** renderDashboard is a dashboard's file content. */
export function renderDashboard(d: Dashboard): string {
  return `${JSON.stringify(d, null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const [file, d] of Object.entries(DASHBOARDS))
    writeFileSync(fileURLToPath(new URL(`../dashboards/${file}`, import.meta.url)), renderDashboard(d));
  process.stdout.write(`wrote ${Object.keys(DASHBOARDS).length} dashboards\n`);
}
