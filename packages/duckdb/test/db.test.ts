import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type DuckDb, openDuckDb, sql, TapwireDuckDbError } from '../src/index.js';

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
        `import('@duckdb/node-api').then(async ({ DuckDBInstance }) => { await DuckDBInstance.create(${JSON.stringify(path)}); process.stdout.write('open\\n'); setInterval(() => {}, 1000); })`,
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
