import { alertingConfigSchema } from '@tapwire/alerting';
import { createLogger } from '@tapwire/telemetry';
import { afterEach, describe, expect, it } from 'vitest';
import { alertmanagerV4Schema, slackWebhookSchema } from '../../../test/support/alert-formats.js';
import { startReceiver, type TestReceiver } from '../../../test/support/receiver.js';
import {
  buildNotifiers,
  createDispatcher,
  createRateLimiter,
  type Delivered,
  type DispatchAlert,
  type Dispatcher,
} from '../src/index.js';

const logger = createLogger({ name: 'dispatcher-test', level: 'silent' });
const receivers: TestReceiver[] = [];
const dispatchers: Dispatcher[] = [];
afterEach(async () => {
  await Promise.all(dispatchers.splice(0).map((d) => d.close()));
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

function alert(i: number, over: Partial<DispatchAlert> = {}): DispatchAlert {
  return {
    status: 'firing',
    labels: { alertname: 'P99High', rule_id: 'p99', severity: 'critical', service: 'shop', route: `/r${i}` },
    annotations: { summary: `p99 high on /r${i}` },
    startsAt: new Date(0),
    endsAt: undefined,
    fingerprint: i.toString(16).padStart(16, '0'),
    value: 900,
    threshold: 750,
    unit: 'ms',
    generatorUrl: 'http://api/v1/series',
    firedAt: 0,
    notified: {},
    ...over,
  };
}

/** setup builds a dispatcher; passing the receivers of an earlier one plays a restart. */
async function setup(
  extra: Record<string, unknown> = {},
  restartOf?: { slack: TestReceiver; hook: TestReceiver },
) {
  const slack = restartOf?.slack ?? (await startReceiver());
  const hook = restartOf?.hook ?? (await startReceiver());
  if (!restartOf) receivers.push(slack, hook);
  const alerting = alertingConfigSchema.parse({
    route: {
      receiver: 'chat',
      group_by: ['alertname', 'service'],
      group_wait: '30s',
      group_interval: '5m',
      repeat_interval: '4h',
      // As in Alertmanager, a matching child with continue lets later siblings match too; the
      // parent's own receiver is used only when no child matches.
      routes: [
        { matchers: ['severity="critical"'], receiver: 'audit', continue: true },
        { matchers: ['service=~".+"'], receiver: 'chat' },
      ],
    },
    receivers: [
      { name: 'chat', slack: { webhookUrl: `${slack.url}/hook` } },
      { name: 'audit', webhook: { url: `${hook.url}/am` } },
    ],
    ...extra,
  });
  const delivered: Delivered[] = [];
  const d = createDispatcher(
    {
      notifiers: buildNotifiers(alerting.receivers),
      limiter: createRateLimiter({ ratePerSecond: () => 1000, burst: 1000 }),
      policy: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 2 },
      logger,
      onDelivered: (x) => delivered.push(x),
      now: () => clock,
    },
    { alerting, externalUrl: 'http://api/v1/alerts', dashboardUrl: 'http://grafana/d/x' },
  );
  dispatchers.push(d);
  return { d, slack, hook, delivered };
}
let clock = 0;
const S = 1000;

describe('dispatcher', () => {
  it('50 alerts breaching at once become one message per receiver, after group_wait', async () => {
    const { d, slack, hook, delivered } = await setup();
    const alerts = Array.from({ length: 50 }, (_, i) => alert(i));
    d.update(alerts, 0);
    await d.tick(29 * S);
    expect(slack.requests).toHaveLength(0);
    clock = 30 * S;
    await d.tick(30 * S);
    expect(slack.requests).toHaveLength(1);
    expect(hook.requests).toHaveLength(1);
    expect(slackWebhookSchema.parse(JSON.parse(slack.requests[0]?.body ?? '')).text).toBe(
      '[FIRING:50] P99High service=shop',
    );
    expect(alertmanagerV4Schema.parse(JSON.parse(hook.requests[0]?.body ?? '')).alerts).toHaveLength(50);
    expect(delivered.map((x) => [x.receiver, x.fingerprints.length]).sort()).toEqual([
      ['audit', 50],
      ['chat', 50],
    ]);
  });

  it('sends nothing while nothing changes, repeats after repeat_interval, and resolves once', async () => {
    const { d, slack } = await setup();
    d.update([alert(1)], 0);
    clock = 30 * S;
    await d.tick(clock);
    clock = 330 * S;
    await d.tick(clock);
    expect(slack.requests).toHaveLength(1);
    clock = 4 * 3600 * S + 60 * S;
    await d.tick(clock);
    expect(slack.requests).toHaveLength(2);
    const resolvedAt = clock + 10 * S;
    d.update([alert(1, { status: 'resolved', endsAt: new Date(resolvedAt) })], resolvedAt);
    clock = resolvedAt + 300 * S;
    await d.tick(clock);
    expect(slack.requests).toHaveLength(3);
    expect(JSON.parse(slack.requests[2]?.body ?? '').text).toBe('[RESOLVED] P99High service=shop');
    clock += 300 * S;
    await d.tick(clock);
    expect(slack.requests).toHaveLength(3);
    expect(d.stats().groups).toBe(0);
  });

  it('after a restart: no repeat of what was delivered, and a resolve that happened meanwhile is sent', async () => {
    const { d, slack, hook } = await setup();
    const notified = { chat: 10 * S, audit: 10 * S };
    d.update(
      [alert(1, { notified }), alert(2, { status: 'resolved', endsAt: new Date(20 * S), notified })],
      30 * S,
    );
    clock = 60 * S;
    await d.tick(clock);
    expect(slack.requests).toHaveLength(1);
    expect(hook.requests).toHaveLength(1);
    const body = alertmanagerV4Schema.parse(JSON.parse(hook.requests[0]?.body ?? ''));
    expect(body.alerts.map((a) => [a.fingerprint, a.status])).toEqual([
      [alert(1).fingerprint, 'firing'],
      [alert(2).fingerprint, 'resolved'],
    ]);
    const quiet = await setup();
    quiet.d.update([alert(1, { notified })], 30 * S);
    clock = 60 * S;
    await quiet.d.tick(clock);
    expect(quiet.slack.requests).toHaveLength(0);
  });

  it('Idempotency-Key differs for a firing, its resolve after a restart, the next incident and a repeat; a retry reuses it', async () => {
    const first = await setup();
    const { hook } = first;
    const keys = () => hook.requests.map((r) => r.headers['idempotency-key']);
    // Incident 1 fires; the first attempt gets a 500, the retry of the same notification a 200.
    hook.script([{ status: 500, body: 'busy' }]);
    first.d.update([alert(1)], 0);
    clock = 30 * S;
    await first.d.tick(clock);
    expect(hook.requests).toHaveLength(2);
    const [firing, retried] = keys();
    expect(firing).toMatch(/^[0-9a-f]{64}$/);
    expect(retried).toBe(firing);
    await first.d.close();

    // Restart (a new dispatcher, fed what the alerter persisted): the incident resolves.
    const second = await setup({}, first);
    const sentFiring = { chat: 30 * S, audit: 30 * S };
    second.d.update(
      [alert(1, { status: 'resolved', endsAt: new Date(100 * S), notified: sentFiring })],
      100 * S,
    );
    clock = 130 * S;
    await second.d.tick(clock);
    // Incident 2 of the same series, then its repeat_interval reminder.
    const sentResolve = { chat: 130 * S, audit: 130 * S };
    const incident2 = { startsAt: new Date(200 * S), firedAt: 200 * S };
    second.d.update([alert(1, { ...incident2, notified: sentResolve })], 200 * S);
    clock = 230 * S;
    await second.d.tick(clock);
    clock += 4 * 3600 * S;
    await second.d.tick(clock);
    expect(alertmanagerV4Schema.parse(JSON.parse(hook.requests[2]?.body ?? '')).status).toBe('resolved');
    expect(hook.requests).toHaveLength(5);
    expect(new Set(keys()).size).toBe(4);
    await second.d.close();

    // Another restart before incident 2's first message was recorded as delivered: the resend is
    // a retry of that notification and carries its key.
    const third = await setup({}, first);
    third.d.update([alert(1, { ...incident2, notified: sentResolve })], 200 * S);
    clock = 230 * S;
    await third.d.tick(clock);
    expect(hook.requests).toHaveLength(6);
    expect(keys()[5]).toBe(keys()[3]);
  });

  it('an alert that resolves within group_wait is never announced', async () => {
    const { d, slack } = await setup();
    d.update([alert(1)], 0);
    d.update([alert(1, { status: 'resolved', endsAt: new Date(10 * S) })], 10 * S);
    clock = 30 * S;
    await d.tick(clock);
    expect(slack.requests).toHaveLength(0);
  });

  it("a rule's own receivers replace the route tree", async () => {
    const { d, slack, hook } = await setup();
    d.update([alert(1, { receivers: ['audit'] })], 0);
    clock = 30 * S;
    await d.tick(clock);
    expect(hook.requests).toHaveLength(1);
    expect(slack.requests).toHaveLength(0);
  });

  it('silences and inhibition mute at flush time', async () => {
    const { d, slack, hook } = await setup({
      inhibit_rules: [
        {
          source_matchers: ['severity="critical"'],
          target_matchers: ['severity="warning"'],
          equal: ['service'],
        },
      ],
    });
    d.setSilences([
      {
        id: 's1',
        matchers: ['route="/r1"'],
        startsAt: 0,
        endsAt: 3600 * S,
        createdBy: 'me',
        comment: 'deploy',
      },
    ]);
    const warning = alert(3, { labels: { ...alert(3).labels, severity: 'warning', alertname: 'P90High' } });
    d.update([alert(1), alert(2), warning], 0);
    clock = 30 * S;
    await d.tick(clock);
    const sent = alertmanagerV4Schema.parse(JSON.parse(hook.requests[0]?.body ?? ''));
    expect(sent.alerts.map((a) => a.labels.route)).toEqual(['/r2']);
    // The warning's own group (alertname P90High) is fully inhibited: nothing goes out for it.
    expect(slack.requests.map((r) => JSON.parse(r.body).text)).toEqual(['[FIRING:1] P99High service=shop']);
  });
});
