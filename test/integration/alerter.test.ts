import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type Alerter,
  alerterServiceConfigSchema,
  buildAlerter,
  createAlerterMetrics,
  runAlerterService,
} from '@tapwire/alerter';
import { type AlertingConfig, alertingConfigSchema, type RuleGroup } from '@tapwire/alerting';
import { createClickHouseStore, type Store } from '@tapwire/analytics';
import { type ClickHouse, createClickHouse, identifier, migrate, sql } from '@tapwire/clickhouse';
import { buildIngest, clickhouseWarehouse, ingestConfigSchema } from '@tapwire/ingest';
import {
  createKafkaClient,
  createKafkaEventSink,
  ensureTopics,
  kafkaSource,
  readTopicToEnd,
  topicSpecs,
} from '@tapwire/kafka';
import { type AlertStateEvent, alertStateCodec, TOPICS } from '@tapwire/schema';
import type { EventSink } from '@tapwire/stream';
import { createLogger } from '@tapwire/telemetry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertmanagerV4Schema, pagerDutyEventSchema, slackWebhookSchema } from '../support/alert-formats.js';
import { accessLogRow, type SeedLog } from '../support/analytics-seed.js';
import {
  deletePrefixedTopics,
  silentLogger,
  testClickHouseConfig,
  testKafkaConfig,
  uniqueName,
} from '../support/infra.js';
import { startReceiver, type TestReceiver } from '../support/receiver.js';
import { freePort } from '../support/upstream.js';

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const logger = createLogger({ name: 'alerter-it', level: 'silent' });
const kafka = createKafkaClient(testKafkaConfig(), silentLogger, 'alerter-test');
// A fixed minute in the past: the test plays the clock, evaluations read the rows written for it.
const T0 = Date.UTC(2026, 10, 20, 12, 0, 0);
const S = 1000;

let database: string;
let prefix: string;
let ch: ClickHouse;
let store: Store;
let sink: EventSink;
let slack: TestReceiver;
let pager: TestReceiver;
let hook: TestReceiver;
let offset = 0;
const alerters: Alerter[] = [];

function config(): AlertingConfig {
  return alertingConfigSchema.parse({
    groups: [
      {
        name: 'latency',
        interval: '15s',
        rules: [
          {
            id: 'p99-high',
            alert: 'P99High',
            kind: 'latency_quantile',
            quantile: 0.99,
            filters: { service: 'shop' },
            group_by: ['service', 'route'],
            window: '1m',
            op: '>',
            threshold: 500,
            clear_threshold: 400,
            for: '30s',
            severity: 'critical',
            annotations: {
              summary: 'p99 {{ .value }} ms on {{ .labels.route }} (threshold {{ .threshold }} ms)',
            },
          },
        ],
      },
    ],
    route: {
      receiver: 'chat',
      group_by: ['alertname', 'service'],
      group_wait: '0s',
      group_interval: '10s',
      repeat_interval: '4h',
      routes: [
        { matchers: ['severity="critical"'], receiver: 'pager', continue: true },
        { matchers: ['severity="critical"'], receiver: 'audit', continue: true },
        { matchers: ['service=~".+"'], receiver: 'chat' },
      ],
    },
    receivers: [
      { name: 'chat', slack: { webhookUrl: `${slack.url}/services/T/B/secret` } },
      { name: 'pager', pagerduty: { routingKey: 'r'.repeat(32), url: `${pager.url}/v2/enqueue` } },
      { name: 'audit', webhook: { url: `${hook.url}/alerts`, hmacSecret: 'a-long-shared-secret-value' } },
    ],
  });
}

function newAlerter(clock: { t: number }, alerting: AlertingConfig = config()): Alerter {
  const a = buildAlerter(
    { store, sink, logger, metrics: createAlerterMetrics(), now: () => clock.t },
    alerting,
    {
      apiUrl: 'http://api.test',
      dashboardUrl: 'http://grafana.test/d/tapwire-route',
      dispatchTickMs: 1000,
      retry: { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 50 },
    },
  );
  alerters.push(a);
  return a;
}

