import { type AddressInfo, connect, createServer } from 'node:net';
import {
  type ClickHouse,
  createClickHouse,
  identifier,
  raw,
  sql,
  TapwireClickHouseError,
} from '@tapwire/clickhouse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testClickHouseConfig, uniqueName } from '../support/infra.js';

// The quoting helper is checked where it matters: the real server parses what it produces.
describe('SQL literals on the real ClickHouse', () => {
  const database = uniqueName('tapwire_sql');
  let ch: ClickHouse;
  let admin: ClickHouse;

  beforeAll(async () => {
    admin = createClickHouse(testClickHouseConfig('default'));
    await admin.command(sql`CREATE DATABASE IF NOT EXISTS ${identifier(database)}`);
    ch = createClickHouse(testClickHouseConfig(database));
    await ch.command(raw('CREATE TABLE IF NOT EXISTS victim (x UInt8) ENGINE = Memory'));
  });
  afterAll(async () => {
    await admin.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
    await ch.close();
    await admin.close();
  });

  const nasty = [
    "it's",
    'back\\slash',
    'trailing backslash \\',
    "\\'",
    'NUL\0byte',
    'new\nline and\r\ncrlf',
    'tab\there',
    'bell\x07 vt\v ff\f bs\b esc\x1b del\x7f',
    'unicode: ü 日本語 🚀 \u202e',
    "'); DROP TABLE victim; --",
    "' OR 1=1 --",
    '`backtick` "double"',
    '/* comment */ -- comment',
    '',
    ' '.repeat(3),
  ];

  it('round-trips every string exactly', async () => {
    for (const value of nasty) {
      const rows = await ch.query<{ v: string; n: string }>(sql`SELECT ${value} AS v, length(${value}) AS n`);
      expect(rows, JSON.stringify(value)).toEqual([{ v: value, n: String(Buffer.byteLength(value)) }]);
    }
    const tables = await ch.query<{ name: string }>(raw('SHOW TABLES'));
    expect(tables).toEqual([{ name: 'victim' }]);
  });

  it('round-trips numbers, arrays, booleans, null and dates', async () => {
    const rows = await ch.query<Record<string, unknown>>(
      sql`SELECT ${-5} AS neg, ${1.25} AS f, ${[1, 2, 3]} AS arr, ${['a', "b'c"]} AS sarr, ${true} AS t, ${null} AS nul, toUnixTimestamp(${new Date('2026-11-26T10:11:12Z')}) AS d, 1 -${-1} AS minus`,
    );
    expect(rows).toEqual([
      { neg: -5, f: 1.25, arr: [1, 2, 3], sarr: ['a', "b'c"], t: 1, nul: null, d: 1_795_687_872, minus: 2 },
    ]);
  });

  it('refuses values that cannot be literals, before reaching the server', () => {
    expect(() => sql`SELECT ${Number.NaN}`).toThrow(TapwireClickHouseError);
    expect(() => sql`SELECT ${Number.POSITIVE_INFINITY}`).toThrow('not a finite number');
    expect(() => identifier('victim; DROP TABLE victim')).toThrow('not a plain identifier');
    expect(() => identifier('`x`')).toThrow('not a plain identifier');
  });

  it('classifies server errors with their ClickHouse code', async () => {
    const err = await ch.query(raw('SELECT * FROM no_such_table')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TapwireClickHouseError);
    expect(err).toMatchObject({ code: 'TAPWIRE_CH_QUERY_FAILED', serverCode: 60, retryable: false });
    const timeout = await ch
      .query(raw('SELECT sleepEachRow(1) FROM numbers(3)'), { maxExecutionTimeS: 1 })
      .catch((e: unknown) => e);
    expect(timeout).toMatchObject({ code: 'TAPWIRE_CH_TIMEOUT', retryable: true });
  });

  it('sends a read again when the server closed the kept-alive socket it went out on', async () => {
    // A proxy in front of the real server resets the first connection when its second request
    // arrives: what a client sees when the server's keep-alive timeout closed a socket it reused.
    const upstream = new URL(testClickHouseConfig(database).url);
    let connections = 0;
    const proxy = createServer((client) => {
      const n = ++connections;
      const server = connect(Number(upstream.port), upstream.hostname);
      let requests = 0;
      client.on('data', (chunk) => {
        if (/^(GET|POST) /.test(chunk.toString('latin1')) && ++requests === 2 && n === 1) {
          client.resetAndDestroy();
          server.destroy();
          return;
        }
        server.write(chunk);
      });
      server.pipe(client);
      client.on('error', () => server.destroy());
      server.on('error', () => client.destroy());
      client.on('close', () => server.destroy());
    });
    await new Promise<void>((done) => proxy.listen(0, '127.0.0.1', done));
    const port = (proxy.address() as AddressInfo).port;
    const viaProxy = createClickHouse({
      ...testClickHouseConfig(database),
      url: `http://127.0.0.1:${port}`,
      maxOpenConnections: 1,
    });
    try {
      expect(await viaProxy.query(raw('SELECT 1 AS one'))).toEqual([{ one: 1 }]);
      expect(await viaProxy.query(raw('SELECT 2 AS two'))).toEqual([{ two: 2 }]);
      expect(connections).toBe(2);
    } finally {
      await viaProxy.close();
      proxy.close();
    }
  });

  it('reports an unreachable server as retryable', async () => {
    const dead = createClickHouse({ ...testClickHouseConfig(database), url: 'http://127.0.0.1:1' });
    const err = await dead.query(raw('SELECT 1')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TAPWIRE_CH_UNREACHABLE', retryable: true });
    await dead.close();
  });
});
