import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { distributedConfig, loadTapwireConfig, serviceConfig } from '../src/cli-config.js';

// Which parts a command runs on, from the settings given (process.env is what the loader reads).
const saved = { ...process.env };
afterEach(() => {
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
});

function clearTapwireEnv() {
  for (const k of Object.keys(process.env)) if (k.startsWith('TAPWIRE_')) delete process.env[k];
}

function file(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'tapwire-select-')), 'tapwire.yaml');
  writeFileSync(path, text);
  return path;
}

const kinds = (c: { log: { kind: string }; store: { kind: string } }) => [c.log.kind, c.store.kind];

describe('deployment selection', () => {
  it('with no Kafka or ClickHouse settings, start runs on the embedded log and DuckDB', () => {
    clearTapwireEnv();
    expect(kinds(loadTapwireConfig(undefined))).toEqual(['embedded', 'duckdb']);
    expect(kinds(loadTapwireConfig(file('log:\n  dir: /tmp/x\nstore:\n  path: /tmp/x.duckdb\n')))).toEqual([
      'embedded',
      'duckdb',
    ]);
  });

  it('a kafka or clickhouse setting (file or env) selects that part of the distributed deployment', () => {
    clearTapwireEnv();
    expect(kinds(loadTapwireConfig(file('kafka:\n  brokers: [k:9092]\n')))).toEqual(['kafka', 'duckdb']);
    process.env.TAPWIRE_CLICKHOUSE_URL = 'http://ch:8123';
    expect(kinds(loadTapwireConfig(file('kafka:\n  brokers: [k:9092]\n')))).toEqual(['kafka', 'clickhouse']);
    process.env.TAPWIRE_STORE_KIND = 'duckdb';
    expect(kinds(loadTapwireConfig(undefined))).toEqual(['embedded', 'duckdb']);
  });

  it('separate services and topics/migrate mean Kafka and ClickHouse; an explicit embedded part is refused naming the key', () => {
    clearTapwireEnv();
    expect(kinds(serviceConfig(undefined, 'api'))).toEqual(['kafka', 'clickhouse']);
    expect(kinds(distributedConfig(undefined))).toEqual(['kafka', 'clickhouse']);
    process.env.TAPWIRE_STORE_KIND = 'duckdb';
    expect(() => serviceConfig(undefined, 'api')).toThrow(/store\.kind is duckdb: `tapwire api`/);
    // The proxy and the OTLP receiver only write events: the store setting is not their concern.
    expect(kinds(serviceConfig(undefined, 'proxy'))).toEqual(['kafka', 'duckdb']);
    expect(kinds(serviceConfig(undefined, 'otlp'))).toEqual(['kafka', 'duckdb']);
    process.env.TAPWIRE_LOG_KIND = 'embedded';
    expect(() => serviceConfig(undefined, 'proxy')).toThrow(/log\.kind is embedded/);
    expect(() => serviceConfig(undefined, 'otlp')).toThrow(/log\.kind is embedded: `tapwire otlp`/);
  });
});
