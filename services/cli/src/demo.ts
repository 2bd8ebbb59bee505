import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

/**
 * The demo of `tapwire start --demo`: a small shop API with realistic latency (lognormal), errors
 * and a slow dependency, a traffic generator that calls it through the proxy, and an endpoint
 * that prints the alerts the demo rules send.
 */

/** DEMO_ROUTES are the route templates the demo API serves. */
export const DEMO_ROUTES = [
  '/api/users/:id',
  '/api/orders',
  '/api/orders/:id',
  '/api/search',
  '/api/health',
] as const;

function lognormal(medianMs: number, sigma: number): number {
  const u = Math.max(Math.random(), 1e-12);
  const v = Math.random();
  return medianMs * Math.exp(sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
}

/**
 * DEMO_INCIDENT is the demo's recurring outage: order lookups (GET /api/orders/:id, otherwise
 * always 200) fail with 503 for half the requests during `lastsMs`, `firstAfterMs` after the
 * demo starts and every `everyMs` after that — what makes the demo SLO's page fire and resolve.
 */
export const DEMO_INCIDENT = { firstAfterMs: 60_000, everyMs: 300_000, lastsMs: 90_000, failureShare: 0.5 };

/** DEMO_SLO is the name of the demo's SLO (see demoAlertingYaml). */
export const DEMO_SLO = 'demo-order-lookups';

/** inDemoIncident says whether the demo's outage is on `elapsedMs` after the demo started. */
export function inDemoIncident(elapsedMs: number): boolean {
  const t = elapsedMs - DEMO_INCIDENT.firstAfterMs;
  return t >= 0 && t % DEMO_INCIDENT.everyMs < DEMO_INCIDENT.lastsMs;
}

/** DemoApi is the running demo upstream. */
export interface DemoApi {
  readonly url: string;
  /** Alerts the demo's webhook receiver got (also printed). */
  readonly alerts: unknown[];
  close(): Promise<void>;
}

function drain(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(''));
  });
}

