import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Emission, openEmission } from '@tapwire/emission';
import { createKafkaClient, ensureTopics, topicSpecs } from '@tapwire/kafka';
import { buildProxy, proxyConfigSchema, type TapwireProxy } from '@tapwire/proxy';
import { type AccessLogEvent, accessLogCodec, type SpanEvent, spanCodec, TOPICS } from '@tapwire/schema';
import { createLogger } from '@tapwire/telemetry';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, testKafkaConfig, uniqueName } from '../support/infra.js';
import { readTopics } from '../support/kafka-read.js';
import { freePort } from '../support/upstream.js';

const kafka: Kafka = createKafkaClient(testKafkaConfig(), silentLogger, 'proxy-balancing-test');
const logger = createLogger({ name: 'proxy-balancing-it', level: 'silent' });
const prefix = `${uniqueName('lb')}.`;
let admin: Admin;

/** Backend is a real HTTP server standing for one target: it answers its name, or as told. */
interface Backend {
  readonly name: string;
  readonly url: string;
  readonly address: string;
  /** Host headers of the proxied requests it received. */
  readonly hosts: string[];
  /** Status of every answer but /health's. */
  status: number;
  /** Status of GET /health. */
  healthStatus: number;
  delayMs: number;
  close(): Promise<void>;
}

const backends: Backend[] = [];
async function startBackend(name: string): Promise<Backend> {
  const sockets = new Set<Socket>();
  const b = {
    name,
    hosts: [] as string[],
    status: 200,
    healthStatus: 200,
    delayMs: 0,
  } as Backend & { server: Server };
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/health') {
        res.writeHead(b.healthStatus);
        res.end();
        return;
      }
      b.hosts.push(req.headers.host ?? '');
      const t = setTimeout(() => {
        res.writeHead(b.status, { 'content-type': 'text/plain' });
        res.end(name);
      }, b.delayMs);
      res.on('close', () => clearTimeout(t));
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  Object.assign(b, {
    url: `http://127.0.0.1:${port}`,
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  });
  backends.push(b);
  return b;
}

interface Started {
  proxy: TapwireProxy;
  emission: Emission;
  url: string;
  adminUrl: string;
  stop(): Promise<void>;
}

async function startProxy(upstream: Record<string, unknown>): Promise<Started> {
  const config = proxyConfigSchema.parse({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    shutdownGraceMs: 2000,
    upstreams: [upstream],
    emit: { logDir: mkdtempSync(join(tmpdir(), 'tapwire-lb-local-')), lingerMs: 20 },
  });
  const emission = await openEmission(
    { emit: config.emit, kafka: testKafkaConfig(), section: 'proxy' },
    logger,
    prefix,
  );
  const proxy = buildProxy({ sink: emission.sink, logger, emission: emission.stats }, config);
  const { proxyUrl, adminUrl } = await proxy.start();
  return {
    proxy,
    emission,
    url: proxyUrl,
    adminUrl,
    async stop() {
      await proxy.close();
      await emission.close(5000);
    },
  };
}

/** Sent is one request as the client saw it. */
interface Sent {
  traceId: string;
  status: number;
  body: string;
}

