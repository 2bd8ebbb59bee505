import { type AlertingConfig, alertingConfigSchema } from '@tapwire/alerting';
import type { Store } from '@tapwire/analytics';
import { TOPICS } from '@tapwire/schema';
import { createLogger } from '@tapwire/telemetry';
import { afterEach, describe, expect, it } from 'vitest';
import { alertmanagerV4Schema } from '../../../test/support/alert-formats.js';
import { createMemorySink } from '../../../test/support/memory-sink.js';
import { startReceiver, type TestReceiver } from '../../../test/support/receiver.js';
import { createFakeSloCounter, type FakeRequest, steadyTraffic } from '../../../test/support/slo-counter.js';
import { type Alerter, buildAlerter, createAlerterMetrics } from '../src/index.js';

const logger = createLogger({ name: 'slo-alerts-test', level: 'silent' });
// A whole minute: the alerter's windows end here at the first evaluation.
const NOW = Date.UTC(2026, 10, 20, 12, 0, 0);
const NOW_S = NOW / 1000;
const MIN = 60;
const HOUR = 3600;
const DAY = 86_400;
const S = 1000;

// SLO-only files never query signals; a call would be a bug.
const noSignals = new Proxy({} as Store, {
  get: () => () => Promise.reject(new Error('the Store is not used by SLO alerts')),
});

