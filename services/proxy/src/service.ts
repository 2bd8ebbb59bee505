import {
  type KafkaConfig,
  kafkaConfigSchema,
  type TelemetryConfig,
  telemetryConfigSchema,
} from '@tapwire/config';
import { createKafkaClient, createKafkaShipper, type Shipper } from '@tapwire/kafka';
import { createWriteFirstSink, type FileLog, LogError, openFileLog } from '@tapwire/log';
import type { EventLog, EventSink } from '@tapwire/stream';
import { createLogger, type Logger, startTracing, stopOnSignals } from '@tapwire/telemetry';
import { z } from 'zod';
import { buildProxy, type TapwireProxy } from './app.js';
import { type ProxyConfig, proxyConfigSchema } from './config.js';
import { type EmissionStats, writtenOnly } from './emission.js';

// Beyond the grace periods: closing the upstream pools, admin server and tracing.
const SHUTDOWN_SLACK_MS = 10_000;

/** proxyServiceConfigSchema is what the proxy process reads: its own section plus Kafka and telemetry. */
export const proxyServiceConfigSchema = z.object({
  proxy: proxyConfigSchema,
  kafka: kafkaConfigSchema,
  telemetry: telemetryConfigSchema,
});

/** ProxyServiceConfig is the validated configuration of the proxy process. */
export interface ProxyServiceConfig {
  proxy: ProxyConfig;
  kafka: KafkaConfig;
  telemetry: TelemetryConfig;
}

/** RunningProxy is a started proxy process; stop() closes everything in reverse order. */
export interface RunningProxy {
  readonly proxy: TapwireProxy;
  readonly proxyUrl: string;
  readonly adminUrl: string;
  stop(): Promise<void>;
}

/** Emission is the proxy's event path: the sink the request path writes to, and where its events are. */
export interface Emission {
  readonly sink: EventSink;
  stats(): EmissionStats;
  /** close writes what is pending and ships for up to `deadlineMs` (what is left stays in the local log). */
  close(deadlineMs: number): Promise<void>;
}

/** Segments of the proxy's local log: small enough that shipped data is deleted soon after. */
const LOCAL_SEGMENT_BYTES = 16 * 1024 * 1024;

/**
 * openEmission opens the write-first path. Embedded deployment: events are written straight into
 * the shared log, which ingest reads. Kafka deployment: into the proxy's own local log, which a
 * shipper moves to Kafka in batched records.
 */
export async function openEmission(
  config: Pick<ProxyServiceConfig, 'proxy' | 'kafka'>,
  logger: Logger,
  topicPrefix: string,
  log?: EventLog,
): Promise<Emission> {
  const emit = config.proxy.emit;
  // The proxy builds its events from typed fields; ingest validates every event it reads anyway.
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
    if (err instanceof LogError && err.code === 'TAPWIRE_LOG_LOCKED')
      throw new LogError(
        err.code,
        `${err.message.replace(/^TAPWIRE_LOG_LOCKED: /, '').replace(/;.*$/, '')}: each proxy process needs its own local log folder, proxy.emit.logDir (TAPWIRE_PROXY_EMIT_LOG_DIR)`,
      );
    throw err;
  }
  const sink = createWriteFirstSink(local, { ...encoding, logger });
  let shipper: Shipper;
  try {
    shipper = createKafkaShipper({ kafka: createKafkaClient(config.kafka, logger, 'proxy'), logger }, local, {
      maxBatchEvents: emit.maxBatchEvents,
      maxBatchBytes: emit.maxBatchBytes,
      lingerMs: emit.lingerMs,
      maxBytes: emit.logMaxBytes,
      compression: emit.compression,
      retryBackoffMs: 200,
    });
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

/**
 * runProxyService wires logger and tracing, the write-first event path, and the proxy,
 * then starts it. `handleSignals` installs SIGTERM/SIGINT handlers that stop it gracefully.
 */
export async function runProxyService(
  config: ProxyServiceConfig,
  options: { handleSignals?: boolean; topicPrefix?: string; log?: EventLog } = {},
): Promise<RunningProxy> {
  const logger = createLogger({
    name: config.telemetry.serviceName ?? 'tapwire-proxy',
    level: config.telemetry.logLevel,
    format: config.telemetry.logFormat,
  });
  const tracing = await startTracing(config.telemetry, { serviceName: 'tapwire-proxy' });
  const topicPrefix = options.topicPrefix ?? config.proxy.emit.topicPrefix;
  const emission = await openEmission(config, logger, topicPrefix, options.log);
  let proxy: TapwireProxy;
  let urls: { proxyUrl: string; adminUrl: string };
  try {
    proxy = buildProxy({ sink: emission.sink, logger, emission: emission.stats }, config.proxy);
    urls = await proxy.start();
  } catch (err) {
    await emission.close(0);
    await tracing.shutdown();
    throw err;
  }
  const { proxyUrl, adminUrl } = urls;

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      logger.info({}, 'stopping proxy');
      await proxy.close();
      await emission.close(config.proxy.shutdownGraceMs);
      logger.info({ ...emission.stats() }, 'events written and shipped');
      await tracing.shutdown();
      logger.flush();
    })();
    return stopping;
  };
  // close() waits up to the grace period for in-flight requests, the sink as long again for delivery.
  if (options.handleSignals)
    stopOnSignals(stop, { deadlineMs: 2 * config.proxy.shutdownGraceMs + SHUTDOWN_SLACK_MS });
  return { proxy, proxyUrl, adminUrl, stop };
}
