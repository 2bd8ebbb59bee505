import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Emission, openEmission } from '@tapwire/emission';
import { createKafkaClient, ensureTopics, topicSpecs } from '@tapwire/kafka';
import { type FileLog, fileLogSource, openFileLog } from '@tapwire/log';
import { buildProxy, proxyConfigSchema, type TapwireProxy } from '@tapwire/proxy';
import {
  type AccessLogEvent,
  accessLogCodec,
  type SpanEvent,
  saturationCodec,
  spanCodec,
  TOPICS,
} from '@tapwire/schema';
import type { EventSink } from '@tapwire/stream';
import { createLogger } from '@tapwire/telemetry';
import type { Admin, Kafka } from 'kafkajs';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, testKafkaConfig, uniqueName } from '../support/infra.js';
import { type RawMessage, readTopics } from '../support/kafka-read.js';
import { freePort, startUpstream, type TestUpstream } from '../support/upstream.js';

const kafka: Kafka = createKafkaClient(testKafkaConfig(), silentLogger, 'proxy-test');
let admin: Admin;
let up: TestUpstream;
const topicsToDelete: string[] = [];
const logsToClose: FileLog[] = [];
const logger = createLogger({ name: 'proxy-it', level: 'silent' });

interface Started {
  proxy: TapwireProxy;
  sink: EventSink;
  emission?: Emission;
  url: string;
  adminUrl: string;
  prefix: string;
  stop(): Promise<void>;
  /** read returns what the sink wrote to the topics, once `done` says enough arrived. */
  read(topics: string[], done: (m: RawMessage[]) => boolean): Promise<RawMessage[]>;
}

async function startProxyOnKafka(
  proxyConfig: Record<string, unknown>,
  emitOver: Record<string, unknown> = {},
): Promise<Started> {
  const prefix = `${uniqueName('p')}.`;
  const specs = topicSpecs(
    { partitions: 3, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
    prefix,
  );
  topicsToDelete.push(...specs.map((s) => s.topic));
  await ensureTopics(kafka, specs);
  const config = proxyConfigSchema.parse({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    ...proxyConfig,
    emit: {
      logDir: mkdtempSync(join(tmpdir(), 'tapwire-proxy-local-')),
      lingerMs: 20,
      ...emitOver,
      ...(proxyConfig.emit as object | undefined),
    },
  });
  // The write-first path `tapwire proxy` runs: a local log, shipped to Kafka in batched records.
  const emission = await openEmission(
    { emit: config.emit, kafka: testKafkaConfig(), section: 'proxy' },
    logger,
    prefix,
  );
  const proxy = buildProxy({ sink: emission.sink, logger, emission: emission.stats }, config);
  const { proxyUrl, adminUrl } = await proxy.start();
  return {
    proxy,
    sink: emission.sink,
    emission,
    url: proxyUrl,
    adminUrl,
    prefix,
    async stop() {
      await proxy.close();
      await emission.close(5000);
    },
    read: (topics, done) => readTopics(kafka, topics, done),
  };
}

/** startProxyOnEmbeddedLog runs the proxy with the sink `tapwire start` uses on the embedded log. */
async function startProxyOnEmbeddedLog(proxyConfig: Record<string, unknown>): Promise<Started> {
  const log = await openFileLog({ dir: mkdtempSync(join(tmpdir(), 'tapwire-proxy-log-')) });
  logsToClose.push(log);
  const config = proxyConfigSchema.parse({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    ...proxyConfig,
  });
  const emission = await openEmission(
    { emit: config.emit, kafka: testKafkaConfig(), section: 'proxy' },
    logger,
    '',
    fileLogSource(log, silentLogger),
  );
  const proxy = buildProxy({ sink: emission.sink, logger, emission: emission.stats }, config);
  const { proxyUrl, adminUrl } = await proxy.start();
  return {
    proxy,
    sink: emission.sink,
    emission,
    url: proxyUrl,
    adminUrl,
    prefix: '',
    async stop() {
      await proxy.close();
      await emission.close(5000);
    },
    async read(topics, done) {
      const messages: RawMessage[] = [];
      for (const topic of topics)
        for (const r of await log.read(topic, 0n, 64 * 1024 * 1024))
          messages.push({
            topic,
            key: r.key?.toString() ?? '',
            value: r.value,
            partition: 0,
            offset: String(r.offset),
          });
      // The proxy has stopped and its sink flushed: everything it wrote is there.
      if (!done(messages)) throw new Error(`only ${messages.length} records on ${topics.join(', ')}`);
      return messages;
    },
  };
}

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
  up = await startUpstream();
});
afterAll(async () => {
  for (const l of logsToClose) await l.close();
  await up.close();
  await admin.deleteTopics({ topics: topicsToDelete }).catch(() => {});
  await admin.disconnect();
});

