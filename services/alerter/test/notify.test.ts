import { createHmac } from 'node:crypto';
import { receiversSchema } from '@tapwire/alerting';
import { afterEach, describe, expect, it } from 'vitest';
import {
  alertmanagerV4Schema,
  pagerDutyEventSchema,
  slackWebhookSchema,
} from '../../../test/support/alert-formats.js';
import { startReceiver, type TestReceiver } from '../../../test/support/receiver.js';
import {
  alertmanagerV4Body,
  buildNotifiers,
  createPagerDutyNotifier,
  createRateLimiter,
  createSlackNotifier,
  createWebhookNotifier,
  deliver,
  formatValue,
  type Notification,
  type NotifiedAlert,
  pagerDutyDedupKey,
  pagerDutyEvents,
  slackMessage,
} from '../src/index.js';

function alert(i: number, status: 'firing' | 'resolved' = 'firing'): NotifiedAlert {
  return {
    status,
    labels: {
      alertname: 'CheckoutP99High',
      rule_id: 'ckout-p99',
      severity: 'critical',
      service: 'checkout',
      route: `/r${i}`,
    },
    annotations: { summary: `p99 1.42 s on /r${i}`, runbook_url: 'https://runbooks.example/checkout' },
    startsAt: new Date('2026-11-26T10:00:00Z'),
    endsAt: status === 'resolved' ? new Date('2026-11-26T10:20:00Z') : undefined,
    fingerprint: i.toString(16).padStart(16, '0'),
    value: 1420,
    threshold: 750,
    unit: 'ms',
    generatorUrl: `https://api.example/v1/series?route=/r${i}`,
  };
}

function notification(alerts: NotifiedAlert[], receiver = 'team'): Notification {
  return {
    receiver,
    groupKey: '{}/{team="checkout"}:{alertname="CheckoutP99High", service="checkout"}',
    groupLabels: { alertname: 'CheckoutP99High', service: 'checkout' },
    alerts,
    dashboardUrl: 'https://grafana.example/d/tapwire-route',
    externalUrl: 'https://api.example/v1/alerts',
    idempotencyKey: 'a'.repeat(64),
  };
}

const receivers: TestReceiver[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});
async function receiver() {
  const r = await startReceiver();
  receivers.push(r);
  return r;
}

const noWait = {
  limiter: createRateLimiter({ ratePerSecond: () => 1000, burst: 1000 }),
  signal: new AbortController().signal,
};
const policy = { maxAttempts: 4, initialBackoffMs: 1, maxBackoffMs: 5 };

