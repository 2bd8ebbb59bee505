import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createClickHouse, identifier, raw, sql } from '@tapwire/clickhouse';
import { clickhouseUrl } from '@tapwire/infra';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compareRows,
  type DialectReport,
  normalizeStatement,
  outerOrderBy,
  runDialectCheck,
  summarize,
} from '../dialect/check.js';
import { runIngestWorkload, runSuites, SUITES } from '../dialect/workload.js';
import { type ChdbServer, startChdb } from '../support/chdb.js';
import { infraConfig, testClickHouseConfig, uniqueName } from '../support/infra.js';

/**
 * The ClickHouse dialect check: every statement that migrations, the ClickHouse Store (the store
 * contract suite), the Grafana dashboards (the dashboards test), ingest (ledger reads, inserts,
 * rollup repair, day audits) and retention send to 18.16 is replayed on ClickHouse 26.9 (chdb-core
 * behind the chdb shim) and must give the same answer. The report lists every statement shape:
 * .tapwire/dialect-report.json.
 */

const REPORT = fileURLToPath(new URL('../../.tapwire/dialect-report.json', import.meta.url));
let chdb: ChdbServer | undefined;

// The first run creates .tapwire/chdb-venv (pip install chdb-core): minutes on a cold cache.
beforeAll(async () => {
  chdb = await startChdb();
}, 900_000);

afterAll(async () => {
  await chdb?.stop();
});

const failing = (report: DialectReport) =>
  report.shapes
    .filter((s) => s.diff + s.error > 0)
    .map((s) => ({ shape: s.shape, failures: s.failures.map((f) => `${f.verdict}: ${f.detail}`) }));

describe('ClickHouse dialect check', () => {
  it('every statement of migrations, the Store, the dashboards, ingest and retention answers on 26.9 as on 18.16', async () => {
    const report = await runDialectCheck({
      reference: clickhouseUrl(infraConfig()),
      other: chdb!.url,
      async workload(url) {
        await runSuites(url, SUITES);
        await runIngestWorkload(url, uniqueName('dialect_ingest'));
      },
      // The suites run on 26.9 themselves (the store contract suite's clickhouse_26 leg); ingest's
      // paths build SQL from server answers (system.tables, system.parts), so they run there too.
      live: (url) => runIngestWorkload(url, uniqueName('dialect_ingest')),
    });
    mkdirSync(fileURLToPath(new URL('../../.tapwire/', import.meta.url)), { recursive: true });
    writeFileSync(REPORT, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`${summarize(report)}\n(report: ${REPORT})\n`);
    expect(report.other).toMatch(/^ClickHouse 26\.9\./);
    expect(failing(report)).toEqual([]);
    expect(report.live?.failures).toEqual([]);
    expect(report.live?.thrown).toBe('');
    expect(report.ok).toBe(true);
  }, 600_000);

  it('fails on a query that errors on 26.9 and on one that answers differently, naming each', async () => {
    const database = uniqueName('dialect_broken');
    const report = await runDialectCheck({
      reference: clickhouseUrl(infraConfig()),
      other: chdb!.url,
      async workload(url) {
        const root = createClickHouse({ ...testClickHouseConfig('default'), url });
        const ch = createClickHouse({ ...testClickHouseConfig(database), url });
        try {
          await root.command(sql`CREATE DATABASE IF NOT EXISTS ${identifier(database)}`);
          await ch.command(raw('CREATE TABLE t (ts DateTime, n UInt32) ENGINE = MergeTree ORDER BY ts'));
          await ch.insert('t', [
            { ts: '2026-11-26 00:00:00', n: 1 },
            { ts: '2026-11-26 00:01:00', n: 2 },
          ]);
          await ch.query(raw('SELECT n, toStartOfMinute(ts) AS m FROM t ORDER BY n'));
          // %M was the minute until ClickHouse 23.4 and is the month's name since.
          await ch.query(raw("SELECT formatDateTime(ts, '%M') AS minute FROM t ORDER BY ts"));
          // A setting 18.16 needs for LowCardinality columns, unknown to 26.x.
          await ch.query(
            raw('SELECT sum(n) AS s FROM t SETTINGS allow_experimental_low_cardinality_type = 1'),
          );
        } finally {
          await root.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
          await root.close();
          await ch.close();
        }
      },
    });
    expect(report.ok).toBe(false);
    const verdicts = Object.fromEntries(report.shapes.map((s) => [s.shape, [s.ok, s.diff, s.error]]));
    expect(verdicts).toMatchObject({
      'SELECT n, toStartOfMinute(ts) AS m FROM t ORDER BY n FORMAT JSONEachRow': [1, 0, 0],
      'SELECT formatDateTime(ts, ?) AS minute FROM t ORDER BY ts FORMAT JSONEachRow': [0, 1, 0],
      'SELECT sum(n) AS s FROM t SETTINGS allow_experimental_low_cardinality_type = ? FORMAT JSONEachRow': [
        0, 0, 1,
      ],
    });
    const differing = report.shapes.find((s) => s.diff > 0)!.failures[0]!;
    expect(differing.detail).toBe('row 0: {"minute":"00"} vs {"minute":"November"}');
    expect(report.shapes.find((s) => s.error > 0)!.failures[0]!.detail).toMatch(
      /^Code: 115\. DB::Exception: Unknown setting 'allow_experimental_low_cardinality_type'/,
    );
  }, 120_000);
});

