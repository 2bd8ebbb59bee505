import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouseStore } from '@tapwire/analytics';
import { type ClickHouse, createClickHouse, identifier, migrate, raw, sql } from '@tapwire/clickhouse';
import { openEmission } from '@tapwire/emission';
import { buildIngest, clickhouseWarehouse, type Ingest, ingestConfigSchema } from '@tapwire/ingest';
import {
  createKafkaClient,
  createKafkaEventSink,
  ensureTopics,
  kafkaSource,
  topicSpecs,
} from '@tapwire/kafka';
import { buildProxy, proxyConfigSchema } from '@tapwire/proxy';
import { createLogger } from '@tapwire/telemetry';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  deletePrefixedTopics,
  silentLogger,
  testClickHouseConfig,
  testKafkaConfig,
  uniqueName,
} from '../support/infra.js';
import { freePort } from '../support/upstream.js';

/**
 * Issue #23 acceptance: for a mixed run through the real write-first path, Kafka and ClickHouse,
 * every policy decision on the access log matches what the client saw, request by request —
 * auth (missing, invalid, forbidden, allowed), rate limits (the RateLimit header's remaining and
 * the 429s), the cache (X-Cache), and the load balancer (the target that answered, retries past
 * a target that refuses connections).
 */

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const kafka = createKafkaClient(testKafkaConfig(), silentLogger, 'proxy-policies-test');
const logger = createLogger({ name: 'proxy-policies-it', level: 'silent' });
const prefix = `${uniqueName('pp')}.`;
const database = uniqueName('tapwire_policies');
const home = mkdtempSync(join(tmpdir(), 'tapwire-policies-'));
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
let ch: ClickHouse;
let live: Server;
let livePort: number;
/** x-request-id of every request the live target received. */
const seenByLive = new Set<string>();

beforeAll(async () => {
  await ensureTopics(
    kafka,
    topicSpecs(
      { partitions: 1, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
      prefix,
    ),
  );
  await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, lockSettleMs: 200 });
  ch = createClickHouse(testClickHouseConfig(database));
  live = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seenByLive.add(String(req.headers['x-request-id']));
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (req.url?.startsWith('/items/cached')) headers['cache-control'] = 'public, max-age=600';
      res.writeHead(200, headers);
      res.end(JSON.stringify({ path: req.url }));
    });
  });
  await new Promise<void>((r) => live.listen(0, '127.0.0.1', () => r()));
  livePort = (live.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((r) => live?.close(r));
  await ch?.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
  await ch?.close();
  await deletePrefixedTopics(prefix);
  rmSync(home, { recursive: true, force: true });
});

interface Sent {
  i: number;
  method: string;
  path: string;
  key: string | undefined;
  spanId: string;
  requestId: string;
  status: number;
  xCache: string | undefined;
  remaining: number | undefined;
}

