import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type ClickHouse,
  createClickHouse,
  identifier,
  inline,
  joinSql,
  parameterized,
  type SqlFragment,
  type SqlValue,
  sql,
} from '@tapwire/clickhouse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChdbServer, startChdb } from '../support/chdb.js';
import { testClickHouseConfig, uniqueName } from '../support/infra.js';

/**
 * Server-side query parameters give the same answers as inline literals: every statement below
 * runs inline on the 18.16 server of test/infra, and on ClickHouse 26.9 (chdb-core behind the chdb
 * HTTP shim) both parameterized, as client.ts sends it there, and inline. A recording proxy in
 * front of the shim shows what went over the wire.
 */

/** What the client sent: the URL's param_ names, and the query text (in the body). */
interface Sent {
  params: Record<string, string>;
  query: string;
}

/**
 * recordingProxy forwards every request to `target` and records its param_ values and query. It
 * also asks for 64-bit integers as JSON strings, as a server's default is (chdb's is not).
 */
async function recordingProxy(target: string): Promise<{ url: string; sent: Sent[]; server: Server }> {
  const sent: Sent[] = [];
  const to = new URL(target);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url ?? '/', 'http://proxy');
      const params = Object.fromEntries([...url.searchParams].filter(([k]) => k.startsWith('param_')));
      // The client appends the output format to the statement.
      const query = (url.searchParams.get('query') ?? body.toString()).replace(
        /\s*FORMAT JSONEachRow\s*$/,
        '',
      );
      if (req.method === 'POST') sent.push({ params, query });
      url.searchParams.set('output_format_json_quote_64bit_integers', '1');
      const forward = request(
        {
          host: to.hostname,
          port: to.port,
          method: req.method,
          path: `${url.pathname}?${url.searchParams}`,
          headers: req.headers,
        },
        (upstream) => {
          res.writeHead(upstream.statusCode ?? 502, upstream.headers);
          upstream.pipe(res);
        },
      );
      forward.on('error', (err) => res.destroy(err));
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, sent, server };
}

const NASTY_STRINGS = [
  "it's",
  'back\\slash\\',
  'new\nline\r\n',
  'tab\there',
  'nul\0byte',
  '\x1b\x7f\x01\x02',
  '日本 🚀 ü',
  '',
  "'); DROP TABLE x; --",
  '{p0:String}',
  '%41+&=?#',
  ' spaces ',
];

// Every kind of value the sql tag takes, at the edges of the type each is sent as.
const SCALARS: [string, SqlValue][] = [
  ...NASTY_STRINGS.map((s, i): [string, SqlValue] => [`string ${i} ${JSON.stringify(s)}`, s]),
  ['0', 0],
  ['255', 255],
  ['256', 256],
  ['65535', 65_535],
  ['2^32', 2 ** 32],
  ['-1', -1],
  ['-128', -128],
  ['-129', -129],
  ['-2^31 - 1', -(2 ** 31) - 1],
  ['MAX_SAFE_INTEGER', Number.MAX_SAFE_INTEGER],
  ['2^63 (bigint)', 2n ** 63n],
  ['2^64 - 1 (bigint)', 2n ** 64n - 1n],
  ['-2^63 (bigint)', -(2n ** 63n)],
  ['2^64 (bigint, a Float64)', 2n ** 64n],
  ['0.5', 0.5],
  ['-2.25', -2.25],
  ['1e-7', 1e-7],
  ['1e21', 1e21],
  ['123456.789', 123_456.789],
  ['true', true],
  ['false', false],
  ['the first second', new Date(1000)],
  ['the epoch', new Date(0)],
  ['a date with milliseconds', new Date('2026-11-26T00:00:01.999Z')],
  ['the last DateTime', new Date(4_294_967_295_000)],
  ['strings', NASTY_STRINGS],
  ['unsigned and signed', [1, -1]],
  ['UInt16 and Int8', [300, -1]],
  ['integers and fractions', [1, 0.5]],
  ['booleans', [true, false]],
  ['dates', [new Date(1000), new Date('2026-11-26T12:00:00Z')]],
  ['arrays', [[1], [-1, 300]]],
  ['NULL (stays inline)', null],
  ['an empty array (stays inline)', []],
];