async function send(url: string, init: RequestInit = {}): Promise<Sent> {
  const traceId = randomBytes(16).toString('hex');
  const res = await fetch(url, {
    ...init,
    headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`, ...init.headers },
  });
  return { traceId, status: res.status, body: await res.text() };
}

async function sendAll(url: string, n: number): Promise<Sent[]> {
  const out: Sent[] = [];
  for (let i = 0; i < n; i++) out.push(await send(url));
  return out;
}

/** eventsOf reads the access logs of the given requests from Kafka, and `spans` CLIENT spans of them. */
async function eventsOf(sent: Sent[], spans = 0): Promise<{ logs: AccessLogEvent[]; clients: SpanEvent[] }> {
  const ids = new Set(sent.map((s) => s.traceId));
  const logs = new Map<string, AccessLogEvent>();
  const clients = new Map<string, SpanEvent>();
  await readTopics(kafka, [prefix + TOPICS.accessLogs, prefix + TOPICS.spans], (messages) => {
    for (const m of messages.splice(0)) {
      if (m.topic.endsWith(TOPICS.accessLogs)) {
        const d = accessLogCodec.decode(m.value);
        if (d.ok && ids.has(d.event.trace_id)) logs.set(d.event.trace_id, d.event);
      } else {
        const d = spanCodec.decode(m.value);
        if (d.ok && d.event.kind === 'CLIENT' && ids.has(d.event.trace_id))
          clients.set(d.event.trace_id, d.event);
      }
    }
    return logs.size === ids.size && clients.size >= spans;
  });
  return {
    logs: sent.map((s) => logs.get(s.traceId)!),
    clients: sent.map((s) => clients.get(s.traceId)).filter((c): c is SpanEvent => c !== undefined),
  };
}

function states(p: Started): [string, string][] {
  const samples = p.proxy.sampler.sampleNow();
  return samples.flatMap((s) => s.targets.map((t) => [t.target, t.state] as [string, string]));
}

async function until(what: string, ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function metric(p: Started, line: string): Promise<string | undefined> {
  const text = await (await fetch(`${p.adminUrl}/metrics`)).text();
  return text.split('\n').find((l) => l.startsWith(line));
}

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
  await ensureTopics(
    kafka,
    topicSpecs(
      { partitions: 3, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
      prefix,
    ),
  );
});
afterAll(async () => {
  for (const b of backends) await b.close();
  const specs = topicSpecs(
    { partitions: 3, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
    prefix,
  );
  await admin.deleteTopics({ topics: specs.map((s) => s.topic) }).catch(() => {});
  await admin.disconnect();
});

describe('proxy load balancing (real targets, events on Kafka)', () => {
  it('round-robin spreads requests over three targets in order; each is recorded with its target and a CLIENT span naming it', async () => {
    const [a, b, c] = await Promise.all([startBackend('a'), startBackend('b'), startBackend('c')]);
    const p = await startProxy({ name: 'rr', targets: [a!.url, `${b!.url}/`, c!.url] });
    const sent = await sendAll(`${p.url}/items/1`, 9);
    expect(sent.map((s) => `${s.status} ${s.body}`)).toEqual([
      '200 a',
      '200 b',
      '200 c',
      '200 a',
      '200 b',
      '200 c',
      '200 a',
      '200 b',
      '200 c',
    ]);
    // Each target got its own Host.
    expect([a!, b!, c!].map((t) => [...new Set(t.hosts)])).toEqual([
      [a!.address],
      [b!.address],
      [c!.address],
    ]);
    expect(states(p)).toEqual([
      [a!.address, 'healthy'],
      [b!.address, 'healthy'],
      [c!.address, 'healthy'],
    ]);
    await p.stop();
    const { logs, clients } = await eventsOf(sent, 9);
    const order = [a!, b!, c!, a!, b!, c!, a!, b!, c!];
    expect(logs.map((l) => [l.upstream, l.target, l.retries, l.error_kind])).toEqual(
      order.map((t) => ['rr', t.address, 0, 'none']),
    );
    expect(clients.map((s) => [s.attributes['server.port'], s.attributes['url.full']])).toEqual(
      order.map((t) => [t.url.split(':')[2], `${t.url}/items/1`]),
    );
  });

  it('least-requests sends around a slow target while it holds a request', async () => {
    const [slow, fast] = await Promise.all([startBackend('slow'), startBackend('fast')]);
    slow.delayMs = 600;
    const p = await startProxy({ name: 'lr', targets: [slow.url, fast.url], balancer: 'least-requests' });
    const held = send(`${p.url}/x`);
    await until('the slow target to hold a request', () => slow.hosts.length === 1);
    const meanwhile = await sendAll(`${p.url}/x`, 4);
    expect(meanwhile.map((s) => s.body)).toEqual(['fast', 'fast', 'fast', 'fast']);
    expect((await held).body).toBe('slow');
    // Nothing in flight: ties go round-robin again.
    slow.delayMs = 0;
    expect((await sendAll(`${p.url}/x`, 2)).map((s) => s.body).sort()).toEqual(['fast', 'slow']);
    await p.stop();
  });

  it('retries a GET refused by a dead target on another target (client sees 200, retries 1); a POST with a body is not retried', async () => {
    const live = await startBackend('live');
    const deadPort = await freePort();
    const dead = `127.0.0.1:${deadPort}`;
    const p = await startProxy({ name: 'retry', targets: [`http://${dead}`, live.url] });
    const get = await send(`${p.url}/orders`);
    const post = await send(`${p.url}/orders`, { method: 'POST', body: 'x' });
    const head = await send(`${p.url}/orders`, { method: 'HEAD' });
    expect([get.status, get.body]).toEqual([200, 'live']);
    expect(JSON.parse(post.body).error.code).toBe('TAPWIRE_PROXY_UPSTREAM_REFUSED');
    expect([post.status, head.status]).toEqual([502, 200]);
    expect(await metric(p, 'tapwire_proxy_retries_total{upstream="retry"}')).toBe(
      'tapwire_proxy_retries_total{upstream="retry"} 1',
    );
    await p.stop();
    const { logs, clients } = await eventsOf([get, post, head], 3);
    expect(logs.map((l) => [l.method, l.status, l.target, l.retries, l.error_kind])).toEqual([
      ['GET', 200, live.address, 1, 'none'],
      ['POST', 502, dead, 0, 'upstream_refused'],
      // The round-robin turn after the refused POST is the live target's.
      ['HEAD', 200, live.address, 0, 'none'],
    ]);
    // One CLIENT span covers both attempts and names the target that answered.
    expect(clients[0]!.attributes['server.port']).toBe(live.url.split(':')[2]);
  });

  it('ejects a target after consecutive 503s, and sends to it again once ejectMs passed', async () => {
    const [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
    a.status = 503;
    const p = await startProxy({
      name: 'eject',
      targets: [a.url, b.url],
      passive: { consecutiveFailures: 2, ejectMs: 1000 },
    });
    const first = await sendAll(`${p.url}/y`, 4);
    // a answered 503 twice in a row (its 503s pass through to the client): ejected.
    expect(first.map((s) => `${s.status} ${s.body}`)).toEqual(['503 a', '200 b', '503 a', '200 b']);
    expect(states(p)).toEqual([
      [a.address, 'ejected'],
      [b.address, 'healthy'],
    ]);
    const sample = p.proxy.sampler.sampleNow()[0]!;
    expect(sample.targets.find((t) => t.target === a.address)?.consecutive_failures).toBe(2);
    const during = await sendAll(`${p.url}/y`, 3);
    expect(during.map((s) => s.body)).toEqual(['b', 'b', 'b']);
    expect(await metric(p, `tapwire_proxy_target_healthy{upstream="eject",target="${a.address}"}`)).toMatch(
      / 0$/,
    );
    expect(
      await metric(p, `tapwire_proxy_target_ejections_total{upstream="eject",target="${a.address}"}`),
    ).toMatch(/ 1$/);
    a.status = 200;
    await until('the ejection to end', () => states(p)[0]![1] === 'healthy', 3000);
    const after = await sendAll(`${p.url}/y`, 4);
    expect(after.map((s) => s.body).sort()).toEqual(['a', 'a', 'b', 'b']);
    await p.stop();
    const { logs } = await eventsOf([...first, ...during]);
    expect(logs.map((l) => [l.status, l.target])).toEqual([
      [503, a.address],
      [200, b.address],
      [503, a.address],
      [200, b.address],
      [200, b.address],
      [200, b.address],
      [200, b.address],
    ]);
  });

  it('takes a target failing its health check out, brings it back when it recovers, and answers 503 no_healthy_target when none is left', async () => {
    const [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
    const p = await startProxy({
      name: 'hc',
      targets: [a.url, b.url],
      healthCheck: {
        path: '/health',
        intervalMs: 100,
        timeoutMs: 200,
        unhealthyThreshold: 2,
        healthyThreshold: 2,
      },
    });
    a.healthStatus = 500;
    await until('a to fail its checks', () => states(p)[0]![1] === 'unhealthy');
    expect(states(p)).toEqual([
      [a.address, 'unhealthy'],
      [b.address, 'healthy'],
    ]);
    const out = await sendAll(`${p.url}/z`, 3);
    expect(out.map((s) => s.body)).toEqual(['b', 'b', 'b']);

    b.healthStatus = 503;
    await until('b to fail its checks', () => states(p)[1]![1] === 'unhealthy');
    const none = await send(`${p.url}/z`);
    expect(none.status).toBe(503);
    expect(JSON.parse(none.body).error.code).toBe('TAPWIRE_PROXY_NO_HEALTHY_TARGET');

    a.healthStatus = 200;
    b.healthStatus = 200;
    await until('both to pass again', () => states(p).every(([, s]) => s === 'healthy'));
    const back = await sendAll(`${p.url}/z`, 4);
    expect(back.map((s) => s.body).sort()).toEqual(['a', 'a', 'b', 'b']);
    await p.stop();
    const { logs } = await eventsOf([...out, none]);
    expect(logs.map((l) => [l.status, l.error_kind, l.target, l.retries])).toEqual([
      [200, 'none', b.address, 0],
      [200, 'none', b.address, 0],
      [200, 'none', b.address, 0],
      [503, 'no_healthy_target', '', 0],
    ]);
  });

  it('a single url upstream records its host:port as the target and never retries', async () => {
    const only = await startBackend('only');
    const p = await startProxy({ name: 'single', url: only.url });
    const ok = await send(`${p.url}/one`);
    expect([ok.status, ok.body]).toEqual([200, 'only']);
    expect(states(p)).toEqual([[only.address, 'healthy']]);
    await only.close();
    // Once the pool saw its connection close, the next request must connect (and be refused).
    const pool = p.proxy.table.all[0]!.balancer.targets[0]!.pool;
    await until('the pool to drop its connection', () => pool.stats.connected === 0);
    const refused = await send(`${p.url}/one`);
    expect(refused.status).toBe(502);
    await p.stop();
    const { logs } = await eventsOf([ok, refused]);
    expect(logs.map((l) => [l.status, l.error_kind, l.target, l.retries])).toEqual([
      [200, 'none', only.address, 0],
      [502, 'upstream_refused', only.address, 0],
    ]);
  });
});