/** writeTraffic stores `perSecond` requests per second of a route, answered `status`, between two instants (ms). */
async function writeTraffic(
  route: string,
  fromMs: number,
  toMs: number,
  latencyMs: number,
  perSecond = 2,
  status = 200,
) {
  const rows: Record<string, unknown>[] = [];
  for (let t = fromMs; t < toMs; t += 1000 / perSecond) {
    const log: SeedLog = {
      tenant: 'default',
      tsUs: Math.round(t * 1000),
      id: `${route}-${t}`.replace(/[^A-Za-z0-9-]/g, '_'),
      traceId: (offset + 1).toString(16).padStart(32, 'a'),
      service: 'shop',
      route,
      method: 'GET',
      status,
      durationMs: latencyMs,
      consumer: '',
      bytesIn: 0,
      bytesOut: 10,
      errorKind: status >= 500 ? 'upstream_error' : 'none',
    };
    rows.push(accessLogRow(log, offset++));
  }
  await ch.insert('access_logs', rows);
}

async function stateEvents(): Promise<AlertStateEvent[]> {
  await sink.flush();
  const records = await readTopicToEnd(kafka, prefix + TOPICS.alertState);
  return records.flatMap((r) => {
    const d = r.value ? alertStateCodec.decode(r.value) : undefined;
    return d?.ok ? [d.event] : [];
  });
}

async function step(a: Alerter, group: RuleGroup, clock: { t: number }, atMs: number) {
  clock.t = atMs;
  await a.evaluateGroup(group, atMs);
  await a.dispatch(atMs);
}

beforeAll(async () => {
  database = uniqueName('tapwire_alerter');
  prefix = `${uniqueName('al')}.`;
  await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, lockSettleMs: 200 });
  await ensureTopics(
    kafka,
    topicSpecs(
      { partitions: 1, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
      prefix,
    ),
  );
  ch = createClickHouse(testClickHouseConfig(database));
  store = createClickHouseStore(createClickHouse(testClickHouseConfig(database)), {
    maxExecutionTimeS: 10,
    maxResultRows: 10_000,
  });
  sink = createKafkaEventSink(
    { kafka, logger: silentLogger },
    { lingerMs: 5, maxBatchEvents: 100, maxBufferedEvents: 10_000, retryBackoffMs: 100, topicPrefix: prefix },
  );
  slack = await startReceiver({ status: 200, body: 'ok' });
  pager = await startReceiver({ status: 202, body: '{"status":"success"}' });
  hook = await startReceiver({ status: 200, body: '' });
}, 120_000);

afterAll(async () => {
  await Promise.all(alerters.map((a) => a.close()));
  await sink?.close(5000);
  await store?.close();
  await ch?.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
  await ch?.close();
  await Promise.all([slack, pager, hook].map((r) => r?.close()));
  await deletePrefixedTopics(prefix);
});

