import { createClickHouseStore, type Store } from '@tapwire/analytics';
import { createClickHouse, type KnownCapabilities, knownCapabilities } from '@tapwire/clickhouse';
import {
  type ClickHouseConfig,
  clickhouseConfigSchema,
  type KafkaConfig,
  kafkaConfigSchema,
  type TelemetryConfig,
  telemetryConfigSchema,
} from '@tapwire/config';
import { createKafkaClient, kafkaSource } from '@tapwire/kafka';
import { TOPICS } from '@tapwire/schema';
import { type EventLog, readSilences } from '@tapwire/stream';
import { createAdminServer, createLogger, listenAt, startTracing, stopOnSignals } from '@tapwire/telemetry';
import { z } from 'zod';
import { type Api, buildApi } from './app.js';
import { type ApiConfig, apiConfigSchema } from './config.js';
import { createApiMetrics } from './metrics.js';

/** apiServiceConfigSchema is what the api process reads. */
export const apiServiceConfigSchema = z.object({
  api: apiConfigSchema,
  clickhouse: clickhouseConfigSchema,
  kafka: kafkaConfigSchema,
  telemetry: telemetryConfigSchema,
});

/** ApiServiceConfig is the validated configuration of the api process. */
export interface ApiServiceConfig {
  api: ApiConfig;
  clickhouse: ClickHouseConfig;
  kafka: KafkaConfig;
  telemetry: TelemetryConfig;
}

/** RunningApi is a started api process. */
export interface RunningApi {
  readonly api: Api;
  readonly url: string;
  readonly adminUrl: string;
  stop(): Promise<void>;
}

/**
 * runApiService wires logger and tracing, ClickHouse behind the analytics Store, the API and its
 * admin endpoints, then listens; with handleSignals, SIGTERM/SIGINT close it (in-flight requests finish).
 */
export async function runApiService(
  config: ApiServiceConfig,
  options: { handleSignals?: boolean; log?: EventLog; store?: Store } = {},
): Promise<RunningApi> {
  const logger = createLogger({
    name: config.telemetry.serviceName ?? 'tapwire-api',
    level: config.telemetry.logLevel,
    format: config.telemetry.logFormat,
  });
  const tracing = await startTracing(config.telemetry, { serviceName: 'tapwire-api' });
  const metrics = createApiMetrics();
  let store: Store;
  let clickhouse: KnownCapabilities | undefined;
  if (options.store) store = options.store;
  else {
    const ch = createClickHouse(config.clickhouse);
    store = createClickHouseStore(ch, {
      maxExecutionTimeS: config.api.queryTimeoutS,
      maxResultRows: config.api.maxResultRows,
      maxMemoryBytes: config.api.maxQueryMemoryBytes,
    });
    // The server version and capabilities go to the log now, to /readyz once known.
    clickhouse = knownCapabilities(ch, logger);
    clickhouse.current();
  }
  // Silences live on a (compacted) topic of the event log that the alerter reads too.
  const log = options.log ?? kafkaSource({ kafka: createKafkaClient(config.kafka, logger, 'api'), logger });
  const silenceSink = log.sink({
    lingerMs: 0,
    maxBatchEvents: 100,
    maxBufferedEvents: 10_000,
    retryBackoffMs: 200,
    topicPrefix: config.api.topicPrefix,
  });
  const silences = {
    list: () => readSilences(log, config.api.topicPrefix),
    async put(event: Parameters<typeof silenceSink.emit<typeof TOPICS.silences>>[1]) {
      if (!silenceSink.emit(TOPICS.silences, event))
        throw new Error('silence not accepted by the event sink');
      await silenceSink.flush();
    },
  };
  const api = await buildApi({ store, logger, metrics, silences }, config.api);
  const admin = createAdminServer({
    section: 'api.admin',
    host: config.api.admin.host,
    port: config.api.admin.port,
    registry: metrics.registry,
    readiness: async () => {
      const ok = await store.ping().catch(() => false);
      // On ClickHouse, the server's version and what Tapwire uses of it, once known.
      return { ready: ok, store: { kind: store.kind, ok, ...clickhouse?.current() } };
    },
  });
  let url: string;
  let adminUrl: string;
  try {
    url = await listenAt({ section: 'api.listen', ...config.api.listen }, () =>
      api.app.listen({ host: config.api.listen.host, port: config.api.listen.port }),
    );
    adminUrl = await admin.listen();
  } catch (err) {
    // A port is taken, say: let go of what was opened, so the process can exit with the reason.
    await api.app.close();
    await admin.close();
    await silenceSink.close(0);
    await store.close();
    await tracing.shutdown();
    throw err;
  }
  if (config.api.tokens.length === 0) logger.warn('no api.tokens configured: every /v1 request will get 401');
  logger.info({ url, adminUrl, tokens: config.api.tokens.map((t) => t.name) }, 'api listening');
  // The alerter re-reads the alerting file on SIGHUP; the API re-reads its SLOs with it.
  const onHup = () => void api.slos.reload();
  process.on('SIGHUP', onHup);
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      process.off('SIGHUP', onHup);
      await api.app.close();
      await admin.close();
      await silenceSink.close(5000);
      await store.close();
      await tracing.shutdown();
      logger.info('api stopped');
    })();
    return stopping;
  };
  if (options.handleSignals) stopOnSignals(stop);
  return { api, url, adminUrl, stop };
}