// 18.16 prints these DateTimes otherwise than 26.9 does, inline or not (the epoch as 0000-00-00
// 00:00:00, and the last DateTime wrapped around): there, 26.9's two renderings are compared only.
const PRINTED_OTHERWISE_BY_18 = new Set(['the epoch', 'the last DateTime']);

const T0 = Date.UTC(2026, 10, 26, 0, 0, 0) / 1000;
const ROWS = NASTY_STRINGS.map((s, i) => ({
  s,
  n: i % 2 === 0 ? -i * 1000 : i * 1000,
  u: (2n ** 63n + BigInt(i)).toString(),
  f: i / 4,
  ts: T0 + i * 3_600 * 7,
  tags: [`t${i % 3}`, s],
}));

/** STATEMENTS are the table-reading shapes the code sends: filters, IN lists, time ranges, buckets. */
function statements(): [string, SqlFragment][] {
  const probe = identifier('params_probe');
  const day = new Date(T0 * 1000);
  const next = new Date((T0 + 86_400) * 1000);
  return [
    ...NASTY_STRINGS.map((s, i): [string, SqlFragment] => [
      `the row of string ${i}`,
      sql`SELECT s, n, u FROM ${probe} WHERE s = ${s}`,
    ]),
    [
      'IN a list',
      sql`SELECT s FROM ${probe} WHERE s IN (${joinSql(
        NASTY_STRINGS.slice(0, 4).map((s) => sql`${s}`),
        ', ',
      )}) ORDER BY s`,
    ],
    ['has(array)', sql`SELECT count() AS c FROM ${probe} WHERE has(${NASTY_STRINGS.slice(5)}, s)`],
    ['hasAny(column, array)', sql`SELECT s FROM ${probe} WHERE hasAny(tags, ${['t1', "it's"]}) ORDER BY s`],
    ['a UInt64 above Int64', sql`SELECT s FROM ${probe} WHERE u = ${2n ** 63n + 3n}`],
    ['a negative Int64', sql`SELECT s FROM ${probe} WHERE n <= ${-4000} ORDER BY n`],
    ['a Float64', sql`SELECT count() AS c FROM ${probe} WHERE f > ${0.6}`],
    ['a DateTime range', sql`SELECT count() AS c FROM ${probe} WHERE ts >= ${day} AND ts < ${next}`],
    [
      'strings against a DateTime (day-audit)',
      sql`SELECT count() AS c FROM ${probe} WHERE ts BETWEEN ${'2026-11-26 00:00:00'} AND ${'2026-11-26 23:59:59'}`,
    ],
    [
      'a time bucket grouped by its alias',
      sql`SELECT intDiv(toUInt32(ts) - ${T0}, ${3_600 * 12}) AS b, count() AS c, min(s) AS first FROM ${probe} GROUP BY b ORDER BY b`,
    ],
    [
      'a prefix compare',
      sql`SELECT s FROM ${probe} WHERE substring(s, 1, ${Buffer.byteLength('it')}) = ${'it'}`,
    ],
    [
      'an array in WITH',
      sql`WITH ${[1.5, 2.5, 4]} AS xs SELECT s, xs[(n % 3) + 2] AS x FROM ${probe} WHERE n > 0 ORDER BY s`,
    ],
    ['a boolean', sql`SELECT count() AS c FROM ${probe} WHERE (n > 0) = ${true}`],
    ['an inline LIMIT', sql`SELECT s FROM ${probe} ORDER BY ts DESC LIMIT ${inline(2)} OFFSET ${inline(1)}`],
    [
      'the same value twice',
      sql`SELECT count() AS c FROM ${probe} WHERE s = ${"it's"} OR has(tags, ${"it's"})`,
    ],
  ];
}