describe('alerter on real ClickHouse and Kafka', () => {
  it('a latency breach fires after `for`, survives a restart without repeating, and its resolve during downtime is sent once', async () => {
    const clock = { t: T0 };
    const a = newAlerter(clock);
    const group = a.config().groups[0] as RuleGroup;
    // Slow from T0 to T0+3m, healthy afterwards.
    await writeTraffic('/checkout', T0, T0 + 180 * S, 900);
    await writeTraffic('/checkout', T0 + 180 * S, T0 + 400 * S, 100);
    // A failing first delivery to the webhook is retried and then delivered once.
    hook.script([{ status: 500, body: 'busy' }]);

    await step(a, group, clock, T0 + 60 * S);
    expect(a.alerts().map((x) => x.instance.state)).toEqual(['pending']);
    expect(slack.requests).toHaveLength(0);
    await step(a, group, clock, T0 + 75 * S);
    await step(a, group, clock, T0 + 90 * S);
    expect(a.alerts().map((x) => x.instance.state)).toEqual(['firing']);
    expect(slack.requests).toHaveLength(1);
    expect(pager.requests).toHaveLength(1);
    expect(hook.requests).toHaveLength(2);
    const s = slackWebhookSchema.parse(JSON.parse(slack.requests[0]?.body ?? ''));
    expect(s.text).toBe('[FIRING:1] P99High service=shop');
    // Quantiles come from 1% histogram buckets: 900 ms reads back within 0.5%.
    expect(JSON.stringify(s)).toMatch(/p99 (89[5-9]|90[0-4])(\.\d+)? ms on \/checkout \(threshold 500 ms\)/);
    const pd = pagerDutyEventSchema.parse(JSON.parse(pager.requests[0]?.body ?? ''));
    expect(pd).toMatchObject({
      event_action: 'trigger',
      payload: { severity: 'critical', source: 'shop', component: '/checkout' },
    });
    const am = alertmanagerV4Schema.parse(JSON.parse(hook.requests[1]?.body ?? ''));
    expect(am.alerts.map((x) => [x.status, x.labels.route, x.labels.alertname])).toEqual([
      ['firing', '/checkout', 'P99High'],
    ]);
    await a.close();

    // Restart while firing: state and delivery records come back from the topic; nothing is repeated.
    const b = newAlerter(clock);
    b.restore(await stateEvents());
    expect(b.alerts().map((x) => x.instance.state)).toEqual(['firing']);
    await step(b, group, clock, T0 + 120 * S);
    await step(b, group, clock, T0 + 150 * S);
    expect([slack.requests.length, pager.requests.length, hook.requests.length]).toEqual([1, 1, 2]);
    await b.close();

    // Down while the latency heals (T0+180s..): the next alerter sends the resolve once.
    const c = newAlerter(clock);
    c.restore(await stateEvents());
    await step(c, group, clock, T0 + 300 * S);
    await step(c, group, clock, T0 + 330 * S);
    expect(c.alerts().map((x) => x.instance.state)).toEqual(['resolved']);
    expect([slack.requests.length, pager.requests.length, hook.requests.length]).toEqual([2, 2, 3]);
    expect(JSON.parse(slack.requests[1]?.body ?? '').text).toBe('[RESOLVED] P99High service=shop');
    expect(pagerDutyEventSchema.parse(JSON.parse(pager.requests[1]?.body ?? ''))).toEqual({
      routing_key: 'r'.repeat(32),
      event_action: 'resolve',
      dedup_key: pd.dedup_key,
    });
    expect(alertmanagerV4Schema.parse(JSON.parse(hook.requests[2]?.body ?? '')).status).toBe('resolved');
    // Every transition and delivery is on the compacted topic.
    const events = await stateEvents();
    expect(events.filter((e) => !e.receiver).map((e) => e.state)).toEqual(['pending', 'firing', 'resolved']);
    expect(new Set(events.filter((e) => e.receiver).map((e) => e.receiver))).toEqual(
      new Set(['chat', 'pager', 'audit']),
    );
    await c.close();
  }, 120_000);

  it('a breach that flaps inside `for` never fires; no data raises <alert>_NoData when configured', async () => {
    const clock = { t: T0 + 7200 * S };
    const base = clock.t;
    const flapping = alertingConfigSchema.parse({
      ...JSON.parse(
        JSON.stringify({
          route: { receiver: 'audit', group_by: ['alertname'], group_wait: '0s', group_interval: '1s' },
          receivers: [{ name: 'audit', webhook: { url: `${hook.url}/flap` } }],
        }),
      ),
      groups: [
        {
          name: 'flap',
          rules: [
            {
              id: 'flap',
              alert: 'Flappy',
              kind: 'latency_quantile',
              quantile: 0.5,
              filters: { route: '/flap' },
              window: '15s',
              threshold: 500,
              for: '45s',
            },
            {
              id: 'sticky',
              alert: 'Sticky',
              kind: 'latency_quantile',
              quantile: 0.5,
              filters: { route: '/sticky' },
              window: '15s',
              threshold: 500,
              clear_threshold: 400,
            },
            {
              id: 'quiet',
              alert: 'Quiet',
              kind: 'latency_quantile',
              quantile: 0.5,
              filters: { route: '/never' },
              window: '15s',
              threshold: 500,
              no_data: { state: 'nodata', after: '30s' },
            },
          ],
        },
      ],
    });
    for (let i = 0; i < 8; i++)
      await writeTraffic('/flap', base + i * 15 * S, base + (i + 1) * 15 * S, i % 2 === 0 ? 900 : 100);
    // Hysteresis: 900 ms fires, 450 ms (between clear 400 and threshold 500) keeps it firing, 100 ms clears it.
    for (let i = 0; i < 8; i++)
      await writeTraffic(
        '/sticky',
        base + i * 15 * S,
        base + (i + 1) * 15 * S,
        i === 0 ? 900 : i < 3 ? 450 : 100,
      );
    const sticky: string[] = [];
    const a = buildAlerter(
      { store, sink, logger, metrics: createAlerterMetrics(), now: () => clock.t },
      flapping,
      {
        apiUrl: 'http://api.test',
        dashboardUrl: 'http://grafana.test/d/x',
        dispatchTickMs: 1000,
        retry: { maxAttempts: 2, initialBackoffMs: 10, maxBackoffMs: 20 },
      },
    );
    alerters.push(a);
    const group = flapping.groups[0] as RuleGroup;
    const seen = new Set<string>();
    for (let i = 1; i <= 8; i++) {
      await step(a, group, clock, base + i * 15 * S);
      for (const x of a.alerts()) seen.add(`${x.instance.labels.alertname}:${x.instance.state}`);
      sticky.push(
        a.alerts().find((x) => x.instance.labels.alertname === 'Sticky')?.instance.state ?? 'inactive',
      );
    }
    expect(sticky.slice(0, 4)).toEqual(['firing', 'firing', 'firing', 'resolved']);
    expect(seen.has('Flappy:firing')).toBe(false);
    expect(seen.has('Flappy:pending')).toBe(true);
    expect(seen.has('Quiet_NoData:firing')).toBe(true);
    const flapHook = hook.requests
      .filter((r) => r.path === '/flap')
      .map((r) => alertmanagerV4Schema.parse(JSON.parse(r.body)));
    expect(flapHook.map((b) => b.commonLabels.alertname).sort()).toEqual([
      'Quiet_NoData',
      'Sticky',
      'Sticky',
    ]);
    await a.close();
  }, 120_000);

  it('Idempotency-Key is distinct for a firing, its resolve after a restart and the next incident; a retried delivery reuses it', async () => {
    const clock = { t: T0 + 10_800 * S };
    const base = clock.t;
    const keyed = alertingConfigSchema.parse({
      groups: [
        {
          name: 'idem',
          rules: [
            {
              id: 'idem-p50',
              alert: 'IdemSlow',
              kind: 'latency_quantile',
              quantile: 0.5,
              filters: { route: '/idem' },
              window: '15s',
              threshold: 500,
            },
          ],
        },
      ],
      route: { receiver: 'audit', group_by: ['alertname'], group_wait: '0s', group_interval: '1s' },
      receivers: [{ name: 'audit', webhook: { url: `${hook.url}/idem` } }],
    });
    const group = keyed.groups[0] as RuleGroup;
    // Slow for 30 s (incident 1), healthy for 30 s, slow again (incident 2).
    await writeTraffic('/idem', base, base + 30 * S, 900);
    await writeTraffic('/idem', base + 30 * S, base + 60 * S, 100);
    await writeTraffic('/idem', base + 60 * S, base + 90 * S, 900);
    const sent = () =>
      hook.requests
        .filter((r) => r.path === '/idem')
        .map((r) => ({
          key: r.headers['idempotency-key'],
          status: alertmanagerV4Schema.parse(JSON.parse(r.body)).status,
        }));

    // Incident 1 fires; the receiver answers 500, then 200 to the retry.
    hook.script([{ status: 500, body: 'busy' }]);
    const a = newAlerter(clock, keyed);
    await step(a, group, clock, base + 15 * S);
    expect(sent().map((x) => x.status)).toEqual(['firing', 'firing']);
    await a.close();

    // Restart: state comes back from the topic; incident 1 resolves, then incident 2 fires.
    const b = newAlerter(clock, keyed);
    b.restore(await stateEvents());
    await step(b, group, clock, base + 45 * S);
    await step(b, group, clock, base + 75 * S);
    expect(b.alerts().map((x) => [x.instance.state, x.instance.firedAt])).toEqual([
      ['firing', base + 75 * S],
    ]);
    const [first, retry, resolve, next] = sent();
    expect(sent().map((x) => x.status)).toEqual(['firing', 'firing', 'resolved', 'firing']);
    expect(first?.key).toMatch(/^[0-9a-f]{64}$/);
    expect(retry?.key).toBe(first?.key);
    expect(new Set([first?.key, resolve?.key, next?.key]).size).toBe(3);
    await b.close();
  }, 120_000);

  it('an error-rate alert resolves once its traffic stops (no data is not breaching by default); keep_last stays firing', async () => {
    const clock = { t: T0 + 14_400 * S };
    const base = clock.t;
    const rule = (id: string, alert: string, extra: Record<string, unknown> = {}) => ({
      id,
      alert,
      kind: 'error_rate',
      filters: { route: '/stops' },
      window: '15s',
      threshold: 0.5,
      ...extra,
    });
    const quiet = alertingConfigSchema.parse({
      groups: [
        {
          name: 'stops',
          rules: [
            rule('stops-default', 'StopsDefault'),
            rule('stops-keep', 'StopsKeepLast', { no_data: { state: 'keep_last' } }),
          ],
        },
      ],
      route: { receiver: 'audit', group_by: ['alertname'], group_wait: '0s', group_interval: '1s' },
      receivers: [{ name: 'audit', webhook: { url: `${hook.url}/stops` } }],
    });
    // Every request fails for 30 s, then the route gets no traffic at all.
    await writeTraffic('/stops', base, base + 30 * S, 20, 2, 502);
    const a = newAlerter(clock, quiet);
    const group = quiet.groups[0] as RuleGroup;
    const states = () =>
      Object.fromEntries(
        a.alerts().map((x) => [x.instance.labels.alertname, [x.instance.state, x.instance.value]]),
      );
    await step(a, group, clock, base + 15 * S);
    expect(states()).toEqual({ StopsDefault: ['firing', 1], StopsKeepLast: ['firing', 1] });
    await step(a, group, clock, base + 30 * S);
    expect(states()).toEqual({ StopsDefault: ['firing', 1], StopsKeepLast: ['firing', 1] });
    // The window [30 s, 45 s) holds no request: the default policy resolves (keeping the last
    // value, as Prometheus's resolved alerts do), keep_last holds.
    await step(a, group, clock, base + 45 * S);
    expect(states()).toEqual({ StopsDefault: ['resolved', 1], StopsKeepLast: ['firing', 1] });
    await step(a, group, clock, base + 60 * S);
    expect(states()).toEqual({ StopsDefault: ['resolved', 1], StopsKeepLast: ['firing', 1] });
    const sent = hook.requests
      .filter((r) => r.path === '/stops')
      .map((r) => alertmanagerV4Schema.parse(JSON.parse(r.body)))
      .map((b) => `${b.commonLabels.alertname}:${b.status}`);
    expect(sent.sort()).toEqual(['StopsDefault:firing', 'StopsDefault:resolved', 'StopsKeepLast:firing']);
    await a.close();
  }, 120_000);

  it('the service reloads its rules on change and SIGHUP, keeping them when the new file is bad', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-alerter-'));
    const file = join(dir, 'alerting.yaml');
    const rules = (threshold: number) =>
      `groups:\n  - name: g\n    interval: 1h\n    rules:\n      - { id: r1, alert: A, kind: error_rate, threshold: ${threshold} }\nroute: { receiver: audit }\nreceivers:\n  - { name: audit, webhook: { url: "${hook.url}/svc" } }\n`;
    writeFileSync(file, rules(0.5));
    const running = await runAlerterService(
      alerterServiceConfigSchema.parse({
        alerter: { rulesFile: file, topicPrefix: prefix, admin: { port: await freePort() } },
        kafka: testKafkaConfig(),
        clickhouse: testClickHouseConfig(database),
        telemetry: { logLevel: 'silent' },
      }),
    );
    try {
      const threshold = () => running.alerter.config().groups[0]?.rules[0]?.threshold;
      expect(threshold()).toBe(0.5);
      writeFileSync(file, 'groups: [ { name: g, rules: [ { id: r1, kind: nonsense } ] } ]\n');
      expect(running.reload()).toBe(false);
      expect(threshold()).toBe(0.5);
      writeFileSync(file, rules(0.25));
      for (let i = 0; i < 50 && threshold() !== 0.25; i++) await new Promise((r) => setTimeout(r, 100));
      expect(threshold()).toBe(0.25);
      writeFileSync(file, rules(0.75));
      process.kill(process.pid, 'SIGHUP');
      for (let i = 0; i < 50 && threshold() !== 0.75; i++) await new Promise((r) => setTimeout(r, 100));
      expect(threshold()).toBe(0.75);
      const ready = await fetch(`${running.adminUrl}/readyz`);
      expect(await ready.json()).toMatchObject({
        ready: true,
        rules: 1,
        store: { kind: 'clickhouse', ok: true },
      });
      expect(await (await fetch(`${running.adminUrl}/metrics`)).text()).toContain(
        'tapwire_alerter_evaluations_total',
      );
    } finally {
      await running.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('ingest projects the alert-state topic into ClickHouse history, which the API store reads', async () => {
    const dlq = createKafkaEventSink(
      { kafka, logger: silentLogger },
      { lingerMs: 5, maxBatchEvents: 100, maxBufferedEvents: 1000, retryBackoffMs: 100, topicPrefix: prefix },
    );
    const ingest = buildIngest(
      { source: kafkaSource({ kafka, logger }), warehouse: clickhouseWarehouse(ch), dlq, logger },
      ingestConfigSchema.parse({
        groupId: uniqueName('tapwire-ingest-alerts'),
        topicPrefix: prefix,
        flushIntervalMs: 200,
        admin: { port: 0 },
        retention: { enabled: false },
      }),
    );
    await ingest.start();
    try {
      const onTopic = (await stateEvents()).filter((e) => e.rule_id === 'p99-high').length;
      let history: Awaited<ReturnType<Store['alertHistory']>> = { events: [] };
      for (let i = 0; i < 100 && history.events.length < onTopic; i++) {
        await new Promise((r) => setTimeout(r, 200));
        history = await store.alertHistory(
          { tenant: null },
          { range: { from: T0 / 1000 - 60, to: T0 / 1000 + 86_400 }, ruleId: 'p99-high', limit: 1000 },
        );
      }
      expect(history.events.length).toBe(onTopic);
      const checkout = history.events.filter((e) => e.labels.route === '/checkout');
      expect(
        checkout
          .filter((e) => e.receiver === null)
          .map((e) => e.state)
          .reverse(),
      ).toEqual(['pending', 'firing', 'resolved']);
      expect(new Set(checkout.filter((e) => e.receiver !== null).map((e) => e.receiver))).toEqual(
        new Set(['chat', 'pager', 'audit']),
      );
    } finally {
      await ingest.close();
      await dlq.close(5000);
    }
  }, 120_000);

  it('50 series breaching at once become one message per receiver', async () => {
    const clock = { t: T0 + 3600 * S };
    const a = newAlerter(clock);
    const group = a.config().groups[0] as RuleGroup;
    const base = T0 + 3600 * S;
    for (let i = 0; i < 50; i++) await writeTraffic(`/storm/${i}`, base, base + 120 * S, 800, 1);
    const before = [slack.requests.length, pager.requests.length, hook.requests.length];
    await step(a, group, clock, base + 60 * S);
    await step(a, group, clock, base + 90 * S);
    expect(a.alerts().filter((x) => x.instance.state === 'firing')).toHaveLength(50);
    expect([slack.requests.length, pager.requests.length, hook.requests.length]).toEqual(
      before.map((n) => n + 1),
    );
    expect(alertmanagerV4Schema.parse(JSON.parse(hook.requests.at(-1)?.body ?? '')).alerts).toHaveLength(50);
    expect(slackWebhookSchema.parse(JSON.parse(slack.requests.at(-1)?.body ?? '')).text).toBe(
      '[FIRING:50] P99High service=shop',
    );
    await a.close();
  }, 120_000);
});