describe('proxy → real Kafka', () => {
  it.each([
    { sink: 'Kafka', start: startProxyOnKafka },
    { sink: 'the embedded log', start: startProxyOnEmbeddedLog },
  ])(
    'puts the right route, status, error kind, timings, bytes and trace ids on $sink, and no secret',
    async ({ start }) => {
      const refused = await freePort();
      const p = await start({
        emit: { saturationIntervalMs: 200 },
        upstreams: [
          {
            name: 'users',
            url: up.url,
            match: { pathPrefix: '/users' },
            routes: ['/users/:id'],
            // Normalized routes are recorded from their first request here (default: the third).
            routePromoteHits: 1,
            timeoutMs: 300,
          },
          { name: 'down', url: `http://127.0.0.1:${refused}`, match: { pathPrefix: '/down' } },
        ],
      });
      const cases: {
        path: string;
        headers?: Record<string, string>;
        status: number;
        kind: AccessLogEvent['error_kind'];
        abort?: boolean;
      }[] = [
        {
          path: '/users/1?api_key=CANARY_Q1',
          status: 200,
          kind: 'none',
          headers: { authorization: 'Bearer CANARY_H1', cookie: 'a=CANARY_C1' },
        },
        { path: '/users/2/status/404?bytes=7', status: 404, kind: 'none' },
        { path: '/users/3/status/500?bytes=2', status: 500, kind: 'none' },
        { path: '/users/4/slow/2000', status: 504, kind: 'upstream_timeout' },
        { path: '/down/5', status: 502, kind: 'upstream_refused' },
        { path: '/users/6/slow/3000', status: 499, kind: 'client_aborted', abort: true },
        {
          path: '/users/7',
          status: 200,
          kind: 'none',
          headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
        },
      ];
      const traceIds: (string | undefined)[] = [];
      for (const c of cases) {
        if (c.abort) {
          const ctl = new AbortController();
          const r = fetch(`${p.url}${c.path}`, { signal: ctl.signal }).catch(() => undefined);
          setTimeout(() => ctl.abort(), 150);
          await r;
          traceIds.push(undefined);
        } else {
          const res = await fetch(`${p.url}${c.path}`, { headers: c.headers ?? {} });
          expect(res.status, c.path).toBe(c.status);
          await res.arrayBuffer();
          traceIds.push(res.headers.get('traceparent')?.split('-')[1]);
        }
      }
      expect(traceIds[6]).toBe('0af7651916cd43dd8448eb211c80319c');
      await new Promise((r) => setTimeout(r, 200));
      await p.stop();

      // Every request has an access log, a SERVER span and a CLIENT span (refused, timed out and
      // aborted upstream calls included): wait for all of each, not for a total.
      const messages = await p.read(
        [p.prefix + TOPICS.accessLogs, p.prefix + TOPICS.spans],
        (m) =>
          m.filter((x) => x.topic.endsWith(TOPICS.accessLogs)).length >= cases.length &&
          m.filter((x) => x.topic.endsWith(TOPICS.spans)).length >= 2 * cases.length,
      );
      const raw = messages.map((m) => m.value.toString()).join('\n');
      for (const canary of ['CANARY_Q1', 'CANARY_H1', 'CANARY_C1']) expect(raw).not.toContain(canary);

      const logs = messages
        .filter((m) => m.topic.endsWith(TOPICS.accessLogs))
        .map((m) => {
          const d = accessLogCodec.decode(m.value);
          if (!d.ok) throw new Error(d.reason);
          // Batched records are keyed by their source (the local log); single events by trace id.
          expect(m.key).toBe(m.source ?? d.event.trace_id);
          return d.event;
        });
      const spans = messages
        .filter((m) => m.topic.endsWith(TOPICS.spans))
        .map((m) => {
          const d = spanCodec.decode(m.value);
          if (!d.ok) throw new Error(d.reason);
          return d.event;
        });
      expect(logs).toHaveLength(cases.length);
      expect(spans).toHaveLength(2 * cases.length);
      for (const [i, c] of cases.entries()) {
        const pathOnly = c.path.split('?')[0]!;
        const log = logs.find((l) => l.path === pathOnly);
        expect(log, c.path).toMatchObject({ status: c.status, error_kind: c.kind });
        if (traceIds[i]) expect(log?.trace_id).toBe(traceIds[i]);
        const server = spans.find((s) => s.kind === 'SERVER' && s.trace_id === log?.trace_id) as SpanEvent;
        const client = spans.find((s) => s.kind === 'CLIENT' && s.trace_id === log?.trace_id) as SpanEvent;
        expect(server.span_id).toBe(log?.span_id);
        expect(client.parent_span_id).toBe(server.span_id);
        expect(server.duration).toBeGreaterThanOrEqual(client.duration);
        expect(log!.duration_ms).toBeGreaterThanOrEqual(log!.upstream_ms);
      }
      expect(logs.find((l) => l.path === '/users/1')).toMatchObject({
        route: '/users/:id',
        query: 'api_key=[REDACTED]',
      });
      expect(logs.find((l) => l.path === '/users/2/status/404')).toMatchObject({
        route: '/users/:id/status/:id',
        bytes_out: 7,
      });
      expect(logs.find((l) => l.path === '/users/4/slow/2000')!.upstream_ms).toBeGreaterThanOrEqual(290);
      const saturation = await p.read([p.prefix + TOPICS.saturation], (m) => m.length >= 1);
      const sample = saturationCodec.decode(saturation[0]!.value);
      expect(sample.ok && sample.event.upstreams.map((u) => u.upstream)).toEqual(['users', 'down']);
      const continued = spans.find(
        (s) => s.kind === 'SERVER' && s.trace_id === '0af7651916cd43dd8448eb211c80319c',
      );
      expect(continued?.parent_span_id).toBe('b7ad6b7169203331');
    },
  );

  it('records raw-socket edge cases on Kafka: an Expect: 100-continue upload as the upstream’s answer, refused requests as bad_request', async () => {
    const p = await startProxyOnKafka({
      upstreams: [{ name: 'files', url: up.url, match: { pathPrefix: '/' } }],
    });
    const port = Number(new URL(p.url).port);
    // Each payload goes on its own connection and asks for it to be closed (on main too, so a
    // forwarded request fails this test instead of hanging it); the reply is all that was read.
    const send = (head: string, body?: Buffer) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => socket.write(head));
        let data = '';
        socket.on('data', (c: Buffer) => {
          data += c.toString('latin1');
          if (body && data === 'HTTP/1.1 100 Continue\r\n\r\n') socket.write(body);
        });
        socket.on('close', () => resolve(data));
        socket.on('error', reject);
      });
    const upload = Buffer.alloc(2 * 1024 * 1024, 'u');
    const replies = [
      await send(
        `POST /upload HTTP/1.1\r\nHost: files\r\nContent-Length: ${upload.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
        upload,
      ),
      await send('GET /two-hosts HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n'),
      await send('GET  /spaces HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'),
      await send('CONNECT files:443 HTTP/1.1\r\nHost: files:443\r\n\r\n'),
    ];
    expect(replies.map((r) => r.replace('HTTP/1.1 100 Continue\r\n\r\n', '').slice(0, 12))).toEqual([
      'HTTP/1.1 200',
      'HTTP/1.1 400',
      'HTTP/1.1 400',
      'HTTP/1.1 405',
    ]);
    expect(replies[0]).toContain(`"bodyBytes":${upload.length}`);
    await p.stop();
    const messages = await p.read([p.prefix + TOPICS.accessLogs], (m) => m.length >= 4);
    const logs = messages.map((m) => {
      const d = accessLogCodec.decode(m.value);
      if (!d.ok) throw new Error(d.reason);
      return d.event;
    });
    // Three partitions: order by arrival (start time) rather than by read order.
    logs.sort((a, b) => a.ts - b.ts);
    expect(logs.map((l) => [l.status, l.error_kind, l.route, l.bytes_in])).toEqual([
      [200, 'none', '/upload', upload.length],
      [400, 'bad_request', '__invalid__', 0],
      [400, 'bad_request', '__invalid__', 0],
      [405, 'bad_request', '__invalid__', 0],
    ]);
  });

  it('after 10,000 one-off paths a new endpoint with steady traffic gets its own route, and no more than maxRoutes values are recorded', async () => {
    const p = await startProxyOnKafka({
      sampling: { spanRatio: 0 },
      upstreams: [{ name: 'u', url: up.url, maxRoutes: 50, routes: ['/users/:id'] }],
    });
    const client = new Pool(p.url, { connections: 16 });
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < 10_000) {
          const i = next++;
          const r = await client.request({ path: `/catalog/item-${i}-name/details`, method: 'GET' });
          await r.body.dump();
        }
      }),
    );
    // Then a real endpoint with steady traffic, and a path a configured template covers.
    for (let i = 0; i < 5; i++) {
      const r = await client.request({ path: '/catalog/summary', method: 'GET' });
      await r.body.dump();
    }
    await (await client.request({ path: '/users/42', method: 'GET' })).body.dump();
    await client.close();
    await p.stop();
    const total = 10_006;
    const messages = await readTopics(kafka, [p.prefix + TOPICS.accessLogs], (m) => m.length >= total);
    const events = messages.map((m) => JSON.parse(m.value.toString()) as AccessLogEvent);
    // One access log per request, written once even when a send was retried (idempotent producer).
    expect(messages.length).toBe(total);
    expect(new Set(events.map((e) => e.id)).size).toBe(total);
    const flood = events.filter((e) => e.path.startsWith('/catalog/item-'));
    expect(flood.length).toBe(10_000);
    // maxRoutes 50 leaves 48 slots beside the template and __other__; routeFreeShare 0.5 gives the
    // first 24 paths their own route at first sight, and every later one-off path is __other__.
    const floodRoutes = flood.filter((e) => e.route !== '__other__');
    expect(floodRoutes.length).toBe(24);
    for (const e of floodRoutes) expect(e.route).toBe(e.path);
    const steady = events
      .filter((e) => e.path === '/catalog/summary')
      .sort((a, b) => a.ts - b.ts)
      .map((e) => e.route);
    // Three requests within routePromoteWindowMs (default 10 min) earn a slot.
    expect(steady).toEqual([
      '__other__',
      '__other__',
      '/catalog/summary',
      '/catalog/summary',
      '/catalog/summary',
    ]);
    expect(events.find((e) => e.path === '/users/42')?.route).toBe('/users/:id');
    expect(new Set(events.map((e) => e.route))).toEqual(
      new Set(['__other__', '/catalog/summary', '/users/:id', ...floodRoutes.map((e) => e.route)]),
    );
    expect(new Set(events.map((e) => e.route)).size).toBe(27);
  }, 120_000);
});