describe('how the dialect check compares answers', () => {
  it("reads the outer ORDER BY keys, not a subquery's", () => {
    expect(
      outerOrderBy(
        'SELECT time, s FROM (SELECT a FROM t ORDER BY a) ORDER BY time, `s` DESC LIMIT 5\nFORMAT JSONEachRow',
      ),
    ).toEqual(['time', 's']);
    expect(outerOrderBy('SELECT a FROM (SELECT a FROM t ORDER BY a)')).toBeUndefined();
  });

  it('lets rows tied on the ORDER BY keys swap, and nothing else', () => {
    const a = [
      { time: 1, s: 'x', v: 1 },
      { time: 1, s: 'y', v: 2 },
      { time: 2, s: 'x', v: 3 },
    ];
    const tiedSwap = [a[1]!, a[0]!, a[2]!];
    expect(compareRows(a, tiedSwap, ['time']).verdict).toBe('ok');
    expect(compareRows(a, tiedSwap, ['time', 's']).verdict).toBe('diff');
    expect(compareRows(a, [a[2]!, a[0]!, a[1]!], ['time']).verdict).toBe('diff');
    expect(compareRows(a, [a[2]!, a[0]!, a[1]!], undefined).verdict).toBe('ok');
  });

  it('takes a quoted 64-bit integer for the number, floats within 1e-9, and flags anything more', () => {
    expect(compareRows([{ n: '3', f: 0.1 + 0.2 }], [{ n: 3, f: 0.3 }], undefined)).toEqual({
      verdict: 'ok',
      detail: '64-bit integers quoted on the reference only; numbers equal within a relative 1e-9',
    });
    expect(compareRows([{ f: 1.0 }], [{ f: 1.000001 }], undefined).verdict).toBe('diff');
    expect(compareRows([{ n: '3' }], [{ n: '4' }], undefined).verdict).toBe('diff');
    expect(compareRows([{ n: 1 }], [{ m: 1 }], undefined)).toEqual({
      verdict: 'diff',
      detail: 'columns (n) vs (m)',
    });
  });

  it("names a statement's shape without its literals or generated names", () => {
    expect(
      normalizeStatement(
        "SELECT x FROM `tapwire_repair_0123456789ab_mv` WHERE a IN (1, 2, -3) AND b = 'it\\'s' AND route_stats_1m.c > 2.5e3",
      ),
    ).toBe('SELECT x FROM `tapwire_repair_*_mv` WHERE a IN (?, …) AND b = ? AND route_stats_1m.c > ?');
  });
});
