import { knownCapabilities } from '@tapwire/clickhouse';
import type { ConsumerRunner, EventSink, LogSource } from '@tapwire/stream';
import { type AdminServer, createAdminServer, type Logger } from '@tapwire/telemetry';
import type { IngestConfig } from './config.js';
import { createIngestMetrics } from './metrics.js';
import { createIngestPipeline, type IngestPipeline } from './pipeline.js';
import { createRetentionJob } from './retention.js';
import type { Warehouse } from './warehouse.js';

/** Ingest is a built ingest process: pipeline, retention job, admin server and lifecycle. */
export interface Ingest {
  readonly pipeline: IngestPipeline;
  readonly retention: ReturnType<typeof createRetentionJob>;
  readonly admin: AdminServer;
  start(): Promise<{ adminUrl: string }>;
  /** close inserts and commits what is buffered (within shutdownGraceMs), then leaves the group. */
  close(): Promise<void>;
}

/** buildIngest wires the consumer group (on Kafka or the embedded log), the pipeline, lag sampling, retention and admin endpoints. */
export function buildIngest(
  deps: { source: LogSource; warehouse: Warehouse; dlq: EventSink; logger: Logger },
  config: IngestConfig,
): Ingest {
  let runnerRef: ConsumerRunner | undefined;
  let retentionRef: ReturnType<typeof createRetentionJob> | undefined;
  let pipelineRef: IngestPipeline | undefined;
  const clickhouse = knownCapabilities(deps.warehouse, deps.logger);
  const metrics = createIngestMetrics({
    bufferedRows: () => pipelineRef?.stats().bufferedRows ?? 0,
    clickhouseUp: () => pipelineRef?.stats().clickhouseUp ?? false,
    paused: () => runnerRef?.paused ?? false,
    lag: () => runnerRef?.lag() ?? [],
    retention: () => retentionRef?.state() ?? { lastRunSeconds: 0, droppedPartitions: 0, failures: 0 },
    clickhouse: () => clickhouse.current(),
    storeMemory: () => deps.warehouse.memory(),
  });
  const pipeline = createIngestPipeline(
    { warehouse: deps.warehouse, dlq: deps.dlq, logger: deps.logger, metrics },
    config,
  );
  pipelineRef = pipeline;
  const runner = deps.source.runner(
    { groupId: config.groupId, topics: pipeline.topics(), fromBeginning: true },
    { onBatch: pipeline.onBatch, onAssigned: pipeline.onAssigned },
  );
  runnerRef = runner;
  pipeline.attach(runner);
  const retention = createRetentionJob(
    { warehouse: deps.warehouse, logger: deps.logger, instance: pipeline.instance },
    config.retention,
  );
  retentionRef = retention;
  let started = false;
  const admin = createAdminServer({
    section: 'ingest.admin',
    host: config.admin.host,
    port: config.admin.port,
    registry: metrics.registry,
    readiness: () => {
      const s = pipeline.stats();
      return {
        ready: started && s.clickhouseUp,
        // On ClickHouse, the server's version and what ingest uses of it, once known.
        store: { kind: deps.warehouse.kind, ok: s.clickhouseUp, ...clickhouse.current() },
        paused: runner.paused,
      };
    },
  });

  let lagTimer: NodeJS.Timeout | undefined;
  async function sampleLag(): Promise<void> {
    const ts = Math.floor(Date.now() / 1000);
    const rows = runner.lag().map((l) => ({
      ts,
      consumer_group: config.groupId,
      topic: l.topic,
      partition: l.partition,
      high_watermark: l.highWatermark,
      consumed: l.consumed,
      lag: l.lag,
      instance: pipeline.instance,
    }));
    await deps.warehouse.insertRows('consumer_lag', rows).catch((err: Error) => {
      deps.logger.debug({ err: err.message }, 'could not record consumer lag');
    });
  }

  let closing: Promise<void> | undefined;
  return {
    pipeline,
    retention,
    admin,
    async start() {
      const adminUrl = await admin.listen();
      // The server version and capabilities go to the log now, to /readyz and /metrics once known.
      clickhouse.current();
      await runner.start();
      pipeline.start();
      retention.start();
      lagTimer = setInterval(() => void sampleLag(), config.lagSampleIntervalMs);
      lagTimer.unref();
      started = true;
      deps.logger.info({ adminUrl, topics: pipeline.topics(), groupId: config.groupId }, 'ingest running');
      return { adminUrl };
    },
    close() {
      closing ??= (async () => {
        started = false;
        if (lagTimer) clearInterval(lagTimer);
        runner.pause();
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          pipeline
            .stop()
            .catch((err: Error) => deps.logger.error({ err: err.message }, 'final flush failed')),
          new Promise<void>((r) => {
            timer = setTimeout(r, config.shutdownGraceMs);
          }),
        ]);
        clearTimeout(timer);
        await runner.close();
        await retention.stop();
        await admin.close();
        deps.logger.info({ ...pipeline.stats() }, 'ingest stopped');
      })();
      return closing;
    },
  };
}