describe('proxy policies: the access log says what the client saw', () => {
  it('a mixed run of auth, rate limits, cache and a dead target: every request’s decision, stored in ClickHouse, matches its answer', async () => {
    const deadPort = await freePort();
    const config = proxyConfigSchema.parse({
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      consumers: {
        apiKeys: [
          { id: 'alice', sha256: sha('alice-key'), scopes: ['read'] },
          { id: 'bob', sha256: sha('bob-key'), scopes: ['read', 'admin'] },
        ],
      },
      upstreams: [
        {
          name: 'shop',
          // The second target refuses every connection: the balancer retries GETs on the first and
          // ejects the dead one after 3 failures.
          targets: [`http://127.0.0.1:${livePort}`, `http://127.0.0.1:${deadPort}`],
          routes: ['/items/:id', '/admin/:op', '/public/:id'],
          passive: { consecutiveFailures: 3, ejectMs: 600_000 },
          retries: { attempts: 1, minPerSecond: 100 },
          auth: { methods: ['apiKey'], scopes: ['read'] },
          rateLimit: { limit: 6, windowSeconds: 3600, overrides: [{ consumer: 'bob', limit: 1000 }] },
          cache: { ttlSeconds: 0, cacheCredentialed: true },
          routePolicies: [
            { route: '/admin/:op', auth: { methods: ['apiKey'], scopes: ['admin'] }, cache: false },
            { route: '/public/:id', auth: false, rateLimit: false },
          ],
        },
      ],
      emit: {
        logDir: join(home, 'proxy-log'),
        maxBatchEvents: 50,
        lingerMs: 20,
        saturationIntervalMs: 3_600_000,
      },
    });
    const emission = await openEmission(
      { emit: config.emit, kafka: testKafkaConfig(), section: 'proxy' },
      logger,
      prefix,
    );
    const proxy = buildProxy({ sink: emission.sink, logger, emission: emission.stats }, config);
    const { proxyUrl } = await proxy.start();

    // The run: who asks for what, in this order, one at a time.
    const plan: [method: string, path: string, key: string | undefined][] = [
      ['GET', '/items/1', undefined], // no credentials
      ['GET', '/items/1', 'wrong-key'], // unknown key
      ['GET', '/admin/reindex', 'alice-key'], // alice lacks the admin scope
      ['GET', '/items/cached', 'alice-key'], // miss, stored (max-age)
      ['GET', '/items/cached', 'alice-key'], // hit (counts against the limit)
      ['GET', '/items/2', 'alice-key'], // miss, not stored (no freshness, ttl 0)
      ['GET', '/public/1', undefined], // anonymous route: no auth, no limit
      ['GET', '/items/3', 'alice-key'],
      ['GET', '/items/4', 'alice-key'],
      ['GET', '/items/6', 'alice-key'], // alice's 6th: exactly at the limit
      ['GET', '/items/5', 'alice-key'], // 429
      ['GET', '/items/cached', 'alice-key'], // 429 even though it would hit
      ['GET', '/admin/reindex', 'bob-key'], // bob has admin; cache off on this route
      ['GET', '/items/cached', 'bob-key'], // hit
      ...Array.from({ length: 8 }, (_, k): [string, string, string] => [
        'GET',
        `/items/${10 + k}`,
        'bob-key',
      ]),
      ['HEAD', '/items/cached', 'bob-key'], // served from the fresh GET entry
      ['GET', '/public/2', 'bob-key'], // no auth, no limit: bob still recorded as the consumer
      ['POST', '/items/2', 'bob-key'], // bypass; never retried (the dead target is ejected by now)
    ];
    const pool = new Pool(proxyUrl, { connections: 1 });
    const sent: Sent[] = [];
    for (const [i, [method, path, key]] of plan.entries()) {
      const res = await pool.request({
        method: method as 'GET',
        path,
        headers: key ? { 'x-api-key': key } : {},
        ...(method === 'POST' ? { body: '{}' } : {}),
      });
      await res.body.dump();
      const h = (n: string) => res.headers[n] as string | undefined;
      const rl = h('ratelimit');
      sent.push({
        i,
        method,
        path,
        key,
        spanId: /^00-[0-9a-f]{32}-([0-9a-f]{16})-0[01]$/.exec(h('traceparent') ?? '')?.[1] ?? '',
        requestId: h('x-request-id') ?? '',
        status: res.statusCode,
        xCache: h('x-cache'),
        remaining: rl === undefined ? undefined : Number(/;r=(\d+)/.exec(rl)?.[1]),
      });
    }
    await pool.close();
    await proxy.close();
    await emission.close(10_000);

    // What the client saw, in the terms the issue sets.
    expect(sent.map((s) => s.status)).toEqual([
      401,
      401,
      403,
      200,
      200,
      200,
      200,
      200,
      200,
      200,
      429,
      429,
      200,
      200,
      ...Array(8).fill(200),
      200,
      200,
      200,
    ]);
    expect(sent.map((s) => s.xCache ?? '')).toEqual([
      '',
      '',
      '',
      'MISS',
      'HIT',
      'MISS',
      'MISS',
      'MISS',
      'MISS',
      'MISS',
      '',
      '',
      '',
      'HIT',
      ...Array(8).fill('MISS'),
      'HIT',
      'MISS',
      'BYPASS',
    ]);
    // alice: 6 per hour; the refused requests do not count.
    expect(
      sent.filter((s) => s.key === 'alice-key' && s.remaining !== undefined).map((s) => s.remaining),
    ).toEqual([5, 4, 3, 2, 1, 0, 0, 0]);
    expect(sent.every((s) => s.spanId.length === 16)).toBe(true);

    const dlq = createKafkaEventSink(
      { kafka, logger: silentLogger },
      {
        lingerMs: 10,
        maxBatchEvents: 100,
        maxBufferedEvents: 1000,
        retryBackoffMs: 100,
        topicPrefix: prefix,
      },
    );
    const ingest: Ingest = buildIngest(
      { source: kafkaSource({ kafka, logger }), warehouse: clickhouseWarehouse(ch), dlq, logger },
      ingestConfigSchema.parse({
        groupId: uniqueName('policies-ingest'),
        topicPrefix: prefix,
        flushIntervalMs: 200,
        admin: { port: 0 },
        retention: { enabled: false },
      }),
    );
    await ingest.start();
    type Row = {
      span_id: string;
      status: number;
      error_kind: string;
      consumer: string;
      cache: string;
      target: string;
      retries: number;
      ratelimit_limit: number;
      ratelimit_remaining: number;
      route: string;
    };
    let rows: Row[] = [];
    try {
      await vi.waitFor(
        async () => {
          rows = await ch.query<Row>(
            raw(`SELECT span_id, status, error_kind, consumer, cache, target, retries, ratelimit_limit,
                   ratelimit_remaining, route FROM access_logs FINAL`),
          );
          expect(rows.length).toBe(plan.length);
        },
        { timeout: 60_000, interval: 250 },
      );
    } finally {
      await ingest.close();
      await dlq.close(5000);
    }

    const bySpan = new Map(rows.map((r) => [r.span_id, r]));
    const liveTarget = `127.0.0.1:${livePort}`;
    const expectedKind = (s: Sent): string =>
      s.status === 401
        ? s.key === undefined
          ? 'auth_missing'
          : 'auth_invalid'
        : s.status === 403
          ? 'forbidden'
          : s.status === 429
            ? 'rate_limited'
            : 'none';
    const consumerOf = (s: Sent): string =>
      s.key === 'alice-key' ? 'alice' : s.key === 'bob-key' ? 'bob' : s.key === undefined ? '' : 'unknown';
    for (const s of sent) {
      const r = bySpan.get(s.spanId);
      expect(r, `request ${s.i} ${s.method} ${s.path}`).toBeDefined();
      const forwarded = s.status === 200 && s.xCache !== 'HIT';
      expect(
        {
          status: Number(r!.status),
          error_kind: r!.error_kind,
          consumer: r!.consumer,
          cache: r!.cache,
          target: r!.target,
          ratelimit_remaining: s.remaining === undefined ? 0 : Number(r!.ratelimit_remaining),
          ratelimit_limit: Number(r!.ratelimit_limit),
        },
        `request ${s.i} ${s.method} ${s.path}`,
      ).toEqual({
        status: s.status,
        error_kind: expectedKind(s),
        consumer: consumerOf(s),
        cache: (s.xCache ?? '').toLowerCase(),
        // Forwarded requests were answered by the live target, whose server saw their request id.
        target: forwarded ? liveTarget : '',
        ratelimit_remaining: s.remaining ?? 0,
        ratelimit_limit: s.remaining === undefined ? 0 : s.key === 'bob-key' ? 1000 : 6,
      });
      if (forwarded) expect(seenByLive.has(s.requestId), `request ${s.i} reached the live target`).toBe(true);
    }
    // Round-robin sent some GETs to the dead target first: each was retried once on the live one,
    // until the dead target was ejected after its third failure. The POST is never retried, and
    // went to the live target by the rotation or it would have been a 502.
    const retried = rows.filter((r) => Number(r.retries) > 0);
    expect(retried.map((r) => Number(r.retries))).toEqual([1, 1, 1]);

    // The analytics API's view of the same run (raw rows: exact).
    const store = createClickHouseStore(ch);
    const range = { from: Math.floor(Date.now() / 1000) - 3600, to: Math.floor(Date.now() / 1000) + 60 };
    const consumers = await store.consumers(
      { tenant: null },
      { range, filters: {}, sort: 'rate', order: 'desc', limit: 10, offset: 0 },
    );
    const usage = Object.fromEntries(
      consumers.rows.map((r) => [
        r.consumer,
        {
          requests: r.requests,
          rate_limited: r.rate_limited,
          quota_used: r.quota_used,
          ratelimit_limit: r.ratelimit_limit,
          auth_failures: r.auth_failures,
        },
      ]),
    );
    const none = { missing: 0, invalid: 0, forbidden: 0 };
    expect(usage.alice).toEqual({
      requests: 9,
      rate_limited: 2,
      quota_used: 1,
      ratelimit_limit: 6,
      auth_failures: { ...none, forbidden: 1 },
    });
    expect(usage.bob).toEqual({
      requests: 13,
      rate_limited: 0,
      // 12 of 1000 spent on the limited routes (the /public route has no limit).
      quota_used: 0.012,
      ratelimit_limit: 1000,
      auth_failures: none,
    });
    expect(usage.unknown).toMatchObject({ requests: 1, auth_failures: { ...none, invalid: 1 } });
    const overview = await store.overview(
      { tenant: null },
      {
        range,
        filters: {},
        groupBy: 'route',
        sort: 'rate',
        order: 'desc',
        limit: 10,
        offset: 0,
        source: 'raw',
      },
    );
    const items = overview.rows.find((r) => r.route === '/items/:id' && r.method === 'GET');
    // GET /items/:id: its hits over its lookups (HEAD is a row of its own; 429s never looked).
    const gets = sent.filter(
      (s) => s.method === 'GET' && s.path.startsWith('/items/') && s.xCache !== undefined,
    );
    const hits = gets.filter((s) => s.xCache === 'HIT').length;
    expect(items?.cache_hit_ratio).toBeCloseTo(hits / gets.length, 10);
    await store.close();
  });
});
