import { setFlagsFromString } from 'node:v8';
import { createClickHouse } from '@tapwire/clickhouse';
import {
  type ClickHouseConfig,
  clickhouseConfigSchema,
  type KafkaConfig,
  kafkaConfigSchema,
  type TelemetryConfig,
  telemetryConfigSchema,
} from '@tapwire/config';
import { createKafkaClient, kafkaSource } from '@tapwire/kafka';
import type { EventLog } from '@tapwire/stream';
import { createLogger, startTracing, stopOnSignals } from '@tapwire/telemetry';
import { z } from 'zod';
import { buildIngest, type Ingest } from './app.js';
import { type IngestConfig, ingestConfigSchema } from './config.js';
import { clickhouseWarehouse, type Warehouse } from './warehouse.js';
import { hostIngest } from './worker-host.js';

/** ingestServiceConfigSchema is what the ingest process reads. */
export const ingestServiceConfigSchema = z.object({
  ingest: ingestConfigSchema,
  kafka: kafkaConfigSchema,
  clickhouse: clickhouseConfigSchema,
  telemetry: telemetryConfigSchema,
});

/** IngestServiceConfig is the validated configuration of the ingest process. */
export interface IngestServiceConfig {
  ingest: IngestConfig;
  kafka: KafkaConfig;
  clickhouse: ClickHouseConfig;
  telemetry: TelemetryConfig;
}

// After the grace period for the final insert: up to 5 s to leave the consumer group
// (consumer-runner.ts) and 5 s to flush the DLQ producer, whatever Kafka does.
const SHUTDOWN_AFTER_GRACE_MS = 10_000;

/** shutdownDeadlineMs is how long after SIGTERM an ingest process exits at the latest. */
function shutdownDeadlineMs(config: Pick<IngestConfig, 'shutdownGraceMs'>): number {
  return config.shutdownGraceMs + SHUTDOWN_AFTER_GRACE_MS;
}

/** RunningIngest is a started ingest process. */
export interface RunningIngest {
  readonly ingest: Ingest;
  readonly adminUrl: string;
  stop(): Promise<void>;
}

/**
 * runIngestProcess is what `tapwire ingest` runs: the pipeline on a heap-capped worker thread
 * (or on this thread when heapLimitMb is 0), stopped gracefully on SIGTERM/SIGINT; the process
 * exits non-zero if the worker dies, so a supervisor restarts it (the ledger makes that safe).
 */
export async function runIngestProcess(config: IngestServiceConfig): Promise<void> {
  if (config.ingest.heapLimitMb === 0) {
    await runIngestService(config, { handleSignals: true });
    return;
  }
  // Let the worker's old generation grow to twice its live size between full collections
  // (V8 picks 1.1–1.5× for a small heap). A fetch's messages outlive a few scavenges and are
  // promoted, so at a backlog's rate the default ran a mark-compact every ~100 ms, and the GC
  // threads took a third of a core. Ingest benchmark, interleaved pairs: 82–89k events/s instead
  // of 67–75k, peak RSS about +25 MB. Process-wide, so only for `tapwire ingest`'s own process,
  // before the worker starts.
  setFlagsFromString('--heap-growing-percent=100');
  const hosted = await hostIngest(config);
  let stopping = false;
  stopOnSignals(
    () => {
      stopping = true;
      return hosted.stop();
    },
    { deadlineMs: shutdownDeadlineMs(config.ingest) },
  );
  void hosted.exited.then((code) => {
    // A stopped worker is terminated (worker-host.ts), which reports code 1; a crash while
    // stopping rejects stop() instead, and stopOnSignals exits with 1.
    if (code !== 0 && !stopping) {
      process.stderr.write(`tapwire ingest: worker exited with code ${code}\n`);
      process.exit(1);
    }
  });
}

/**
 * runIngestService wires logger and tracing, Kafka (consumer group and DLQ producer), ClickHouse
 * and the pipeline, then starts it; with handleSignals, SIGTERM/SIGINT stop it gracefully.
 */
export async function runIngestService(
  config: IngestServiceConfig,
  options: { handleSignals?: boolean; inWorker?: boolean; log?: EventLog; warehouse?: Warehouse } = {},
): Promise<RunningIngest> {
  const logger = createLogger({
    name: config.telemetry.serviceName ?? 'tapwire-ingest',
    level: config.telemetry.logLevel,
    format: config.telemetry.logFormat,
    // The host terminates the worker once it has stopped (worker-host.ts), which would drop
    // lines still queued for an asynchronous write, the last ones ('ingest stopped') among them.
    sync: options.inWorker ?? false,
  });
  const tracing = await startTracing(config.telemetry, { serviceName: 'tapwire-ingest' });
  const log =
    options.log ?? kafkaSource({ kafka: createKafkaClient(config.kafka, logger, 'ingest'), logger });
  const warehouse = options.warehouse ?? clickhouseWarehouse(createClickHouse(config.clickhouse));
  const dlq = log.sink({
    lingerMs: 20,
    maxBatchEvents: 500,
    maxBufferedEvents: 100_000,
    retryBackoffMs: 200,
    topicPrefix: config.ingest.topicPrefix,
  });
  const ingest = buildIngest({ source: log, warehouse, dlq, logger }, config.ingest);
  let adminUrl: string;
  try {
    ({ adminUrl } = await ingest.start());
  } catch (err) {
    // The admin port is taken, say: let go of what was opened, so the process can exit with the reason.
    await dlq.close(0);
    await warehouse.close();
    await tracing.shutdown();
    throw err;
  }
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      logger.info({}, 'stopping ingest');
      await ingest.close();
      await dlq.close(5000);
      await warehouse.close();
      await tracing.shutdown();
      logger.flush();
    })();
    return stopping;
  };
  if (options.handleSignals) stopOnSignals(stop, { deadlineMs: shutdownDeadlineMs(config.ingest) });
  return { ingest, adminUrl, stop };
}
