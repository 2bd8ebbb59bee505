import type { ServerCapabilities } from '@tapwire/clickhouse';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** IngestMetrics are the instruments the pipeline updates. */
export interface IngestMetrics {
  readonly registry: Registry;
  event(topic: string, outcome: 'dead_lettered' | 'skipped_duplicate' | 'dropped_invalid_dlq'): void;
  inserted(topic: string, rows: number, seconds: number): void;
  insertFailed(): void;
  /**
   * A table checked against the ledger (after a failed-but-stored insert, or a day audited
   * after an outage or a replay): given the rows again, still disagreeing, or holding more than the ledger.
   */
  rollupChecked(table: string, outcome: 'repaired' | 'mismatch' | 'excess'): void;
}

/**
 * createDetachedIngestMetrics is for a pipeline with no service around it (replay): counters
 * work, gauges read neutral values.
 */
export function createDetachedIngestMetrics(): IngestMetrics {
  return createIngestMetrics({
    bufferedRows: () => 0,
    clickhouseUp: () => true,
    paused: () => false,
    lag: () => [],
    retention: () => ({ lastRunSeconds: 0, droppedPartitions: 0, failures: 0 }),
    clickhouse: () => undefined,
    storeMemory: async () => [],
  });
}

/** createIngestMetrics registers the ingest metrics; gauges read live state at scrape time. */
export function createIngestMetrics(live: {
  bufferedRows: () => number;
  clickhouseUp: () => boolean;
  paused: () => boolean;
  lag: () => { topic: string; partition: number; lag: number }[];
  retention: () => { lastRunSeconds: number; droppedPartitions: number; failures: number };
  clickhouse: () => ServerCapabilities | undefined;
  /** The embedded database's own memory per tag (none for ClickHouse). */
  storeMemory: () => Promise<{ tag: string; bytes: number; temporaryBytes: number }[]>;
}): IngestMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tapwire_ingest_process_' });
  const events = new Counter({
    name: 'tapwire_ingest_events_total',
    help: 'Events read, by topic and outcome (inserted, dead_lettered, skipped_duplicate).',
    labelNames: ['topic', 'outcome'],
    registers: [registry],
  });
  const insertSeconds = new Histogram({
    name: 'tapwire_ingest_insert_duration_seconds',
    help: 'Duration of one ClickHouse insert, by topic.',
    labelNames: ['topic'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const failures = new Counter({
    name: 'tapwire_ingest_insert_failures_total',
    help: 'Failed insert attempts (each is retried).',
    registers: [registry],
  });
  new Gauge({
    name: 'tapwire_ingest_rows_buffered',
    help: 'Rows waiting for their insert.',
    registers: [registry],
    collect() {
      this.set(live.bufferedRows());
    },
  });
  new Gauge({
    name: 'tapwire_ingest_clickhouse_up',
    help: '1 when the last insert succeeded, 0 while inserts fail.',
    registers: [registry],
    collect() {
      this.set(live.clickhouseUp() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'tapwire_ingest_clickhouse_info',
    help: 'Always 1: the ClickHouse server version and the capabilities in use (1/0), once the server has answered.',
    labelNames: ['version', 'query_params', 'ttl'],
    registers: [registry],
    collect() {
      this.reset();
      const c = live.clickhouse();
      if (c)
        this.set({ version: c.version, query_params: c.queryParams ? '1' : '0', ttl: c.ttl ? '1' : '0' }, 1);
    },
  });
  const storeMemory = new Gauge({
    name: 'tapwire_ingest_duckdb_memory_bytes',
    help: 'Embedded deployment: what DuckDB holds in this process, by tag (BASE_TABLE, HASH_TABLE, …) and kind (memory, or temporary: spilled to disk); bounded by store.memoryLimit.',
    labelNames: ['tag', 'kind'],
    registers: [registry],
    async collect() {
      const tags = await live.storeMemory().catch(() => []);
      storeMemory.reset();
      for (const t of tags) {
        if (t.bytes > 0) storeMemory.set({ tag: t.tag, kind: 'memory' }, t.bytes);
        if (t.temporaryBytes > 0) storeMemory.set({ tag: t.tag, kind: 'temporary' }, t.temporaryBytes);
      }
    },
  });
  new Gauge({
    name: 'tapwire_ingest_consumption_paused',
    help: '1 while consumption is paused (buffer full or ClickHouse failing).',
    registers: [registry],
    collect() {
      this.set(live.paused() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'tapwire_ingest_consumer_lag',
    help: 'Messages behind the high watermark, by topic and partition.',
    labelNames: ['topic', 'partition'],
    registers: [registry],
    collect() {
      this.reset();
      for (const l of live.lag()) this.set({ topic: l.topic, partition: String(l.partition) }, l.lag);
    },
  });
  new Gauge({
    name: 'tapwire_ingest_retention_last_run_timestamp_seconds',
    help: 'When the retention job last ran (0: never).',
    registers: [registry],
    collect() {
      this.set(live.retention().lastRunSeconds);
    },
  });
  new Counter({
    name: 'tapwire_ingest_retention_dropped_partitions_total',
    help: 'Day partitions dropped by the retention job.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(live.retention().droppedPartitions);
    },
  });
  const rollupChecks = new Counter({
    name: 'tapwire_ingest_rollup_checks_total',
    help: 'Tables checked against the ledger, by outcome: repaired (a rollup missed a stored insert and was given it), mismatch (short of the ledger) or excess (above it: deleted data came back or was inserted twice); rebuild with tapwire replay --clear.',
    labelNames: ['table', 'outcome'],
    registers: [registry],
  });
  return {
    registry,
    event: (topic, outcome) => events.inc({ topic, outcome }),
    rollupChecked: (table, outcome) => rollupChecks.inc({ table, outcome }),
    inserted(topic, rows, seconds) {
      events.inc({ topic, outcome: 'inserted' }, rows);
      insertSeconds.observe({ topic }, seconds);
    },
    insertFailed: () => failures.inc(),
  };
}
