import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCli } from '../src/program.js';

const dir = mkdtempSync(join(tmpdir(), 'tapwire-slo-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const alertingFile = join(dir, 'alerting.yaml');
writeFileSync(
  alertingFile,
  `
route: { receiver: chat }
receivers: [{ name: chat, webhook: { url: "http://hook.test/x" } }]
slos:
  - name: checkout
    description: Checkout answers without a server error
    selector: { service: shop }
    sli: { kind: availability }
    objective: 99.9
    labels: { team: payments }
    annotations: { runbook_url: "https://runbooks.example/{{ .labels.slo }}" }
  - name: search-fast
    selector: { service: search }
    sli: { kind: latency, threshold_ms: 250 }
    objective: 99
    window: 30d
    burn_rate_alerts:
      page: { windows: [{ long: 10m, short: 2m, factor: 10 }] }
      ticket: { windows: [] }
  - name: per-route
    selector: { service: shop, route: /pay }
    sli: { kind: availability }
    objective: 99.9
  - name: no-throttles
    sli: { kind: availability, ignored_statuses: [429] }
    objective: 99.5
  - name: slow-300
    sli: { kind: latency, threshold_ms: 300 }
    objective: 99
`,
);

const configFile = join(dir, 'tapwire.yaml');
writeFileSync(
  configFile,
  `
proxy:
  upstreams:
    - { name: shop-a, service: shop, url: "http://127.0.0.1:9001", match: { pathPrefix: /a } }
    - { name: shop-b, service: shop, url: "http://127.0.0.1:9002", match: { pathPrefix: /b } }
    - { name: search, url: "http://127.0.0.1:9003", match: { pathPrefix: /search } }
`,
);

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

const ratio = (up: string, w: string) =>
  `sum(rate(tapwire_proxy_requests_total{${up},class="5xx"}[${w}])) / sum(rate(tapwire_proxy_requests_total{${up}}[${w}]))`;
const slow = (w: string) =>
  `1 - (sum(rate(tapwire_proxy_request_duration_seconds_bucket{upstream="search",le="0.25"}[${w}])) / sum(rate(tapwire_proxy_request_duration_seconds_count{upstream="search"}[${w}])))`;
const records = (slo: string, windows: string[], expr: (w: string) => string) =>
  windows.map((w) => ({ record: `tapwire_slo:error_ratio:rate${w}`, expr: expr(w), labels: { slo } }));
const over = (slo: string, w: string, factor: number, budget: number) =>
  `tapwire_slo:error_ratio:rate${w}{slo="${slo}"} > (${factor} * ${budget})`;

describe('tapwire slo export --prometheus', () => {
  it('prints recording and burn-rate alerting rules over the proxy metrics, mapping services to upstreams', async () => {
    const { code, out, err } = await run([
      '-c',
      configFile,
      'slo',
      'export',
      '--prometheus',
      '-f',
      alertingFile,
    ]);
    expect(err).toBe('');
    expect(code).toBe(0);
    const checkoutAlert = (alert: string, long: string, short: string, factor: number, severity: string) => ({
      alert,
      expr: `${over('checkout', long, factor, 0.001)} and ${over('checkout', short, factor, 0.001)}`,
      labels: {
        team: 'payments',
        service: 'shop',
        slo: 'checkout',
        long_window: long,
        short_window: short,
        severity,
      },
      annotations: {
        summary: `SLO checkout is burning its error budget more than ${factor}× as fast as allowed over ${long} and ${short}`,
        description: 'Checkout answers without a server error',
        runbook_url: 'https://runbooks.example/{{ $labels.slo }}',
      },
    });
    expect(parse(out)).toEqual({
      groups: [
        {
          name: 'tapwire-slo-checkout',
          interval: '30s',
          rules: [
            ...records('checkout', ['5m', '30m', '1h', '6h', '1d', '3d'], (w) =>
              ratio('upstream=~"shop-a|shop-b"', w),
            ),
            checkoutAlert('SLOBurnRatePage', '1h', '5m', 14.4, 'critical'),
            checkoutAlert('SLOBurnRatePage', '6h', '30m', 6, 'critical'),
            checkoutAlert('SLOBurnRateTicket', '3d', '6h', 1, 'warning'),
          ],
        },
        {
          name: 'tapwire-slo-search-fast',
          interval: '30s',
          rules: [
            ...records('search-fast', ['2m', '5m', '10m', '30m', '1h', '6h', '1d', '3d'], slow),
            {
              alert: 'SLOBurnRatePage',
              expr: `${over('search-fast', '10m', 10, 0.01)} and ${over('search-fast', '2m', 10, 0.01)}`,
              labels: {
                service: 'search',
                slo: 'search-fast',
                long_window: '10m',
                short_window: '2m',
                severity: 'critical',
              },
              annotations: {
                summary:
                  'SLO search-fast is burning its error budget more than 10× as fast as allowed over 10m and 2m',
              },
            },
          ],
        },
      ],
    });
    const comments = out.split('\n').filter((l) => l.startsWith('#'));
    expect(comments).toEqual(
      expect.arrayContaining([
        '# SLO per-route is not exported: its selector pins route, which tapwire_proxy_requests_total does not carry (its labels are upstream and class).',
        '# SLO no-throttles is not exported: ignored_statuses (429) cannot be left out: tapwire_proxy_requests_total counts status classes only.',
        '# SLO slow-300 is not exported: its latency threshold 300 ms is not a bucket edge of tapwire_proxy_request_duration_seconds (edges: 1 ms, 2.5 ms, 5 ms, 10 ms, 25 ms, 50 ms, 100 ms, 250 ms, 500 ms, 1000 ms, 2500 ms, 5000 ms, 10000 ms).',
      ]),
    );
  });

  it('without proxy upstreams, a service is taken as the name of its upstream, and says so', async () => {
    const { code, out } = await run(['slo', 'export', '--prometheus', '--file', alertingFile]);
    expect(code).toBe(0);
    expect(out).toContain(
      '# No proxy upstreams are configured: a service selector is assumed to be the name of its upstream',
    );
    const groups = (parse(out) as { groups: { name: string; rules: { expr: string }[] }[] }).groups;
    expect(groups.map((g) => g.name)).toEqual(['tapwire-slo-checkout', 'tapwire-slo-search-fast']);
    expect(groups[0]?.rules[0]?.expr).toBe(ratio('upstream="shop"', '5m'));
  });

  it('asks for the format, and names the bad field of a broken alerting file', async () => {
    expect((await run(['slo', 'export', '-f', alertingFile])).err).toBe(
      'tapwire: choose the output format: --prometheus\n',
    );
    const broken = join(dir, 'broken.yaml');
    writeFileSync(
      broken,
      'route: { receiver: chat }\nreceivers: [{ name: chat, webhook: { url: "http://h.test/x" } }]\nslos: [{ name: x, sli: { kind: availability }, objective: 100 }]\n',
    );
    const r = await run(['slo', 'export', '--prometheus', '-f', broken]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('slos.0.objective');
  });
});