describe('message formats', () => {
  it('Slack: one Block Kit message per group within Block Kit limits, even for 50 alerts', () => {
    const many = slackMessage(notification(Array.from({ length: 50 }, (_, i) => alert(i))), 10);
    expect(slackWebhookSchema.parse(many).blocks).toHaveLength(2 + 10 + 1 + 1);
    expect(many.text).toBe('[FIRING:50] CheckoutP99High service=checkout');
    expect(JSON.stringify(many)).toContain('+40 more');
    const one = slackMessage(notification([alert(1)]), 10);
    const section = JSON.stringify(one);
    expect(section).toContain('firing: 1.42 s vs threshold 750 ms');
    expect(section).toContain('<https://grafana.example/d/tapwire-route|Grafana dashboard>');
    expect(section).toContain('<https://api.example/v1/series?route=/r1|API query>');
    expect(slackMessage(notification([alert(1, 'resolved')]), 10).text).toBe(
      '[RESOLVED] CheckoutP99High service=checkout',
    );
  });

  it('PagerDuty: trigger and resolve share a stable dedup_key; severity and details mapped', () => {
    const config = {
      routingKey: 'R'.repeat(32),
      url: 'http://x',
      sendResolved: true,
      dedup: 'per_group' as const,
      timeoutMs: 1000,
    };
    const [trigger] = pagerDutyEvents(notification([alert(1), alert(2)]), config);
    const [resolve] = pagerDutyEvents(notification([alert(1, 'resolved'), alert(2, 'resolved')]), config);
    expect(pagerDutyEventSchema.parse(trigger)).toMatchObject({
      event_action: 'trigger',
      payload: {
        severity: 'critical',
        source: 'checkout',
        group: 'checkout',
        summary: '[FIRING:2] CheckoutP99High: p99 1.42 s on /r1',
      },
    });
    expect(pagerDutyEventSchema.parse(resolve)).toEqual({
      routing_key: 'R'.repeat(32),
      event_action: 'resolve',
      dedup_key: trigger?.dedup_key,
    });
    expect(trigger?.dedup_key).toBe(pagerDutyDedupKey(notification([]).groupKey));
    const perInstance = pagerDutyEvents(notification([alert(1), alert(2)]), {
      ...config,
      dedup: 'per_instance',
    });
    expect(new Set(perInstance.map((e) => e.dedup_key)).size).toBe(2);
    const unknownSeverity = { ...alert(3), labels: { ...alert(3).labels, severity: 'page-me' } };
    expect(pagerDutyEvents(notification([unknownSeverity]), config)[0]).toMatchObject({
      payload: { severity: 'error' },
    });
  });

  it('webhook: Alertmanager v4 JSON, zero end time while firing, truncation counted', () => {
    const body = alertmanagerV4Body(notification([alert(1), alert(2, 'resolved'), alert(3)]), 2);
    const parsed = alertmanagerV4Schema.parse(body);
    expect(parsed).toMatchObject({
      status: 'firing',
      truncatedAlerts: 1,
      receiver: 'team',
      commonLabels: { alertname: 'CheckoutP99High', service: 'checkout' },
    });
    expect(parsed.alerts.map((a) => a.endsAt)).toEqual(['0001-01-01T00:00:00Z', '2026-11-26T10:20:00.000Z']);
  });

  it('formats values with their units', () => {
    expect([
      formatValue(1420, 'ms'),
      formatValue(75.5, 'ms'),
      formatValue(0.025, 'ratio'),
      formatValue(12, 'rps'),
    ]).toEqual(['1.42 s', '75.5 ms', '2.50 %', '12.0 rps']);
  });
});