const receivers: TestReceiver[] = [];
const alerters: Alerter[] = [];
afterEach(async () => {
  await Promise.all(alerters.splice(0).map((a) => a.close()));
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

function alertingFile(hookUrl: string, slo: Record<string, unknown> = {}): AlertingConfig {
  return alertingConfigSchema.parse({
    route: {
      receiver: 'hook',
      group_by: ['alertname', 'slo'],
      group_wait: '0s',
      group_interval: '1s',
      repeat_interval: '4h',
    },
    receivers: [{ name: 'hook', webhook: { url: `${hookUrl}/am` } }],
    slos: [
      {
        name: 'checkout',
        selector: { service: 'shop' },
        sli: { kind: 'availability' },
        objective: 99.9,
        window: '28d',
        labels: { team: 'payments' },
        ...slo,
      },
    ],
  });
}

async function setup(
  requests: FakeRequest[],
  slo: Record<string, unknown> = {},
  restartOf?: { hook: TestReceiver; sink: ReturnType<typeof createMemorySink> },
) {
  const hook = restartOf?.hook ?? (await startReceiver({ status: 200, body: '' }));
  if (!restartOf) receivers.push(hook);
  const counter = createFakeSloCounter(requests);
  const sink = restartOf?.sink ?? createMemorySink();
  const clock = { t: NOW };
  const alerter = buildAlerter(
    { store: noSignals, slos: counter, sink, logger, metrics: createAlerterMetrics(), now: () => clock.t },
    alertingFile(hook.url, slo),
    {
      apiUrl: 'http://api.test',
      dashboardUrl: 'http://grafana.test/d/tapwire-slo',
      dispatchTickMs: 1000,
      retry: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 2 },
    },
  );
  alerters.push(alerter);
  if (restartOf) alerter.restore(sink.of(TOPICS.alertState));
  const step = async (atMs: number) => {
    clock.t = atMs;
    await alerter.evaluateSlos(atMs);
    await alerter.dispatch(atMs);
  };
  const active = () =>
    alerter
      .alerts()
      .filter((a) => a.instance.state === 'firing')
      .map((a) => a.ruleId)
      .sort();
  const bodies = () => hook.requests.map((r) => alertmanagerV4Schema.parse(JSON.parse(r.body)));
  return { hook, counter, sink, alerter, step, active, bodies };
}

/** traffic is 3 days of `perMinute` requests of service shop ending at NOW, with `bad(minute)` 500s. */
const traffic = (perMinute: number, bad: (minuteStartS: number) => number, extraS = 0) =>
  steadyTraffic(NOW_S - 3 * DAY, NOW_S + extraS, perMinute, bad, { service: 'shop' });
const inLast = (seconds: number, n: number) => (t: number) => (t >= NOW_S - seconds && t < NOW_S ? n : 0);

describe('generated SLO burn-rate alerts', () => {
  it('the workbook example fires both pages at the first evaluation, not the ticket, and notifies the webhook', async () => {
    // 2 h at exactly 20× (20 bad in 1,000 a minute against a 0.1 % budget): 1h = 5m = 30m = 20,
    // 6h = 20·2/6 ≈ 6.7, 3d = 20·2/72 ≈ 0.56.
    const { step, active, bodies, counter, sink } = await setup(traffic(1000, inLast(2 * HOUR, 20)));
    await step(NOW);
    expect(counter.calls).toHaveLength(1);
    expect(active()).toEqual(['slo:checkout:page:1h/5m', 'slo:checkout:page:6h/30m']);
    const [body] = bodies();
    expect(bodies()).toHaveLength(1);
    expect(body?.status).toBe('firing');
    expect(body?.groupLabels).toEqual({ alertname: 'SLOBurnRatePage', slo: 'checkout' });
    expect(body?.alerts.map((a) => a.labels)).toEqual(
      expect.arrayContaining([
        {
          alertname: 'SLOBurnRatePage',
          rule_id: 'slo:checkout:page:1h/5m',
          severity: 'critical',
          slo: 'checkout',
          service: 'shop',
          team: 'payments',
          long_window: '1h',
          short_window: '5m',
        },
        expect.objectContaining({ long_window: '6h', short_window: '30m', severity: 'critical' }),
      ]),
    );
    expect(body?.alerts.find((a) => a.labels.long_window === '1h')?.annotations.summary).toBe(
      'SLO checkout is burning its error budget 20× as fast as allowed over 1h and 5m (page above 14.4×)',
    );
    expect(body?.alerts[0]?.generatorURL).toBe('http://api.test/v1/slos/checkout');
    const states = sink.of(TOPICS.alertState).filter((e) => !e.receiver);
    expect(states.map((e) => [e.rule_id, e.state, e.value, e.threshold]).sort()).toEqual([
      ['slo:checkout:page:1h/5m', 'firing', 20, 14.4],
      ['slo:checkout:page:6h/30m', 'firing', 20 / 3, 6],
    ]);
  });

  // 10,000 requests a minute against a 0.1 % budget: 144 bad a minute burn exactly 14.4×.
  it.each([
    ['1h and 5m just above 14.4', inLast(HOUR, 145), ['slo:checkout:page:1h/5m']],
    ['1h and 5m at exactly 14.4', inLast(HOUR, 144), []],
    ['1h and 5m just below 14.4', inLast(HOUR, 143), []],
    ['6h and 30m just above 6', inLast(6 * HOUR, 61), ['slo:checkout:page:6h/30m']],
    ['6h and 30m at exactly 6', inLast(6 * HOUR, 60), []],
    ['3d and 6h just above 1', inLast(3 * DAY, 11), ['slo:checkout:ticket:3d/6h']],
    ['3d and 6h at exactly 1', inLast(3 * DAY, 10), []],
    ['3d and 6h just below 1', inLast(3 * DAY, 9), []],
    // 55 minutes at 20× then a clean 5 minutes: the 1h burns 18.3×, the 5m nothing.
    ['1h above but 5m clean', (t: number) => (t >= NOW_S - HOUR && t < NOW_S - 5 * MIN ? 200 : 0), []],
    // Only the last 5 minutes at 20×: the 5m burns 20×, the 1h 1.7×.
    ['5m above but 1h below', inLast(5 * MIN, 200), []],
  ])('%s', async (_, bad, firing) => {
    const { step, active, bodies } = await setup(traffic(10_000, bad));
    await step(NOW);
    expect(active()).toEqual(firing);
    expect(bodies()).toHaveLength(firing.length);
  });

  it('a page inhibits the ticket of the same SLO; the ticket is sent once the page resolves', async () => {
    // 20× for the whole 3 days: every condition holds; then the burn stops at NOW.
    const { step, active, bodies } = await setup(traffic(1000, inLast(3 * DAY, 20), HOUR));
    await step(NOW);
    expect(active()).toEqual([
      'slo:checkout:page:1h/5m',
      'slo:checkout:page:6h/30m',
      'slo:checkout:ticket:3d/6h',
    ]);
    expect(bodies().map((b) => b.groupLabels.alertname)).toEqual(['SLOBurnRatePage']);
    // 30 clean minutes later the 5m and the 30m windows have recovered: both pages resolve; the
    // 6h window still burns 20·5.5/6 ≈ 18 and the 3d 20 — the ticket, no longer inhibited, goes out.
    await step(NOW + 30 * MIN * S);
    await step(NOW + 30 * MIN * S + 1 * S);
    expect(active()).toEqual(['slo:checkout:ticket:3d/6h']);
    expect(bodies().map((b) => [b.groupLabels.alertname, b.status])).toEqual([
      ['SLOBurnRatePage', 'firing'],
      ['SLOBurnRatePage', 'resolved'],
      ['SLOBurnRateTicket', 'firing'],
    ]);
  });

  it('resolves when the short window recovers, while the long one still burns', async () => {
    const { step, active, bodies } = await setup(traffic(1000, inLast(2 * HOUR, 20), HOUR));
    await step(NOW);
    // One clean minute: the 5m window holds 4 burning minutes, 16× — still a page.
    await step(NOW + MIN * S);
    expect(active()).toContain('slo:checkout:page:1h/5m');
    // Two clean minutes: 12× over 5m (the 1h still burns 19.3×): the 1h/5m page resolves.
    await step(NOW + 2 * MIN * S);
    expect(active()).toEqual(['slo:checkout:page:6h/30m']);
    const last = bodies().at(-1);
    expect(last?.alerts.map((a) => [a.labels.long_window, a.status])).toEqual(
      expect.arrayContaining([
        ['1h', 'resolved'],
        ['6h', 'firing'],
      ]),
    );
  });

  it('a restarted alerter resumes from the alert-state events: no second page, and the resolve is sent', async () => {
    const requests = traffic(1000, inLast(2 * HOUR, 20), HOUR);
    const first = await setup(requests);
    await first.step(NOW);
    expect(first.bodies()).toHaveLength(1);
    await first.alerter.close();
    const second = await setup(requests, {}, { hook: first.hook, sink: first.sink });
    expect(second.active()).toEqual(['slo:checkout:page:1h/5m', 'slo:checkout:page:6h/30m']);
    await second.step(NOW + 30 * S);
    expect(first.hook.requests).toHaveLength(1);
    await second.step(NOW + 2 * MIN * S);
    expect(
      second.bodies().map((b) => b.alerts.map((a) => `${a.labels.long_window}:${a.status}`).sort()),
    ).toEqual([
      ['1h:firing', '6h:firing'],
      ['1h:resolved', '6h:firing'],
    ]);
  });

  it('a failed count keeps the alerts as they were; the next evaluation resumes', async () => {
    const { step, active, counter } = await setup(traffic(1000, inLast(2 * HOUR, 20), HOUR));
    await step(NOW);
    counter.failWith = new Error('store unreachable');
    await step(NOW + 10 * MIN * S);
    expect(active()).toEqual(['slo:checkout:page:1h/5m', 'slo:checkout:page:6h/30m']);
    counter.failWith = undefined;
    await step(NOW + 10 * MIN * S + S);
    expect(active()).toEqual(['slo:checkout:page:6h/30m']);
  });

  it('query_offset moves every window back; disabled alerting evaluates nothing', async () => {
    const offset = await setup(traffic(1000, inLast(2 * HOUR, 20), HOUR));
    offset.alerter.reload({
      ...offset.alerter.config(),
      slo_defaults: { ...offset.alerter.config().slo_defaults, query_offset: 90 * S },
    });
    await offset.step(NOW + 10 * MIN * S);
    expect(offset.counter.calls[0]?.windows[1]).toEqual({
      from: NOW_S + 8 * MIN - 5 * MIN,
      to: NOW_S + 8 * MIN,
    });
    const off = await setup(traffic(1000, inLast(2 * HOUR, 20)), { burn_rate_alerts: { enabled: false } });
    await off.step(NOW);
    expect(off.counter.calls).toHaveLength(0);
    expect(off.active()).toEqual([]);
  });
});
