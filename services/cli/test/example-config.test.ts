import { fileURLToPath } from 'node:url';
import { loadConfig } from '@tapwire/config';
import { describe, expect, it } from 'vitest';
import { tapwireConfigSchema } from '../src/cli-config.js';

const example = (name: string) => fileURLToPath(new URL(`../../../examples/${name}`, import.meta.url));

describe('examples/tapwire.yaml', () => {
  it('runs on one machine: the embedded log and DuckDB, one upstream to edit, no token to copy', () => {
    const config = loadConfig(tapwireConfigSchema, { file: example('tapwire.yaml'), env: {} });
    expect([config.log.kind, config.store.kind]).toEqual(['embedded', 'duckdb']);
    expect(config.proxy.upstreams.map((u) => [u.name, u.url])).toEqual([['my-api', 'http://127.0.0.1:3000']]);
    expect(config.proxy.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    // `tapwire start` makes and keeps the token when none is configured.
    expect(config.api.tokens).toEqual([]);
    expect(config.alerter.rulesFile).toBe('examples/alerting.yaml');
  });
});

describe('examples/tapwire.distributed.yaml', () => {
  it('names Kafka and ClickHouse and the ports of each separately run service', () => {
    const config = loadConfig(tapwireConfigSchema, { file: example('tapwire.distributed.yaml'), env: {} });
    expect(config.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(config.clickhouse.url).toBe('http://127.0.0.1:8123');
    expect(config.proxy.upstreams.map((u) => u.name)).toEqual(['my-api']);
    expect(config.proxy.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(config.ingest.admin.port).toBe(9465);
  });
});
