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
import { type OtlpConfig, otlpConfigSchema } from './config.js';
import {
  buildOtlpReceiver,
  type OtlpReceiver,
  type OtlpReceiverStats,
  type OtlpReceiverUrls,
} from './receiver.js';

// Beyond the grace periods: closing the admin server and tracing.
const SHUTDOWN_SLACK_MS = 10_000;

/** otlpServiceConfigSchema is what the receiver process reads: its own section plus Kafka and telemetry. */
export const otlpServiceConfigSchema = z.object({
  otlp: otlpConfigSchema,
  kafka: kafkaConfigSchema,
  telemetry: telemetryConfigSchema,
});

/** OtlpServiceConfig is the validated configuration of the receiver process. */
export interface OtlpServiceConfig {
  otlp: OtlpConfig;
  kafka: KafkaConfig;
  telemetry: TelemetryConfig;
}

/** RunningOtlpService is a started receiver process; stop() closes everything in reverse order. */
export interface RunningOtlpService extends OtlpReceiverUrls {
  readonly receiver: OtlpReceiver;
  stats(): OtlpReceiverStats;
  stop(): Promise<void>;
}

/**
 * runOtlpService wires logger and tracing, the write-first event path (its own local log shipped
 * to Kafka, or the embedded `log`), and the receiver, then starts it. `handleSignals` installs
 * SIGTERM/SIGINT handlers that stop it gracefully.
 */
export async function runOtlpService(
  config: OtlpServiceConfig,
  options: { log?: EventLog; topicPrefix?: string; handleSignals?: boolean } = {},
): Promise<RunningOtlpService> {
  const logger = createLogger({
    name: config.telemetry.serviceName ?? 'tapwire-otlp',
    level: config.telemetry.logLevel,
    format: config.telemetry.logFormat,
  });
  const tracing = await startTracing(config.telemetry, { serviceName: 'tapwire-otlp' });
  const topicPrefix = options.topicPrefix ?? config.otlp.emit.topicPrefix;
  const emission = await openEmission(
    { emit: config.otlp.emit, kafka: config.kafka, section: 'otlp' },
    logger,
    topicPrefix,
    options.log,
  );
  let receiver: OtlpReceiver;
  let urls: OtlpReceiverUrls;
  try {
    receiver = buildOtlpReceiver({ sink: emission.sink, logger, emission: emission.stats }, config.otlp);
    urls = await receiver.start();
  } catch (err) {
    await emission.close(0);
    await tracing.shutdown();
    throw err;
  }
  if (config.otlp.tokens.length === 0)
    logger.warn({}, 'no otlp.tokens: every export is refused with 401 / UNAUTHENTICATED');
  logger.info({ grpc: urls.grpcUrl, http: urls.httpUrl }, 'OTLP receiver listening');

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      logger.info({}, 'stopping OTLP receiver');
      await receiver.close();
      await emission.close(config.otlp.shutdownGraceMs);
      logger.info({ ...receiver.stats().emission }, 'span events written and shipped');
      await tracing.shutdown();
      logger.flush();
    })();
    return stopping;
  };
  if (options.handleSignals)
    stopOnSignals(stop, { deadlineMs: 2 * config.otlp.shutdownGraceMs + SHUTDOWN_SLACK_MS });
  return { ...urls, receiver, stats: () => receiver.stats(), stop };
}