/** startDemoApi listens on a free local port; `print` receives one line per alert notification. */
export async function startDemoApi(
  print: (line: string) => void,
  listen: { host: string; port: number } = { host: '127.0.0.1', port: 0 },
): Promise<DemoApi> {
  const alerts: unknown[] = [];
  const startedMs = Date.now();
  // Search calls a "dependency" that is slow and, one time in twenty, times out.
  const dependency = () => lognormal(180, 0.6) + (Math.random() < 0.05 ? 1500 : 0);
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://demo');
      const body = await drain(req);
      const reply = (status: number, payload: unknown, delayMs: number) =>
        setTimeout(
          () => {
            res.writeHead(status, { 'content-type': 'application/json' });
            res.end(JSON.stringify(payload));
          },
          Math.max(0, delayMs),
        );
      if (url.pathname === '/demo/alerts' && req.method === 'POST') {
        try {
          const msg = JSON.parse(body) as {
            status?: string;
            alerts?: { labels?: Record<string, string>; annotations?: Record<string, string> }[];
          };
          alerts.push(msg);
          for (const a of msg.alerts ?? [])
            print(`alert ${msg.status ?? ''}: ${a.labels?.alertname ?? ''} ${a.annotations?.summary ?? ''}`);
        } catch {
          // Not a JSON alert: ignore it.
        }
        return reply(200, { ok: true }, 0);
      }
      if (/^\/api\/users\/\d+$/.test(url.pathname)) {
        const missing = Math.random() < 0.02;
        return reply(
          missing ? 404 : 200,
          missing ? { error: 'no such user' } : { id: url.pathname.split('/').pop() },
          lognormal(25, 0.5),
        );
      }
      if (url.pathname === '/api/orders' && req.method === 'POST') {
        const failed = Math.random() < 0.03;
        return reply(
          failed ? 500 : 201,
          failed ? { error: 'payment service failed' } : { id: Math.floor(Math.random() * 1e6) },
          lognormal(120, 0.4),
        );
      }
      if (/^\/api\/orders\/\d+$/.test(url.pathname)) {
        const down = inDemoIncident(Date.now() - startedMs) && Math.random() < DEMO_INCIDENT.failureShare;
        return down
          ? reply(503, { error: 'orders database unavailable' }, lognormal(15, 0.3))
          : reply(200, { status: 'shipped' }, lognormal(40, 0.4));
      }
      if (url.pathname === '/api/search') {
        const t = dependency();
        return reply(t > 1000 ? 504 : 200, t > 1000 ? { error: 'search backend timed out' } : { hits: 3 }, t);
      }
      if (url.pathname === '/api/health') return reply(200, { ok: true }, 1);
      return reply(404, { error: 'not found' }, 1);
    })();
  });
  await new Promise<void>((resolve) => server.listen(listen.port, listen.host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host}:${port}`,
    alerts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** TrafficGenerator sends a steady mix of requests until stopped. */
export interface TrafficGenerator {
  readonly sent: () => number;
  stop(): Promise<void>;
}

/**
 * startTraffic calls the proxy at about `ratePerSecond`: user reads, orders, searches, health
 * checks; with `host`, as that Host (how the proxy tells the demo from the upstreams beside it).
 */
export function startTraffic(proxyUrl: string, ratePerSecond: number, host?: string): TrafficGenerator {
  const pool = new Pool(proxyUrl, { connections: 16 });
  let sent = 0;
  let running = true;
  const mix: (() => { path: string; method: 'GET' | 'POST' })[] = [
    () => ({ path: `/api/users/${1 + Math.floor(Math.random() * 500)}`, method: 'GET' }),
    () => ({ path: `/api/users/${1 + Math.floor(Math.random() * 500)}`, method: 'GET' }),
    () => ({ path: '/api/orders', method: 'POST' }),
    () => ({ path: `/api/orders/${1 + Math.floor(Math.random() * 9000)}`, method: 'GET' }),
    () => ({ path: `/api/search?q=item${Math.floor(Math.random() * 50)}`, method: 'GET' }),
    () => ({ path: '/api/health', method: 'GET' }),
  ];
  const timer = setInterval(() => {
    if (!running) return;
    for (let i = 0; i < Math.max(1, Math.round(ratePerSecond / 10)); i++) {
      const pick = mix[Math.floor(Math.random() * mix.length)];
      if (!pick) continue;
      const { path, method } = pick();
      sent++;
      void pool
        .request({
          path,
          method,
          headers: {
            ...(host ? { host } : {}),
            ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
          },
          ...(method === 'POST' ? { body: '{"items":[1,2]}' } : {}),
        })
        .then((r) => r.body.dump())
        .catch(() => undefined);
    }
  }, 100);
  return {
    sent: () => sent,
    async stop() {
      running = false;
      clearInterval(timer);
      await pool.close();
    },
  };
}

/**
 * demoAlertingYaml is the demo's alerting file, sent to the demo API: route p99 and 5xx share, and
 * one SLO — order lookups 99 % available over a day — whose page (5m and 1m windows both burning
 * above 10×, instead of the workbook's 1h and 5m, so it happens within a demo session) fires in
 * each outage of DEMO_INCIDENT and resolves in the minute after it. A full outage minute burns
 * 50× over 1m and, with the half minute beside it, 15× over 5m; no ticket (the outages alone
 * spend more than a day's budget).
 */
export function demoAlertingYaml(receiverUrl: string): string {
  return `slo_defaults:
  interval: 15s
slos:
  - name: ${DEMO_SLO}
    description: "Order lookups succeed (the demo's orders database fails half of them for 90 s every 5 minutes)"
    selector: { service: demo-shop, route: "/api/orders/:id", method: GET }
    sli: { kind: availability }
    objective: 99
    window: 1d
    burn_rate_alerts:
      page: { windows: [{ long: 5m, short: 1m, factor: 10 }] }
      ticket: { windows: [] }
groups:
  - name: demo
    interval: 15s
    rules:
      - id: demo-p99
        alert: RouteP99High
        kind: latency_quantile
        quantile: 0.99
        group_by: [service, route]
        window: 1m
        threshold: 800
        for: 30s
        severity: warning
        annotations:
          summary: "p99 {{ .value }} ms on {{ .labels.route }} (threshold {{ .threshold }} ms)"
      - id: demo-errors
        alert: ErrorRateHigh
        kind: error_rate
        group_by: [service, route]
        window: 1m
        threshold: 0.04
        for: 30s
        severity: critical
        annotations:
          summary: "{{ .value }} of requests fail on {{ .labels.route }}"
route:
  receiver: demo
  group_by: [alertname]
  group_wait: 10s
  group_interval: 1m
receivers:
  - name: demo
    webhook: { url: "${receiverUrl}" }
`;
}
