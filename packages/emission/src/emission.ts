import { ENV_PREFIX, envVarName, type KafkaConfig } from '@tapwire/config';
import { createKafkaClient, createKafkaShipper, type Shipper } from '@tapwire/kafka';
import { createWriteFirstSink, type FileLog, LogError, openFileLog } from '@tapwire/log';
import type { EventLog, EventSink } from '@tapwire/stream';
import type { Logger } from '@tapwire/telemetry';
import { type EmissionStats, writtenOnly } from './emission-stats.js';
import type { EmitConfig } from './emit-config.js';

/** Emission is a service's event path: the sink its request path writes to, and where its events are. */
export interface Emission {
  readonly sink: EventSink;
  stats(): EmissionStats;
  /** close writes what is pending and ships for up to `deadlineMs` (what is left stays in the local log). */
  close(deadlineMs: number): Promise<void>;
}

/** EmissionConfig is what openEmission needs: the service's emit settings, Kafka, and who it is. */
export interface EmissionConfig {
  readonly emit: EmitConfig;
  readonly kafka: KafkaConfig;
  /** Config section of the service (proxy, otlp): names its settings in errors and its Kafka client. */
  readonly section: string;
}

/** Segments of a service's local log: small enough that shipped data is deleted soon after. */
const LOCAL_SEGMENT_BYTES = 16 * 1024 * 1024;

/**
 * openEmission opens the write-first path. Embedded deployment: events are written straight into
 * the shared log, which ingest reads. Kafka deployment: into the service's own local log, which a
 * shipper moves to Kafka in batched records. Either way the sink is write-first: `flush()` has
 * appended every event emitted before it by the time it returns.
 */
export async function openEmission(
  config: EmissionConfig,
  logger: Logger,
  topicPrefix: string,
  log?: EventLog,
): Promise<Emission> {
  const emit = config.emit;
  // Services build their events from typed fields; ingest validates every event it reads anyway.
  const encoding = { validate: false, ...(topicPrefix ? { topicPrefix } : {}) };
  if (log?.kind === 'embedded') {
    const sink = log.sink({
      lingerMs: 0,
      maxBatchEvents: 1,
      maxBufferedEvents: 1,
      retryBackoffMs: 0,
      ...encoding,
    });
    return { sink, stats: writtenOnly(sink), close: (deadlineMs) => sink.close(deadlineMs) };
  }
  let local: FileLog;
  try {
    local = await openFileLog({
      dir: emit.logDir,
      fsync: emit.fsyncIntervalMs === 0 ? 'always' : 'interval',
      fsyncIntervalMs: emit.fsyncIntervalMs || 1000,
      segmentBytes: LOCAL_SEGMENT_BYTES,
    });
  } catch (err) {
    if (err instanceof LogError && err.code === 'TAPWIRE_LOG_LOCKED') {
      const setting = `${config.section}.emit.logDir`;
      throw new LogError(
        err.code,
        `${err.message.replace(/^TAPWIRE_LOG_LOCKED: /, '').replace(/;.*$/, '')}: each ${config.section} process needs its own local log folder, ${setting} (${envVarName(ENV_PREFIX, setting.split('.'))})`,
      );
    }
    throw err;
  }
  const sink = createWriteFirstSink(local, { ...encoding, logger });
  let shipper: Shipper;
  try {
    shipper = createKafkaShipper(
      { kafka: createKafkaClient(config.kafka, logger, config.section), logger },
      local,
      {
        maxBatchEvents: emit.maxBatchEvents,
        maxBatchBytes: emit.maxBatchBytes,
        lingerMs: emit.lingerMs,
        maxBytes: emit.logMaxBytes,
        compression: emit.compression,
        retryBackoffMs: 200,
      },
    );
    shipper.start();
  } catch (err) {
    await local.close();
    throw err;
  }
  logger.info(
    { dir: local.dir, source: local.id },
    'events are written to the local log first, then shipped to Kafka',
  );
  return {
    sink,
    stats() {
      const w = sink.stats();
      const s = shipper.stats();
      return {
        written: w.delivered,
        invalid: w.invalid,
        writeDropped: w.dropped,
        writeErrors: w.sendErrors,
        delivered: s.shippedEvents,
        shippedBatches: s.shippedBatches,
        unshippedEvents: s.unshippedEvents,
        unshippedBytes: s.unshippedBytes,
        capacityBytes: emit.logMaxBytes,
        lagSeconds: s.lagSeconds,
        capacityDropped: s.droppedEvents,
        shipErrors: s.sendErrors,
      };
    },
    async close(deadlineMs) {
      await sink.close(deadlineMs);
      await shipper.stop(deadlineMs);
      await local.close();
    },
  };
}
