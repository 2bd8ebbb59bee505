import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ndjsonChunks } from '../src/db.js';
import { type DuckDb, openDuckDb, sql, TapwireDuckDbError } from '../src/index.js';
import { createTableSql, tableSpec } from '../src/schema.js';

const dirs: string[] = [];
const dbs: DuckDb[] = [];
async function fresh(): Promise<DuckDb> {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-duckdb-test-'));
  dirs.push(dir);
  const db = await openDuckDb({ path: join(dir, 'db', 'tapwire.duckdb'), threads: 1 });
  dbs.push(db);
  return db;
}
afterEach(async () => {
  for (const db of dbs.splice(0)) await db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const dlqLine = (id: string, ts: number, reason: string, offset: number) =>
  JSON.stringify({
    tenant: 't1',
    ts,
    ts_us: ts * 1_000_000,
    id,
    source_topic: 'tapwire.access-logs',
    source_partition: 0,
    source_offset: String(offset),
    reason,
    raw_base64: '',
    consumer_group: 'g',
    kafka_partition: 0,
    kafka_offset: String(offset),
  });

describe('embedded database', () => {
  it('reports the memory it holds per tag, the rows inserted among it', async () => {
    const db = await fresh();
    const lines = Array.from({ length: 2000 }, (_, i) =>
      dlqLine(`e${i}`, 1_700_000_000 + i, 'x'.repeat(200), i),
    );
    expect(await db.insertJsonLines('dlq_events', lines)).toBe(2000);
    const memory = await db.memory();
    const tags = new Set(memory.map((m) => m.tag));
    // duckdb_memory() lists every tag, held or not; the table's rows are held as BASE_TABLE or, not yet checkpointed, IN_MEMORY_TABLE.
    expect(tags).toContain('BASE_TABLE');
    expect(tags).toContain('HASH_TABLE');
    const held = memory.filter((m) => m.tag === 'BASE_TABLE' || m.tag === 'IN_MEMORY_TABLE');
    expect(held.reduce((n, m) => n + m.bytes, 0)).toBeGreaterThan(0);
    for (const m of memory) expect(Number.isSafeInteger(m.bytes) && m.bytes >= 0).toBe(true);
  });

  it('inserts JSON rows once per event id, skipping ids stored or repeated in the batch', async () => {
    const db = await fresh();
    expect(
      await db.insertJsonLines('dlq_events', [dlqLine('a', 100, 'r1', 1), dlqLine('b', 100, "it's", 2)]),
    ).toBe(2);
    expect(
      await db.insertJsonLines('dlq_events', [
        dlqLine('b', 100, 'again', 2),
        dlqLine('c', 101, 'r3', 3),
        dlqLine('c', 101, 'r3', 3),
      ]),
    ).toBe(1);
    const rows = await db.query<{ id: string; reason: string; kafka_offset: string }>(
      sql`SELECT id, reason, kafka_offset FROM dlq_events WHERE tenant = ${'t1'} ORDER BY id`,
    );
    expect(rows).toEqual([
      { id: 'a', reason: 'r1', kafka_offset: '1' },
      { id: 'b', reason: "it's", kafka_offset: '2' },
      { id: 'c', reason: 'r3', kafka_offset: '3' },
    ]);
  });

  it('fills the route histograms from exactly the rows an insert adds (a repeated batch adds nothing)', async () => {
    const db = await fresh();
    const access = (id: string, ts: number, status: number, duration: number) =>
      JSON.stringify({
        tenant: 't1',
        ts,
        ts_us: ts * 1_000_000,
        id,
        trace_id: 'a'.repeat(32),
        span_id: 'b'.repeat(16),
        service: 'shop',
        upstream: 'shop',
        route: '/users/:id',
        method: 'GET',
        status,
        duration_ms: duration,
        upstream_ms: duration,
        bytes_in: 10,
        bytes_out: 100,
        consumer: '',
        client_address: '',
        server_address: '',
        user_agent: '',
        path: '/users/1',
        query: '',
        error_kind: 'none',
        kafka_partition: 0,
        kafka_offset: '1',
      });
    const batch = [access('a', 120, 200, 10), access('b', 130, 503, 10), access('c', 3700, 404, 250)];
    expect(await db.insertJsonLines('access_logs', batch)).toBe(3);
    expect(await db.insertJsonLines('access_logs', [...batch, access('d', 3725, 200, 10)])).toBe(1);
    const minutes = await db.query<Record<string, string | number>>(
      sql`SELECT minute, bucket, sum(requests) AS n, sum(errors_5xx) AS e5, sum(errors_4xx) AS e4, sum(bytes_out) AS out
        FROM route_histogram_1m GROUP BY minute, bucket ORDER BY minute, bucket`,
    );
    // 10 ms is bucket ceil(ln 10 / ln 1.01) = 232; 250 ms is bucket 555.
    expect(minutes).toEqual([
      { minute: '120', bucket: 232, n: '2', e5: '1', e4: '0', out: '200' },
      { minute: '3660', bucket: 555, n: '1', e5: '0', e4: '1', out: '100' },
      { minute: '3720', bucket: 232, n: '1', e5: '0', e4: '0', out: '100' },
    ]);
    const hours = await db.query<Record<string, string>>(
      sql`SELECT hour, sum(requests) AS n FROM route_histogram_1h GROUP BY hour ORDER BY hour`,
    );
    expect(hours).toEqual([
      { hour: '0', n: '2' },
      { hour: '3600', n: '2' },
    ]);
  });

  it('a batch read in several chunks stores each id once and one histogram row per key and insert', async () => {
    const db = await fresh();
    const access = (id: string, ts: number) =>
      JSON.stringify({
        tenant: 't1',
        ts,
        ts_us: ts * 1_000_000,
        id,
        trace_id: 'a'.repeat(32),
        span_id: 'b'.repeat(16),
        service: 'shop',
        upstream: 'shop',
        route: '/r',
        method: 'GET',
        status: 200,
        duration_ms: 10,
        upstream_ms: 10,
        bytes_in: 1,
        bytes_out: 2,
        consumer: '',
        client_address: '',
        server_address: '',
        user_agent: 'x'.repeat(2000),
        path: '/r',
        query: '',
        error_kind: 'none',
        kafka_partition: 0,
        kafka_offset: '1',
      });
    // 5,000 rows of about 2.4 KB are 12 MB, three chunks; id 0 comes again at the end (a resend).
    const lines = Array.from({ length: 5000 }, (_, i) => access(`e${i}`, 60 + (i % 120)));
    lines.push(access('e0', 60));
    const body = [Buffer.from(`${lines.join('\n')}\n`)];
    expect([...ndjsonChunks(body, 4 * 1024 * 1024)].length).toBeGreaterThan(2);
    expect(await db.insertNdjson('access_logs', body)).toBe(5000);
    const [stored] = await db.query<{ n: string; ids: string }>(
      sql`SELECT count(*) AS n, count(DISTINCT id) AS ids FROM access_logs`,
    );
    expect(stored).toEqual({ n: '5000', ids: '5000' });
    const minutes = await db.query<Record<string, string>>(
      sql`SELECT minute, count(*) AS keyrows, sum(requests) AS n, sum(bytes_out) AS out FROM route_histogram_1m GROUP BY minute ORDER BY minute`,
    );
    expect(minutes).toEqual([
      { minute: '60', keyrows: '1', n: '2520', out: '5040' },
      { minute: '120', keyrows: '1', n: '2480', out: '4960' },
    ]);
    expect(await db.insertNdjson('access_logs', body)).toBe(0);
  });

  it('ndjsonChunks cuts only between rows, wherever the pieces split them', () => {
    const rows = ['{"a":1}', '{"b":22}', '{"c":333}', '{"d":4444}'];
    const text = `${rows.join('\n')}\n`;
    const pieces = [text.slice(0, 3), Buffer.from(text.slice(3, 20)), text.slice(20)];
    const chunks = [...ndjsonChunks(pieces, 12)].map((c) => Buffer.concat(c).toString());
    expect(chunks.join('')).toBe(text);
    for (const c of chunks) expect(c.endsWith('\n')).toBe(true);
    expect(chunks.length).toBeGreaterThan(2);
    expect([...ndjsonChunks(['{"a":1}\n{"b":2}'], 1024)].map((c) => Buffer.concat(c).toString())).toEqual([
      '{"a":1}\n{"b":2}',
    ]);
  });

  it('binds values as parameters: quotes and SQL in values are data, lists bind as lists', async () => {
    const db = await fresh();
    await db.insertJsonLines('dlq_events', [dlqLine('x', 5, "'; DROP TABLE dlq_events; --", 9)]);
    const [hit] = await db.query<{ n: string }>(
      sql`SELECT count(*) AS n FROM dlq_events WHERE reason = ${"'; DROP TABLE dlq_events; --"} AND list_contains(${['x', 'y']}, id)`,
    );
    expect(hit?.n).toBe('1');
  });

  it('a rejected batch leaves nothing behind (one transaction)', async () => {
    const db = await fresh();
    await expect(
      db.insertJsonLines('dlq_events', [dlqLine('ok', 1, 'r', 1), '{"id": "broken"']),
    ).rejects.toMatchObject({
      code: 'TAPWIRE_DUCKDB_QUERY_FAILED',
    });
    const [count] = await db.query<{ n: string }>(sql`SELECT count(*) AS n FROM dlq_events`);
    expect(count?.n).toBe('0');
    await expect(db.insertJsonLines('nope', ['{}'])).rejects.toMatchObject({
      code: 'TAPWIRE_DUCKDB_UNKNOWN_TABLE',
    });
  });

  it('keeps rows across a reopen', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-duckdb-test-'));
    dirs.push(dir);
    const path = join(dir, 'tapwire.duckdb');
    const first = await openDuckDb({ path });
    await first.insertJsonLines('dlq_events', [dlqLine('kept', 7, 'r', 1)]);
    await first.close();
    const again = await openDuckDb({ path });
    dbs.push(again);
    const [row] = await again.query<{ id: string }>(sql`SELECT id FROM dlq_events`);
    expect(row?.id).toBe('kept');
  });

  it('opening a file from before span version 2 adds its columns and gives old spans an empty resource, scope, events and links', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-duckdb-test-'));
    dirs.push(dir);
    const path = join(dir, 'old-spans.duckdb');
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const old = await DuckDBInstance.create(path);
    const conn = await old.connect();
    await conn.run(
      `CREATE TABLE spans ("tenant" VARCHAR, "ts" BIGINT, "ts_us" UBIGINT, "id" VARCHAR, "trace_id" VARCHAR,
        "span_id" VARCHAR, "parent_span_id" VARCHAR, "name" VARCHAR, "kind" VARCHAR, "service" VARCHAR,
        "duration_us" UBIGINT, "status" VARCHAR, "status_message" VARCHAR, "attr_keys" VARCHAR[],
        "attr_values" VARCHAR[], "kafka_partition" UINTEGER, "kafka_offset" UBIGINT, "source_id" VARCHAR,
        "source_seq" UBIGINT)`,
    );
    await conn.run(
      `INSERT INTO spans VALUES ('t1', 1, 1000000, 'old-1', 't', 's', '', 'GET /', 'SERVER', 'svc', 5, 'UNSET', '', ['k'], ['v'], 0, 1, 'partition:0', 1)`,
    );
    conn.closeSync();
    old.closeSync();

    const db = await openDuckDb({ path });
    dbs.push(db);
    const rows = await db.query(
      sql`SELECT id, attr_keys, resource_keys, resource_values, scope_name, scope_version, events_json, links_json FROM spans`,
    );
    expect(rows).toEqual([
      {
        id: 'old-1',
        attr_keys: ['k'],
        resource_keys: [],
        resource_values: [],
        scope_name: '',
        scope_version: '',
        events_json: '[]',
        links_json: '[]',
      },
    ]);
  });

  it('opening a file from before access logs version 2 adds the policy columns: old rows read no policy, old samples no targets', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-duckdb-test-'));
    dirs.push(dir);
    const path = join(dir, 'old-policy.duckdb');
    const added = new Set([
      'cache',
      'target',
      'retries',
      'ratelimit_limit',
      'ratelimit_remaining',
      'target_upstreams',
      'target_addresses',
      'target_states',
      'target_in_flight',
      'target_consecutive_failures',
    ]);
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const old = await DuckDBInstance.create(path);
    const conn = await old.connect();
    for (const name of ['access_logs', 'saturation']) {
      const spec = tableSpec(name)!;
      const before = { ...spec, columns: spec.columns.filter(([c]) => !added.has(c)) };
      await conn.run(createTableSql(before));
      await conn.run(`INSERT INTO ${name} (tenant, ts, ts_us, id) VALUES ('t1', 1, 1000000, 'old-${name}')`);
    }
    conn.closeSync();
    old.closeSync();

    const db = await openDuckDb({ path });
    dbs.push(db);
    expect(
      await db.query(
        sql`SELECT id, "cache", target, retries, ratelimit_limit, ratelimit_remaining FROM access_logs`,
      ),
    ).toEqual([
      {
        id: 'old-access_logs',
        cache: '',
        target: '',
        retries: 0,
        ratelimit_limit: 0,
        ratelimit_remaining: 0,
      },
    ]);
    expect(
      await db.query(
        sql`SELECT id, target_upstreams, target_addresses, target_states, target_in_flight, target_consecutive_failures FROM saturation`,
      ),
    ).toEqual([
      {
        id: 'old-saturation',
        target_upstreams: [],
        target_addresses: [],
        target_states: [],
        target_in_flight: [],
        target_consecutive_failures: [],
      },
    ]);
  });

  it('opening a file from before the per-event ledger adds its columns and gives old rows the single-record identity', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-duckdb-test-'));
    dirs.push(dir);
    const path = join(dir, 'old.duckdb');
    // The dlq_events table as releases before the ledger created it, with two rows.
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const old = await DuckDBInstance.create(path);
    const conn = await old.connect();
    await conn.run(
      `CREATE TABLE dlq_events ("tenant" VARCHAR, "ts" BIGINT, "ts_us" UBIGINT, "id" VARCHAR, "source_topic" VARCHAR,
        "source_partition" UINTEGER, "source_offset" UBIGINT, "reason" VARCHAR, "raw_base64" VARCHAR,
        "consumer_group" VARCHAR, "kafka_partition" UINTEGER, "kafka_offset" UBIGINT)`,
    );
    await conn.run(
      `INSERT INTO dlq_events VALUES ('t1', 1, 1000000, 'old-1', 'x', 0, 5, 'r', '', 'g', 2, 17), ('t1', 1, 1000000, 'old-2', 'x', 0, 6, 'r', '', 'g', 0, 3)`,
    );
    conn.closeSync();
    old.closeSync();

    const db = await openDuckDb({ path });
    dbs.push(db);
    await db.insertJsonLines('dlq_events', [
      JSON.stringify({
        ...JSON.parse(dlqLine('new-1', 2, 'r', 9)),
        source_id: 'proxy-a',
        source_seq: '41',
        source_index: 3,
      }),
    ]);
    const rows = await db.query(
      sql`SELECT id, source_id, source_seq, source_index FROM dlq_events ORDER BY id`,
    );
    expect(rows).toEqual([
      { id: 'new-1', source_id: 'proxy-a', source_seq: '41', source_index: 3 },
      { id: 'old-1', source_id: 'partition:2', source_seq: '17', source_index: null },
      { id: 'old-2', source_id: 'partition:0', source_seq: '3', source_index: null },
    ]);
    // Opening it again changes nothing.
    await db.close();
    const again = await openDuckDb({ path });
    dbs.push(again);
    const [n] = await again.query<{ n: string }>(
      sql`SELECT count(*) AS n FROM dlq_events WHERE source_id = 'partition:2' AND source_seq = 17`,
    );
    expect(n?.n).toBe('1');
  });

  it('interrupts a query past its time limit with TAPWIRE_DUCKDB_TIMEOUT', async () => {
    const db = await fresh();
    const err = await db
      .query(sql`SELECT count(*) FROM range(100000000000) a`, { timeoutMs: 200 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TapwireDuckDbError);
    expect((err as TapwireDuckDbError).code).toBe('TAPWIRE_DUCKDB_TIMEOUT');
  });

  it('refuses a file another process holds, naming it (TAPWIRE_DUCKDB_LOCKED)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-duckdb-test-'));
    dirs.push(dir);
    const path = join(dir, 'held.duckdb');
    const holder = spawn(
      process.execPath,
      [
        '-e',
        // The instance stays referenced: garbage-collected, it would close and release the lock.
        `import('@duckdb/node-api').then(async ({ DuckDBInstance }) => { globalThis.held = await DuckDBInstance.create(${JSON.stringify(path)}); process.stdout.write('open\\n'); setInterval(() => {}, 1000); })`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', (d: Buffer) => d.toString().includes('open') && resolve());
        holder.once('exit', (code) => reject(new Error(`holder exited ${code}`)));
      });
      const err = await openDuckDb({ path }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TapwireDuckDbError);
      expect((err as TapwireDuckDbError).code).toBe('TAPWIRE_DUCKDB_LOCKED');
      expect((err as Error).message).toContain(path);
    } finally {
      holder.kill('SIGKILL');
    }
  }, 30_000);
});
