import {
  type KafkaConfig,
  kafkaConfigSchema,
  type TelemetryConfig,
  telemetryConfigSchema,
} from '@tapwire/config';
import { openEmission } from '@tapwire/emission';
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
  const emission = await openEmission(
    { emit: config.proxy.emit, kafka: config.kafka, section: 'proxy' },
    logger,
    topicPrefix,
    options.log,
  );
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
