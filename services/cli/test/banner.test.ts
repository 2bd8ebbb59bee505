import { upstreamSchema } from '@tapwire/proxy/config';
import { describe, expect, it } from 'vitest';
import { renderBanner, windowStart } from '../src/banner.js';

const facts = {
  deployment: 'the embedded log and DuckDB',
  proxyUrl: 'http://127.0.0.1:8080',
  upstreams: [
    upstreamSchema.parse({ name: 'localhost-3000', url: 'http://localhost:3000' }),
    upstreamSchema.parse({
      name: 'demo-shop',
      url: 'http://127.0.0.1:40001',
      match: { host: 'demo-shop.localhost' },
    }),
  ],
  demoRate: 20,
  apiUrl: 'http://127.0.0.1:8081',
  token: { value: 'tw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', file: '/home/me/app/.tapwire/data/api-token' },
  tokenLabel: 'demo token' as const,
  data: ['/home/me/app/.tapwire/data/log (event log)', '/home/me/app/.tapwire/data/tapwire.duckdb (DuckDB)'],
  since: new Date('2026-12-06T07:01:02.987Z'),
  color: false,
};

describe('the banner of tapwire start', () => {
  it('says where to send traffic, where to ask, with which token, where data lives, and one curl', () => {
    expect(renderBanner(facts)).toBe(
      [
        'tapwire running on the embedded log and DuckDB (Ctrl-C or SIGTERM stops it)',
        '  proxy:      http://127.0.0.1:8080',
        '              localhost-3000 → http://localhost:3000 (every request)',
        '              demo-shop → http://127.0.0.1:40001 (Host demo-shop.localhost, 20 requests/s of demo traffic)',
        '  api:        http://127.0.0.1:8081 (docs http://127.0.0.1:8081/docs)',
        '  demo token: tw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA (kept in /home/me/app/.tapwire/data/api-token)',
        '  data:       /home/me/app/.tapwire/data/log (event log), /home/me/app/.tapwire/data/tapwire.duckdb (DuckDB)',
        "  try:        curl -H 'Authorization: Bearer tw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' 'http://127.0.0.1:8081/v1/overview?from=2026-12-06T07:01:02Z&group_by=route&source=raw'",
        '',
      ].join('\n'),
    );
  });

  it("the curl's window starts when traffic could first arrive, to the second, over raw rows (rate_rps is the rate since then)", () => {
    expect(windowStart(new Date('2026-12-06T07:01:02.999Z'))).toBe('2026-12-06T07:01:02Z');
    expect(renderBanner(facts)).toContain('from=2026-12-06T07:01:02Z&group_by=route&source=raw');
  });

  it('with configured tokens only, names them instead of printing one; no upstream says how to add one', () => {
    const { token: _, ...rest } = facts;
    const text = renderBanner({ ...rest, tokenLabel: 'token', upstreams: [] });
    expect(text).toContain('  token:      one of api.tokens in your configuration\n');
    expect(text).toContain('curl -H "Authorization: Bearer $TAPWIRE_TOKEN" ');
    expect(text).toContain('no upstream: give --upstream http://host:port');
  });

  it('says where apps send OTLP traces and which header they send', () => {
    const text = renderBanner({
      ...facts,
      otlp: {
        grpc: '127.0.0.1:4317',
        http: 'http://127.0.0.1:4318/v1/traces',
        token: 'tw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      },
    });
    expect(text).toContain(
      "\n  otlp:       grpc 127.0.0.1:4317 · http http://127.0.0.1:4318/v1/traces (send 'Authorization: Bearer tw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'; spans go to tenant default)\n",
    );
    const configured = renderBanner({
      ...facts,
      otlp: { grpc: '127.0.0.1:4317', http: 'http://127.0.0.1:4318/v1/traces' },
    });
    expect(configured).toContain('(send "Authorization: Bearer <token>" with one of otlp.tokens)');
    expect(renderBanner(facts)).not.toContain('otlp:');
  });

  it("with the demo's SLO, one last line says what it does", () => {
    const text = renderBanner({ ...facts, slo: 'demo-order-lookups pages in each demo outage' });
    expect(text.endsWith('\n  slo:        demo-order-lookups pages in each demo outage\n')).toBe(true);
    expect(renderBanner(facts)).not.toContain('slo:');
  });

  it('on a terminal, labels are bold; off one, no escape codes at all', () => {
    expect(renderBanner({ ...facts, color: true })).toContain('\u001b[1mproxy:');
    expect(renderBanner(facts)).not.toContain('\u001b[');
  });
});
