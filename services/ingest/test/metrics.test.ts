import { capabilitiesOf, type ServerCapabilities } from '@tapwire/clickhouse';
import { describe, expect, it } from 'vitest';
import { createIngestMetrics } from '../src/metrics.js';

function metricsWith(
  clickhouse: ServerCapabilities | undefined,
  storeMemory: () => Promise<{ tag: string; bytes: number; temporaryBytes: number }[]> = async () => [],
) {
  return createIngestMetrics({
    bufferedRows: () => 0,
    clickhouseUp: () => true,
    paused: () => false,
    lag: () => [],
    retention: () => ({ lastRunSeconds: 0, droppedPartitions: 0, failures: 0 }),
    clickhouse: () => clickhouse,
    storeMemory,
  });
}

describe('tapwire_ingest_clickhouse_info', () => {
  it('shows the server version and the capabilities in use', async () => {
    const text = await metricsWith(capabilitiesOf('26.9.2.1')).registry.metrics();
    expect(text).toMatch(
      /^tapwire_ingest_clickhouse_info\{version="26\.9\.2\.1",query_params="1",ttl="1"\} 1$/m,
    );
    const old = await metricsWith(capabilitiesOf('19.11.3.11')).registry.metrics();
    expect(old).toMatch(
      /^tapwire_ingest_clickhouse_info\{version="19\.11\.3\.11",query_params="1",ttl="0"\} 1$/m,
    );
  });

  it('has no sample until the server has answered', async () => {
    const text = await metricsWith(undefined).registry.metrics();
    expect(text).toContain('# TYPE tapwire_ingest_clickhouse_info gauge');
    expect(text).not.toMatch(/^tapwire_ingest_clickhouse_info\{/m);
  });
});

describe('tapwire_ingest_duckdb_memory_bytes', () => {
  it('shows what the embedded database holds per tag, in memory and spilled, leaving out empty tags', async () => {
    const text = await metricsWith(undefined, async () => [
      { tag: 'BASE_TABLE', bytes: 1_048_576, temporaryBytes: 0 },
      { tag: 'HASH_TABLE', bytes: 0, temporaryBytes: 0 },
      { tag: 'ORDER_BY', bytes: 4096, temporaryBytes: 8192 },
    ]).registry.metrics();
    const samples = text.split('\n').filter((l) => l.startsWith('tapwire_ingest_duckdb_memory_bytes{'));
    expect(samples).toEqual([
      'tapwire_ingest_duckdb_memory_bytes{tag="BASE_TABLE",kind="memory"} 1048576',
      'tapwire_ingest_duckdb_memory_bytes{tag="ORDER_BY",kind="memory"} 4096',
      'tapwire_ingest_duckdb_memory_bytes{tag="ORDER_BY",kind="temporary"} 8192',
    ]);
  });

  it('has no sample on ClickHouse, or when the database does not answer', async () => {
    expect(await metricsWith(undefined).registry.metrics()).not.toMatch(
      /^tapwire_ingest_duckdb_memory_bytes\{/m,
    );
    const failing = await metricsWith(undefined, () =>
      Promise.reject(new Error('closed')),
    ).registry.metrics();
    expect(failing).not.toMatch(/^tapwire_ingest_duckdb_memory_bytes\{/m);
  });
});
