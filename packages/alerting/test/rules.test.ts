import { describe, expect, it } from 'vitest';
import { alertingConfigSchema, durationMs, matches, parseMatcher, renderTemplate } from '../src/index.js';

const receivers = [{ name: 'chat', slack: { webhookUrl: 'https://hooks.slack.com/services/T/B/X' } }];

describe('alerting file', () => {
  it('names the group, rule and field of every problem at once', () => {
    const r = alertingConfigSchema.safeParse({
      groups: [
        {
          name: 'g',
          rules: [
            { id: 'a', alert: 'A', kind: 'latency_quantile', threshold: 1, for: '5 minutes' },
            { id: 'a', alert: 'B', kind: 'saturation', threshold: 1, group_by: ['route'] },
            {
              id: 'c',
              alert: 'C',
              kind: 'error_rate',
              threshold: 0.1,
              op: '>',
              clear_threshold: 0.2,
              receivers: ['ghost'],
            },
          ],
        },
      ],
      route: { receiver: 'nobody', routes: [{ matchers: ['severity=critical'] }] },
      receivers,
    });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path.join('.')).sort()).toEqual(
      [
        'groups.0.rules.0.for',
        'groups.0.rules.0.quantile',
        'groups.0.rules.1.group_by.0',
        'groups.0.rules.1.id',
        'groups.0.rules.1.metric',
        'groups.0.rules.2.clear_threshold',
        'groups.0.rules.2.receivers.0',
        'route.receiver',
        'route.routes.0.matchers.0',
      ].sort(),
    );
  });

  it('policy rules group by consumer; only targets_unhealthy groups by target', () => {
    const parse = (rules: Record<string, unknown>[]) =>
      alertingConfigSchema.safeParse({
        groups: [{ name: 'g', rules }],
        route: { receiver: 'chat' },
        receivers,
      });
    const ok = parse([
      { id: 'a', alert: 'A', kind: 'rate_limited', threshold: 0.1, group_by: ['consumer'] },
      { id: 'b', alert: 'B', kind: 'quota_used', threshold: 1, filters: { consumer: 'key-a' } },
      { id: 'c', alert: 'C', kind: 'cache_hit_ratio', op: '<', threshold: 0.5, group_by: ['route'] },
      { id: 'd', alert: 'D', kind: 'auth_failures', threshold: 0.2, group_by: ['service'] },
      {
        id: 'e',
        alert: 'E',
        kind: 'saturation',
        metric: 'targets_unhealthy',
        threshold: 0,
        group_by: ['upstream', 'target'],
      },
    ]);
    expect(ok.success).toBe(true);
    const bad = parse([
      { id: 'a', alert: 'A', kind: 'saturation', metric: 'cpu_ratio', threshold: 1, group_by: ['target'] },
      { id: 'b', alert: 'B', kind: 'rate_limited', threshold: 1, group_by: ['target'] },
      {
        id: 'c',
        alert: 'C',
        kind: 'saturation',
        metric: 'targets_unhealthy',
        threshold: 0,
        group_by: ['consumer'],
      },
    ]);
    expect(bad.error?.issues.map((i) => i.path.join('.'))).toEqual([
      'groups.0.rules.0.group_by.0',
      'groups.0.rules.1.group_by.0',
      'groups.0.rules.2.group_by.0',
    ]);
  });

  it('fills Prometheus/Alertmanager defaults', () => {
    const c = alertingConfigSchema.parse({
      groups: [{ name: 'g', rules: [{ id: 'a', alert: 'A', kind: 'error_rate', threshold: 0.05 }] }],
      route: { receiver: 'chat' },
      receivers,
    });
    expect(c.groups[0]).toMatchObject({ interval: 15_000, query_offset: 0 });
    expect(c.groups[0]?.rules[0]).toMatchObject({
      window: 300_000,
      op: '>',
      for: 0,
      keep_firing_for: 0,
      severity: 'error',
    });
    expect(durationMs('90s')).toBe(90_000);
  });
});

describe('matchers and templates', () => {
  it('matches like Alertmanager: anchored regexes, missing labels read as empty', () => {
    expect(matches(parseMatcher('service=~"shop|cart"'), { service: 'shop' })).toBe(true);
    expect(matches(parseMatcher('service=~"sho"'), { service: 'shop' })).toBe(false);
    expect(matches(parseMatcher('team!=""'), {})).toBe(false);
    expect(matches(parseMatcher('name="a \\"quoted\\" value"'), { name: 'a "quoted" value' })).toBe(true);
  });

  it('renders value, threshold, labels and window placeholders', () => {
    expect(
      renderTemplate(
        'p99 {{ .value }} > {{ .threshold }} on {{ .labels.route }} over {{ .window }}; {{ .unknown }}',
        {
          value: 812.3456,
          threshold: 750,
          labels: { route: '/a' },
          window: '5m',
        },
      ),
    ).toBe('p99 812.346 > 750 on /a over 5m; {{ .unknown }}');
  });
});
