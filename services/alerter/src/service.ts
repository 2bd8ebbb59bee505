import { watch } from 'node:fs';
import { loadAlertingFile } from '@tapwire/alerting';
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
import { type AlertStateEvent, alertStateCodec, TOPICS } from '@tapwire/schema';
import { type EventLog, readSilences } from '@tapwire/stream';
import {
  createAdminServer,
  createLogger,
  type Logger,
  startTracing,
  stopOnSignals,
} from '@tapwire/telemetry';
import { z } from 'zod';
import { type Alerter, buildAlerter } from './alerter.js';
import { type AlerterConfig, alerterConfigSchema } from './config.js';
import { createAlerterMetrics } from './metrics.js';

/** alerterServiceConfigSchema is what the alerter process reads. */
export const alerterServiceConfigSchema = z.object({
  alerter: alerterConfigSchema,
  kafka: kafkaConfigSchema,
  clickhouse: clickhouseConfigSchema,
  telemetry: telemetryConfigSchema,
});

/** AlerterServiceConfig is the validated configuration of the alerter process. */
export interface AlerterServiceConfig {
  alerter: AlerterConfig;
  kafka: KafkaConfig;
  clickhouse: ClickHouseConfig;
  telemetry: TelemetryConfig;
}

/** RunningAlerter is a started alerter process. */
export interface RunningAlerter {
  readonly alerter: Alerter;
  readonly adminUrl: string;
  /** reload re-reads the alerting file; a bad file keeps the current rules and says why. */
  reload(): boolean;
  stop(): Promise<void>;
}

function reloader(path: string, alerter: Alerter, logger: Logger): () => boolean {
  return () => {
    try {
      alerter.reload(loadAlertingFile(path));
      return true;
    } catch (err) {
      logger.error(
        { file: path, problem: (err as Error).message },
        'alerting file rejected; keeping the rules in use',
      );
      return false;
    }
  };
}

/**
 * runAlerterService wires logger and tracing, the ClickHouse Store, the alert-state sink, restores
 * state from the compacted alert-state topic, then evaluates and notifies until stopped.
 */
export async function runAlerterService(
  config: AlerterServiceConfig,
  options: { handleSignals?: boolean; log?: EventLog; store?: Store } = {},
): Promise<RunningAlerter> {
  const logger = createLogger({
    name: config.telemetry.serviceName ?? 'tapwire-alerter',
    level: config.telemetry.logLevel,
    format: config.telemetry.logFormat,
  });
  const tracing = await startTracing(config.telemetry, { serviceName: 'tapwire-alerter' });
  const alerting = loadAlertingFile(config.alerter.rulesFile);
  const log =
    options.log ?? kafkaSource({ kafka: createKafkaClient(config.kafka, logger, 'alerter'), logger });
  const sink = log.sink({
    lingerMs: 5,
    maxBatchEvents: 500,
    maxBufferedEvents: 100_000,
    retryBackoffMs: 200,
    topicPrefix: config.alerter.topicPrefix,
  });
  let store: Store;
  let capabilities: KnownCapabilities | undefined;
  if (options.store) store = options.store;
  else {
    const ch = createClickHouse(config.clickhouse);
    store = createClickHouseStore(ch, { maxExecutionTimeS: 30, maxResultRows: 100_000 });
    // The server version and capabilities go to the log now, to /readyz once known.
    capabilities = knownCapabilities(ch, logger);
    capabilities.current();
  }
  const metrics = createAlerterMetrics();
  const alerter = buildAlerter({ store, sink, logger, metrics, slos: store }, alerting, {
    apiUrl: config.alerter.apiUrl.replace(/\/$/, ''),
    dashboardUrl: config.alerter.dashboardUrl,
    dispatchTickMs: config.alerter.dispatchTickMs,
    retry: config.alerter.retry,
  });
  const records = await log.readToEnd(config.alerter.topicPrefix + TOPICS.alertState);
  const events: AlertStateEvent[] = [];
  for (const r of records) {
    if (!r.value) continue;
    const decoded = alertStateCodec.decode(r.value);
    if (decoded.ok) events.push(decoded.event);
    else
      logger.warn({ offset: r.offset, reason: decoded.reason }, 'skipping an unreadable alert-state event');
  }
  alerter.restore(events);
  logger.info({ events: events.length, alerts: alerter.alerts().length }, 'alert state restored');
  const pollSilences = async () => {
    try {
      const list = await readSilences(log, config.alerter.topicPrefix);
      alerter.setSilences(
        list.map((e) => ({
          id: e.id,
          matchers: e.matchers,
          startsAt: e.starts_at / 1000,
          endsAt: e.ends_at / 1000,
          createdBy: e.created_by,
          comment: e.comment,
        })),
      );
    } catch (err) {
      logger.warn({ err }, 'could not read silences; keeping the ones known');
    }
  };
  await pollSilences();
  const silenceTimer = setInterval(() => void pollSilences(), config.alerter.silencePollMs);
  silenceTimer.unref();
  alerter.start();
  const admin = createAdminServer({
    section: 'alerter.admin',
    host: config.alerter.admin.host,
    port: config.alerter.admin.port,
    registry: metrics.registry,
    readiness: async () => {
      const ok = await store.ping().catch(() => false);
      // Broken receivers (their last notification was refused with a 4xx) are shown, not fatal.
      return {
        ready: ok,
        // On ClickHouse, the server's version and what Tapwire uses of it, once known.
        store: { kind: store.kind, ok, ...capabilities?.current() },
        rules: alerter.config().groups.reduce((n, g) => n + g.rules.length, 0),
        slos: alerter.config().slos.length,
        broken_receivers: alerter.brokenReceivers(),
      };
    },
  });
  let adminUrl: string;
  try {
    adminUrl = await admin.listen();
  } catch (err) {
    // The admin port is taken, say: let go of what was opened, so the process can exit with the reason.
    clearInterval(silenceTimer);
    await alerter.close();
    await sink.close(0);
    await store.close();
    await tracing.shutdown();
    throw err;
  }
  const reload = reloader(config.alerter.rulesFile, alerter, logger);
  let debounce: NodeJS.Timeout | undefined;
  const watcher = watch(config.alerter.rulesFile, () => {
    clearTimeout(debounce);
    debounce = setTimeout(reload, 200);
  });
  const onHup = () => reload();
  process.on('SIGHUP', onHup);
  logger.info({ adminUrl, rules: config.alerter.rulesFile }, 'alerter running');
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      process.off('SIGHUP', onHup);
      clearInterval(silenceTimer);
      watcher.close();
      clearTimeout(debounce);
      await alerter.close();
      await admin.close();
      await sink.close(5000);
      await store.close();
      await tracing.shutdown();
      logger.info('alerter stopped');
    })();
    return stopping;
  };
  if (options.handleSignals) stopOnSignals(stop);
  return { alerter, adminUrl, reload, stop };
}
