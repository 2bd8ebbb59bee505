import {
  type KafkaConfig,
  kafkaConfigSchema,
  type TelemetryConfig,
  telemetryConfigSchema,
} from '@tapwire/config';
import {
  createKafkaClient,
  createKafkaEventSink,
  createThreadedKafkaEventSink,
  openDiskSpool,
} from '@tapwire/kafka';
import type { EventLog } from '@tapwire/stream';
import { createLogger, startTracing, stopOnSignals } from '@tapwire/telemetry';
import { z } from 'zod';
import { buildProxy, type TapwireProxy } from './app.js';
import { type ProxyConfig, proxyConfigSchema } from './config.js';

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

/**
 * runProxyService wires logger and tracing, the Kafka sink with its disk spool, and the proxy,
 * then starts it. `handleSignals` installs SIGTERM/SIGINT handlers that stop it gracefully.
 */
export async function runProxyService(
  config: ProxyServiceConfig,
  options: { handleSignals?: boolean; topicPrefix?: string; log?: EventLog } = {},
): Promise<RunningProxy> {
  const logger = createLogger({
    name: config.telemetry.serviceName ?? 'tapwire-proxy',
    level: config.telemetry.logLevel,
  });
  const tracing = await startTracing(config.telemetry, { serviceName: 'tapwire-proxy' });
  const emit = config.proxy.emit;
  const sinkConfig = {
    lingerMs: emit.lingerMs,
    maxBatchEvents: emit.maxBatchEvents,
    maxBufferedEvents: emit.maxBufferedEvents,
    retryBackoffMs: 200,
    compression: emit.compression,
  };
  const spool = emit.spoolMaxBytes > 0 ? { dir: emit.spoolDir, maxBytes: emit.spoolMaxBytes } : undefined;
  // The proxy builds its events from typed fields; ingest validates every event it reads anyway.
  const topicPrefix = options.topicPrefix ?? config.proxy.emit.topicPrefix;
  const encoding = { validate: false, ...(topicPrefix ? { topicPrefix } : {}) };
  const sink =
    options.log?.kind === 'embedded'
      ? options.log.sink({ ...sinkConfig, ...encoding })
      : emit.producerThread
        ? createThreadedKafkaEventSink(
            { logger },
            {
              kafka: config.kafka,
              clientIdSuffix: 'proxy',
              threadNice: emit.producerThreadNice,
              sink: sinkConfig,
              ...(spool ? { spool } : {}),
              ...encoding,
            },
          )
        : createKafkaEventSink(
            { kafka: createKafkaClient(config.kafka, logger, 'proxy'), logger },
            { ...sinkConfig, ...encoding, ...(spool ? { spool: openDiskSpool(spool) } : {}) },
          );
  const proxy = buildProxy({ sink, logger }, config.proxy);
  const { proxyUrl, adminUrl } = await proxy.start();

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      logger.info({}, 'stopping proxy');
      await proxy.close();
      await sink.close(config.proxy.shutdownGraceMs);
      logger.info({ ...sink.stats() }, 'event sink closed');
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
