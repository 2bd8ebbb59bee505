import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readMigrations, splitStatements, stripComments } from '@tapwire/clickhouse';
import { describe, expect, it } from 'vitest';

const MIGRATIONS = fileURLToPath(new URL('../../../migrations', import.meta.url));

function dirWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-mig-unit-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe('splitStatements', () => {
  it('splits at semicolons outside quotes and comments', () => {
    expect(
      splitStatements(
        "-- head; comment\nSELECT ';' AS a;\n/* ; */ SELECT `x;y` FROM t;\n\nSELECT 'it\\'s;'\n-- tail\n",
      ),
    ).toEqual([
      "-- head; comment\nSELECT ';' AS a",
      '/* ; */ SELECT `x;y` FROM t',
      "SELECT 'it\\'s;'\n-- tail",
    ]);
  });
  it('drops statements that are only comments or blank', () => {
    expect(splitStatements('  ;\n-- nothing\n;')).toEqual([]);
  });
});

describe('readMigrations', () => {
  it('reads the shipped migrations in order, each guarded for re-runs', () => {
    const migrations = readMigrations(MIGRATIONS);
    expect(migrations.map((m) => m.file)).toEqual([
      '0001_raw_tables.sql',
      '0002_trace_index.sql',
      '0003_route_stats_1m.sql',
      '0004_saturation_1m.sql',
      '0005_pipeline_tables.sql',
      '0006_saturation_dropped.sql',
      '0007_route_histograms.sql',
      '0008_alert_history.sql',
      '0009_source_ledger.sql',
      '0010_slo_counts.sql',
      '0011_span_v2.sql',
      '0012_policy_decisions.sql',
    ]);
    expect(migrations.map((m) => m.statements.length)).toEqual([3, 2, 2, 4, 3, 1, 4, 1, 11, 4, 6, 14]);
    for (const m of migrations) expect(m.checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  it('uses only SQL that ClickHouse 18.16 and 24.x both accept', () => {
    const forbidden = [
      /DateTime64/i,
      /\bMap\(/,
      /\bTTL\b/i,
      /\bCODEC\(/i,
      /LowCardinality/i,
      /\bJSONExtract/i,
      /ON CLUSTER/i,
      /ENGINE\s*=\s*Atomic/i,
      /toStartOfInterval/i,
      /\bINDEX\b.*\bTYPE\b/i,
    ];
    for (const m of readMigrations(MIGRATIONS)) {
      for (const s of m.statements)
        for (const f of forbidden) expect(stripComments(s), `${m.file}: ${f}`).not.toMatch(f);
    }
  });

  it('refuses bad names, duplicate versions and unguarded DDL, naming the file', () => {
    expect(() => readMigrations(dirWith({ '1_x.sql': 'SELECT 1' }))).toThrow(
      'invalid migration file: 1_x.sql: name must be NNNN_lower_snake_case.sql',
    );
    expect(() => readMigrations(dirWith({ '0001_a.sql': 'SELECT 1', '0001_b.sql': 'SELECT 1' }))).toThrow(
      '0001_b.sql: version 1 also used by 0001_a.sql',
    );
    expect(() =>
      readMigrations(dirWith({ '0001_a.sql': 'CREATE TABLE t (x UInt8) ENGINE = Memory' })),
    ).toThrow('0001_a.sql statement 1: CREATE must say IF NOT EXISTS');
    expect(() => readMigrations(dirWith({ '0001_a.sql': 'SELECT 1;\n-- x\nDROP TABLE t' }))).toThrow(
      '0001_a.sql statement 2: DROP must say IF EXISTS',
    );
    expect(() => readMigrations(dirWith({ '0001_a.sql': '-- only a comment\n' }))).toThrow(
      '0001_a.sql: no statements',
    );
  });
});