describe('delivery to real HTTP receivers', () => {
  it('500 then 200: delivered once, after one retry', async () => {
    const r = await receiver();
    r.script([{ status: 500, body: 'rollup_error' }]);
    const slack = createSlackNotifier('team', {
      webhookUrl: `${r.url}/hook`,
      sendResolved: true,
      maxAlertsListed: 10,
      timeoutMs: 2000,
    });
    const outcome = await deliver(slack, notification([alert(1)]), { ...noWait, policy });
    expect(outcome).toEqual({ outcome: 'delivered', attempts: 2, reason: '' });
    expect(r.requests).toHaveLength(2);
    for (const req of r.requests) slackWebhookSchema.parse(JSON.parse(req.body));
  });

  it('400 is not retried: the receiver is rejected, and the reason never holds the URL', async () => {
    const r = await receiver();
    r.script([], { status: 400, body: 'invalid_payload' });
    const secretUrl = `${r.url}/services/T000/B000/XXXXSECRET`;
    const slack = createSlackNotifier('team', {
      webhookUrl: secretUrl,
      sendResolved: true,
      maxAlertsListed: 10,
      timeoutMs: 2000,
    });
    const outcome = await deliver(slack, notification([alert(1)]), { ...noWait, policy });
    expect(outcome).toEqual({ outcome: 'rejected', attempts: 1, reason: 'HTTP 400: invalid_payload' });
    expect(r.requests).toHaveLength(1);
    expect(slack.destination).not.toContain('SECRET');
  });

  it('429 with Retry-After is honoured before the next attempt', async () => {
    const r = await receiver();
    r.script([{ status: 429, body: '{"ok":false,"error":"rate_limited"}', headers: { 'retry-after': '1' } }]);
    const waits: number[] = [];
    const hook = createWebhookNotifier('audit', {
      url: `${r.url}/am`,
      sendResolved: true,
      maxAlerts: 0,
      hmacSecret: undefined,
      timeoutMs: 2000,
    });
    const outcome = await deliver(hook, notification([alert(1)]), {
      ...noWait,
      policy,
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    expect(outcome.outcome).toBe('delivered');
    expect(waits).toEqual([1000]);
    expect(r.requests).toHaveLength(2);
  });

  it('network errors are retried until the attempts run out', async () => {
    const r = await receiver();
    const url = `${r.url}/gone`;
    await r.close();
    receivers.splice(receivers.indexOf(r), 1);
    const pd = createPagerDutyNotifier('pager', {
      routingKey: 'k'.repeat(32),
      url,
      sendResolved: true,
      dedup: 'per_group',
      timeoutMs: 500,
    });
    const outcome = await deliver(pd, notification([alert(1)]), { ...noWait, policy });
    expect(outcome).toEqual({ outcome: 'failed', attempts: 4, reason: 'network error' });
  });

  it('webhook bodies are signed with HMAC-SHA256 and carry an idempotency key', async () => {
    const r = await receiver();
    const secret = 'a-long-shared-secret-value';
    const hook = createWebhookNotifier('audit', {
      url: `${r.url}/am`,
      sendResolved: true,
      maxAlerts: 0,
      hmacSecret: secret,
      timeoutMs: 2000,
    });
    expect((await deliver(hook, notification([alert(1)]), { ...noWait, policy })).outcome).toBe('delivered');
    const [req] = r.requests;
    alertmanagerV4Schema.parse(JSON.parse(req?.body ?? ''));
    expect(req?.headers['x-tapwire-signature']).toBe(
      `sha256=${createHmac('sha256', secret)
        .update(req?.body ?? '')
        .digest('hex')}`,
    );
    expect(req?.headers['idempotency-key']).toBe('a'.repeat(64));
  });

  it('PagerDuty: 202 accepted; resolved groups are skipped when send_resolved is off', async () => {
    const r = await receiver();
    r.script([], { status: 202, body: '{"status":"success","message":"Event processed"}' });
    const pd = createPagerDutyNotifier('pager', {
      routingKey: 'k'.repeat(32),
      url: `${r.url}/v2/enqueue`,
      sendResolved: false,
      dedup: 'per_group',
      timeoutMs: 2000,
    });
    expect((await deliver(pd, notification([alert(1)]), { ...noWait, policy })).outcome).toBe('delivered');
    pagerDutyEventSchema.parse(JSON.parse(r.requests[0]?.body ?? ''));
    expect((await deliver(pd, notification([alert(1, 'resolved')]), { ...noWait, policy })).outcome).toBe(
      'skipped',
    );
    expect(r.requests).toHaveLength(1);
  });
});

describe('rate limiter', () => {
  it('lets a burst through, then spaces sends at the destination rate', async () => {
    let t = 0;
    const slept: number[] = [];
    const limiter = createRateLimiter({
      ratePerSecond: () => 2,
      burst: 2,
      now: () => t,
      sleep: async (ms) => {
        slept.push(ms);
        t += ms;
      },
    });
    for (let i = 0; i < 4; i++) await limiter.take('slack:abc');
    await limiter.take('slack:other');
    expect(slept).toEqual([500, 500]);
  });
});

describe('receiver config', () => {
  it('names the receiver and field of every problem at once', () => {
    const result = receiversSchema.safeParse([
      { name: 'a', slack: { webhookUrl: 'not a url' } },
      { name: 'b' },
      { name: 'a', webhook: { url: 'http://x', hmacSecret: 'short' } },
    ]);
    expect(result.success).toBe(false);
    const paths = result.error?.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(
      expect.arrayContaining(['0.slack.webhookUrl', '1', '2.webhook.hmacSecret', '2.name']),
    );
  });

  it('builds one notifier per receiver with its send rate', () => {
    const built = buildNotifiers(
      receiversSchema.parse([
        { name: 'chat', slack: { webhookUrl: 'https://hooks.slack.com/services/T/B/X' } },
        { name: 'pager', pagerduty: { routingKey: 'k'.repeat(32) } },
        { name: 'audit', webhook: { url: 'https://audit.example/am' } },
      ]),
    );
    expect([...built].map(([n, r]) => [n, r.notifier.kind, r.ratePerSecond])).toEqual([
      ['chat', 'slack', 1],
      ['pager', 'pagerduty', 2],
      ['audit', 'webhook', 10],
    ]);
  });
});
