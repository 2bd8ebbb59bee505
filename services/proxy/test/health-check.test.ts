import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type Balancer,
  createBalancer,
  createHealthChecker,
  httpTargetCheck,
  recordCheck,
  upstreamSchema,
} from '@tapwire/proxy';
import { createLogger } from '@tapwire/telemetry';
import { afterEach, describe, expect, it } from 'vitest';
import { startProxy } from './helpers.js';

const built: Balancer[] = [];
function balancer(targets: string[]): Balancer {
  const b = createBalancer(upstreamSchema.parse({ name: 'api', targets, healthCheck: {} }));
  built.push(b);
  return b;
}
afterEach(async () => {
  for (const b of built.splice(0)) await Promise.all(b.targets.map((t) => t.pool.close()));
});

describe('recordCheck', () => {
  const thresholds = { healthyThreshold: 2, unhealthyThreshold: 3 };

  it('takes a target out after unhealthyThreshold failures in a row and back after healthyThreshold passes', () => {
    const t = balancer(['http://10.0.0.1:1', 'http://10.0.0.2:1']).targets[0]!;
    expect(recordCheck(t, false, thresholds)).toBeUndefined();
    expect(recordCheck(t, false, thresholds)).toBeUndefined();
    expect(recordCheck(t, true, thresholds)).toBeUndefined(); // a pass resets the failures
    expect(recordCheck(t, false, thresholds)).toBeUndefined();
    expect(recordCheck(t, false, thresholds)).toBeUndefined();
    expect(recordCheck(t, false, thresholds)).toBe('unhealthy');
    expect(t.checkedHealthy).toBe(false);
    expect(recordCheck(t, true, thresholds)).toBeUndefined();
    expect(recordCheck(t, false, thresholds)).toBeUndefined(); // a failure resets the passes
    expect(recordCheck(t, true, thresholds)).toBeUndefined();
    expect(recordCheck(t, true, thresholds)).toBe('healthy');
    expect(t.checkedHealthy).toBe(true);
  });
});

describe('createHealthChecker', () => {
  it('runs the check on every target each round and logs each transition with upstream and target', async () => {
    const b = balancer(['http://10.0.0.1:8080', 'http://10.0.0.2:8080']);
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      name: 'hc',
      level: 'info',
      destination: { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) },
    });
    const down = new Set(['10.0.0.2:8080']);
    const checked: string[] = [];
    const checker = createHealthChecker(
      {
        upstream: 'api',
        targets: b.targets,
        logger,
        check: async (t) => {
          checked.push(t.address);
          return !down.has(t.address);
        },
      },
      upstreamSchema.parse({
        name: 'api',
        url: 'http://x',
        healthCheck: { unhealthyThreshold: 2, healthyThreshold: 1 },
      }).healthCheck!,
    );
    await checker.runOnce();
    expect(checked).toEqual(['10.0.0.1:8080', '10.0.0.2:8080']);
    expect(b.state(b.targets[1]!)).toBe('healthy');
    await checker.runOnce();
    expect(b.state(b.targets[1]!)).toBe('unhealthy');
    expect(b.pick()?.address).toBe('10.0.0.1:8080');
    expect(b.pick()?.address).toBe('10.0.0.1:8080');
    down.clear();
    await checker.runOnce();
    expect(b.state(b.targets[1]!)).toBe('healthy');
    await checker.close();
    expect(lines.map((l) => [l.msg, l.upstream, l.target, l.state])).toEqual([
      ['target failed its health checks', 'api', '10.0.0.2:8080', 'unhealthy'],
      ['target passed its health checks', 'api', '10.0.0.2:8080', 'healthy'],
    ]);
  });
});

describe('httpTargetCheck', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((r) => server?.close(r) ?? r(undefined));
  });

  it('passes on 2xx and 3xx, fails on 5xx, a timeout or a refused connection', async () => {
    let status = 200;
    let delayMs = 0;
    const paths: string[] = [];
    server = createServer((req, res) => {
      paths.push(req.url ?? '');
      setTimeout(() => {
        res.writeHead(status);
        res.end('ok');
      }, delayMs);
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const b = balancer([`http://127.0.0.1:${port}/base`, 'http://127.0.0.1:1']);
    const http = httpTargetCheck(
      upstreamSchema.parse({ name: 'a', url: 'http://x', healthCheck: { path: '/healthz', timeoutMs: 200 } })
        .healthCheck!,
    );
    try {
      const [live, dead] = b.targets;
      expect(await http.check(live!)).toBe(true);
      status = 302;
      expect(await http.check(live!)).toBe(true);
      status = 500;
      expect(await http.check(live!)).toBe(false);
      status = 200;
      delayMs = 400;
      expect(await http.check(live!)).toBe(false);
      expect(await http.check(dead!)).toBe(false);
      // The path is on the target's origin, not under its base path.
      expect(paths.every((p) => p === '/healthz')).toBe(true);
    } finally {
      await http.close();
    }
  });
});

describe('health checks in a running proxy', () => {
  it('check each target from start, not through the request pool, and stop when the proxy closes', async () => {
    const health: string[] = [];
    const servers = await Promise.all(
      [0, 1].map(async () => {
        const server = createServer((req, res) => {
          if (req.url === '/ready') health.push(`${req.socket.localPort}`);
          res.end('ok');
        });
        await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
        return server;
      }),
    );
    const ports = servers.map((s) => (s.address() as AddressInfo).port);
    const { proxy } = await startProxy({
      upstreams: [
        {
          name: 'api',
          targets: ports.map((p) => `http://127.0.0.1:${p}`),
          maxConnections: 1,
          healthCheck: { path: '/ready', intervalMs: 100 },
        },
      ],
    });
    try {
      const until = Date.now() + 5000;
      while (health.length < 6 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(new Set(health)).toEqual(new Set(ports.map(String)));
      // The request pools opened no connection for the checks.
      expect(proxy.table.all[0]!.balancer.targets.map((t) => t.pool.stats.connected)).toEqual([0, 0]);
    } finally {
      await proxy.close();
    }
    const after = health.length;
    await new Promise((r) => setTimeout(r, 350));
    expect(health.length).toBe(after);
    for (const s of servers) await new Promise((r) => s.close(r));
  });
});