let chdb: ChdbServer | undefined;
let proxy: Awaited<ReturnType<typeof recordingProxy>> | undefined;
let database: string;
let on18: ClickHouse;
let on26: ClickHouse;
let on26inline: ClickHouse;

beforeAll(async () => {
  chdb = await startChdb();
  proxy = await recordingProxy(chdb.url);
  database = uniqueName('params');
  on18 = createClickHouse(testClickHouseConfig(database));
  on26 = createClickHouse({ ...testClickHouseConfig(database), url: proxy.url });
  on26inline = createClickHouse(
    { ...testClickHouseConfig(database), url: proxy.url },
    { capabilities: false },
  );
  for (const [url, ch] of [
    [testClickHouseConfig(database).url, on18],
    [chdb.url, on26],
  ] as const) {
    const admin = createClickHouse({ ...testClickHouseConfig('default'), url });
    await admin.command(sql`CREATE DATABASE IF NOT EXISTS ${identifier(database)}`);
    await admin.close();
    await ch.command(
      sql`CREATE TABLE params_probe (s String, n Int64, u UInt64, f Float64, ts DateTime('UTC'), tags Array(String)) ENGINE = MergeTree ORDER BY ts`,
    );
    await ch.insert('params_probe', ROWS);
  }
}, 300_000);

afterAll(async () => {
  await on18?.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`).catch(() => {});
  await Promise.all([on18?.close(), on26?.close(), on26inline?.close()]);
  await new Promise((r) => proxy?.server.close(r));
  await chdb?.stop();
});

describe('query parameters give the answers inline literals give', () => {
  it('the servers are 18.16 without query parameters and 26.9 with them', async () => {
    expect(await on18.capabilities()).toEqual({ version: '18.16.1', queryParams: false, ttl: false });
    expect(await on26.capabilities()).toEqual({ version: chdb?.version, queryParams: true, ttl: true });
    expect(await on26inline.capabilities()).toEqual({
      version: chdb?.version,
      queryParams: false,
      ttl: false,
    });
  });

  it.each(SCALARS)('%s: its value and its type', async (name, value) => {
    const statement = sql`SELECT ${value} AS v, toTypeName(${value}) AS t`;
    const expected = PRINTED_OTHERWISE_BY_18.has(name)
      ? await on26inline.query(statement)
      : await on18.query(statement);
    expect(await on26.query(statement)).toEqual(expected);
    // What went to 26.9 is the parameterized rendering, with one param_ per distinct value.
    const { query, params } = parameterized(statement);
    expect(proxy?.sent.at(-1)?.query).toBe(query);
    expect(Object.keys(proxy?.sent.at(-1)?.params ?? {})).toEqual(
      Object.keys(params).map((k) => `param_${k}`),
    );
    if (value !== null && !(Array.isArray(value) && value.length === 0)) expect(query).toContain('{p0:');
    expect(await on26inline.query(statement)).toEqual(expected);
    expect(proxy?.sent.at(-1)).toEqual({ query: statement.text, params: {} });
  });

  it.each(statements())('%s', async (_name, statement) => {
    const expected = await on18.query(statement);
    expect(expected.length).toBeGreaterThan(0);
    expect(await on26.query(statement)).toEqual(expected);
    expect(proxy?.sent.at(-1)?.query).toBe(parameterized(statement).query);
    expect(await on26inline.query(statement)).toEqual(expected);
    expect(proxy?.sent.at(-1)).toEqual({ query: statement.text, params: {} });
  });

  it('commands stay inline on 26.9: DDL and mutations keep their text', async () => {
    const before = proxy?.sent.length ?? 0;
    await on26.command(sql`ALTER TABLE params_probe DELETE WHERE s = ${'no such row'}`);
    const sent = proxy?.sent.slice(before) ?? [];
    expect(sent.map((s) => [s.query, s.params])).toEqual([
      ["ALTER TABLE params_probe DELETE WHERE s = 'no such row'", {}],
    ]);
  });
});
