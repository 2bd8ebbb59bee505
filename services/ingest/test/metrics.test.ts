import { capabilitiesOf, type ServerCapabilities } from '@tapwire/clickhouse';
import { describe, expect, it } from 'vitest';
import { createIngestMetrics } from '../src/metrics.js';

function metricsWith(clickhouse: ServerCapabilities | undefined) {
  return createIngestMetrics({
    bufferedRows: () => 0,
    clickhouseUp: () => true,
    paused: () => false,
    lag: () => [],
    retention: () => ({ lastRunSeconds: 0, droppedPartitions: 0, failures: 0 }),
    clickhouse: () => clickhouse,
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
