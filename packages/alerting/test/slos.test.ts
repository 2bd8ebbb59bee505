import { describe, expect, it } from 'vitest';
import { alertingConfigSchema, SLO_INHIBIT_RULE, sloBurnRules } from '../src/index.js';

const base = {
  route: { receiver: 'chat' },
  receivers: [{ name: 'chat', slack: { webhookUrl: 'https://hooks.slack.com/services/T/B/X' } }],
};
const H = 3_600_000;
const M = 60_000;

function issues(input: Record<string, unknown>): string[] {
  const r = alertingConfigSchema.safeParse({ ...base, ...input });
  expect(r.success).toBe(false);
  return (r.error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`).sort();
}

describe('SLOs in the alerting file', () => {
  it('applies the SRE workbook defaults: 28d window, page at 14.4 (1h/5m) and 6 (6h/30m), ticket at 1 (3d/6h)', () => {
    const c = alertingConfigSchema.parse({
      ...base,
      slos: [{ name: 'checkout', sli: { kind: 'availability' }, objective: 99.9 }],
    });
    expect(c.slo_defaults.interval).toBe(30_000);
    expect(c.slo_defaults.query_offset).toBe(0);
    expect(c.slos[0]).toEqual({
      name: 'checkout',
      description: '',
      selector: {},
      sli: { kind: 'availability', bad_statuses: ['5xx'], ignored_statuses: [] },
      objective: 99.9,
      window: 28 * 24 * H,
      labels: {},
      annotations: {},
      burn_rate_alerts: {
        enabled: true,
        page: {
          severity: 'critical',
          windows: [
            { long: H, short: 5 * M, factor: 14.4 },
            { long: 6 * H, short: 30 * M, factor: 6 },
          ],
        },
        ticket: { severity: 'warning', windows: [{ long: 72 * H, short: 6 * H, factor: 1 }] },
      },
    });
  });

  it('an SLO overrides the file default per tier; the file default overrides the workbook', () => {
    const c = alertingConfigSchema.parse({
      ...base,
      slo_defaults: { interval: '1m', burn_rate_alerts: { ticket: { severity: 'info' } } },
      slos: [
        {
          name: 'a',
          sli: { kind: 'latency', threshold_ms: 300 },
          objective: 99,
          window: '30d',
          burn_rate_alerts: { page: { windows: [{ long: '10m', short: '2m', factor: 2 }] } },
        },
        { name: 'b', sli: { kind: 'availability' }, objective: 99.5, burn_rate_alerts: { enabled: false } },
      ],
    });
    expect(c.slo_defaults.interval).toBe(M);
    expect(c.slos[0]?.burn_rate_alerts.page).toEqual({
      severity: 'critical',
      windows: [{ long: 10 * M, short: 2 * M, factor: 2 }],
    });
    expect(c.slos[0]?.burn_rate_alerts.ticket.severity).toBe('info');
    expect(c.slos[1] && sloBurnRules(c.slos[1])).toEqual([]);
  });

  it('names the SLO and field of every problem at once', () => {
    expect(
      issues({
        slos: [
          {
            name: 'bad name',
            sli: { kind: 'availability', bad_statuses: ['6xx'], ignored_statuses: [700] },
            objective: 100,
            window: '90s',
            selector: { path: '/x' },
          },
          { name: 'lat', sli: { kind: 'latency' }, objective: 99.12345678 },
          {
            name: 'lat2',
            sli: { kind: 'latency', threshold_ms: 100 },
            objective: 0,
            burn_rate_alerts: { page: { windows: [{ long: '5m', short: '1h', factor: 0 }] } },
          },
        ],
      }),
    ).toEqual([
      'slos.0.name: must be 1-128 letters, digits, "_", "." or "-"',
      'slos.0.objective: must be below 100',
      'slos.0.selector: Unrecognized key: "path"',
      'slos.0.sli.bad_statuses.0: Invalid input',
      'slos.0.sli.ignored_statuses.0: Too big: expected number to be <=599',
      'slos.0.window: must be a whole number of minutes (at least 1m)',
      'slos.1.objective: at most 6 decimal places',
      'slos.1.sli.threshold_ms: Invalid input: expected number, received undefined',
      'slos.2.burn_rate_alerts.page.windows.0.factor: Too small: expected number to be >0',
      'slos.2.burn_rate_alerts.page.windows.0.short: must be shorter than long',
      'slos.2.objective: must be above 0',
    ]);
  });

  it('checks names, labels and windows across the file once every SLO is well-formed', () => {
    expect(
      issues({
        slos: [
          { name: 'lat', sli: { kind: 'latency', threshold_ms: 100 }, objective: 99, labels: { slo: 'x' } },
          { name: 'lat', sli: { kind: 'latency', threshold_ms: 100 }, objective: 99 },
          { name: 'short', sli: { kind: 'availability' }, objective: 99, window: '1d' },
          {
            name: 'own',
            sli: { kind: 'availability' },
            objective: 99,
            window: '1h',
            burn_rate_alerts: {
              ticket: { windows: [{ long: '2h', short: '5m', factor: 1 }] },
              page: { windows: [] },
            },
          },
        ],
      }),
    ).toEqual([
      'slos.0.labels.slo: is set by the generated alerts (alertname, severity, rule_id, slo, windows, selector fields)',
      'slos.1.name: duplicate SLO lat',
      'slos.2.window: must be at least the 3d long window of the ticket burn-rate alert (or override burn_rate_alerts.ticket.windows)',
      'slos.3.burn_rate_alerts.ticket.windows.0.long: must not be longer than the SLO window',
    ]);
  });

  it('expands an SLO into one burn-rate condition per tier and window pair, labelled with the SLO and its selector', () => {
    const c = alertingConfigSchema.parse({
      ...base,
      slos: [
        {
          name: 'checkout',
          description: 'Checkout answers',
          selector: { service: 'shop', route: '/checkout' },
          sli: { kind: 'availability' },
          objective: 99.9,
          labels: { team: 'payments' },
          annotations: { runbook_url: 'https://runbooks.example/checkout' },
          burn_rate_alerts: { ticket: { severity: 'info' } },
        },
      ],
    });
    const rules = c.slos[0] ? sloBurnRules(c.slos[0]) : [];
    expect(rules.map((r) => [r.id, r.alert, r.severity, r.pair.factor])).toEqual([
      ['slo:checkout:page:1h/5m', 'SLOBurnRatePage', 'critical', 14.4],
      ['slo:checkout:page:6h/30m', 'SLOBurnRatePage', 'critical', 6],
      ['slo:checkout:ticket:3d/6h', 'SLOBurnRateTicket', 'info', 1],
    ]);
    expect(rules[0]?.labels).toEqual({
      team: 'payments',
      service: 'shop',
      route: '/checkout',
      slo: 'checkout',
      long_window: '1h',
      short_window: '5m',
    });
    expect(rules[0]?.annotations.description).toBe('Checkout answers');
    expect(rules[0]?.annotations.runbook_url).toBe('https://runbooks.example/checkout');
    expect(SLO_INHIBIT_RULE).toEqual({
      source_matchers: ['alertname="SLOBurnRatePage"'],
      target_matchers: ['alertname="SLOBurnRateTicket"'],
      equal: ['slo'],
    });
  });
});
