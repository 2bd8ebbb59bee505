import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { upstreamSchema } from '@tapwire/proxy/config';
import { createLogger, stopOnSignals } from '@tapwire/telemetry';
import type { Command } from 'commander';
import { loadTapwireConfig, type TapwireConfig } from '../cli-config.js';
import { DEMO_ROUTES, demoAlertingYaml, startDemoApi, startTraffic } from '../demo.js';
import { openEmbedded } from '../deployment.js';
import type { CliIo } from '../io.js';
import { DEFAULT_MIGRATIONS_DIR } from './migrate.js';

// Beyond the grace periods: leaving the consumer group, flushing producers, closing the stores.
const SHUTDOWN_SLACK_MS = 20_000;

/**
 * registerStart adds `tapwire start`: topics and migrations, then ingest, proxy, API and alerter in
 * this one process (each as it runs alone); `--demo` adds a demo API and traffic.
 */
export function registerStart(program: Command, io: CliIo): void {
  program
    .command('start')
    .description(
      'run proxy, ingest, api and alerter in one process: on the embedded log and DuckDB, or on Kafka and ClickHouse when their settings are given (creating topics and applying migrations first)',
    )
    .option(
      '--demo',
      'also start a demo API with realistic latency and errors, traffic through the proxy, and demo alert rules',
    )
    .option('--demo-rate <rps>', 'demo requests per second', '20')
    .action(async (opts: { demo?: boolean; demoRate: string }) => {
      const base = loadTapwireConfig(program.opts<{ config?: string }>().config);
      const logger = createLogger({ name: 'tapwire-start', level: base.telemetry.logLevel, fd: 2 });
      const [{ createKafkaClient, ensureTopics, topicSpecs }, { migrate }] = await Promise.all([
        import('@tapwire/kafka'),
        import('@tapwire/clickhouse'),
      ]);
      // One process, one set of topics: ingest's topicPrefix applies to every component here.
      const prefix = base.ingest.topicPrefix;
      const stops: (() => Promise<void>)[] = [];
      // Every service shares one event log and one store: Kafka and ClickHouse, or the embedded
      // log and DuckDB this process owns (closed last, once every service has stopped).
      const embedded = await openEmbedded(base, logger);
      stops.push(() => embedded.close());
      if (embedded.log) io.err(`embedded event log in ${base.log.dir}\n`);
      else
        await ensureTopics(
          createKafkaClient(base.kafka, logger, 'start'),
          topicSpecs(base.kafka.topics, prefix),
        );
      if (embedded.store) io.err(`embedded store (DuckDB) in ${base.store.path}\n`);
      else await migrate(base.clickhouse, { dir: DEFAULT_MIGRATIONS_DIR, logger });

      let config: TapwireConfig = {
        ...base,
        api: { ...base.api, topicPrefix: prefix },
        alerter: { ...base.alerter, topicPrefix: prefix },
      };
      let demoToken: string | undefined;
      let demo: Awaited<ReturnType<typeof startDemoApi>> | undefined;
      if (opts.demo) {
        demo = await startDemoApi((line) => io.out(`${line}\n`));
        stops.push(() => demo?.close() ?? Promise.resolve());
        const { hashToken } = await import('@tapwire/api');
        demoToken = `tw_demo_${randomBytes(12).toString('base64url')}`;
        const rulesDir = mkdtempSync(join(tmpdir(), 'tapwire-demo-'));
        const rulesFile = join(rulesDir, 'alerting.yaml');
        writeFileSync(rulesFile, demoAlertingYaml(`${demo.url}/demo/alerts`));
        config = {
          ...config,
          proxy: {
            ...base.proxy,
            upstreams: [
              upstreamSchema.parse({
                name: 'demo-shop',
                service: 'demo-shop',
                url: demo.url,
                routes: [...DEMO_ROUTES],
              }),
            ],
          },
          api: {
            ...config.api,
            tokens: [
              ...base.api.tokens,
              { name: 'demo', sha256: hashToken(demoToken), tenant: '*', scopes: ['read', 'admin'] },
            ],
            alertingFile: rulesFile,
          },
          alerter: { ...config.alerter, rulesFile },
        };
      }

      const [{ runIngestService }, { runProxyService }, { runApiService }, { runAlerterService }] =
        await Promise.all([
          import('@tapwire/ingest'),
          import('@tapwire/proxy'),
          import('@tapwire/api'),
          import('@tapwire/alerter'),
        ]);
      const shared = embedded.log ? { log: embedded.log } : {};
      const ingest = await runIngestService(config, {
        ...shared,
        ...(embedded.warehouse ? { warehouse: embedded.warehouse } : {}),
      });
      stops.push(ingest.stop);
      const proxy = await runProxyService(config, { ...shared, ...(prefix ? { topicPrefix: prefix } : {}) });
      stops.push(proxy.stop);
      const api = await runApiService(config, {
        ...shared,
        ...(embedded.store
          ? {
              store: embedded.store({
                maxExecutionTimeS: config.api.queryTimeoutS,
                maxResultRows: config.api.maxResultRows,
              }),
            }
          : {}),
      });
      stops.push(api.stop);
      if (existsSync(config.alerter.rulesFile)) {
        const alerter = await runAlerterService(config, {
          ...shared,
          ...(embedded.store
            ? { store: embedded.store({ maxExecutionTimeS: 30, maxResultRows: 100_000 }) }
            : {}),
        });
        stops.push(alerter.stop);
      } else {
        logger.warn({ rulesFile: config.alerter.rulesFile }, 'no alerting file: the alerter is not started');
      }
      if (demo && demoToken) {
        const traffic = startTraffic(proxy.proxyUrl, Number(opts.demoRate) || 20);
        stops.push(() => traffic.stop());
        io.out(
          [
            `demo API ${demo.url} behind the proxy at ${proxy.proxyUrl}, ${opts.demoRate} requests/s`,
            `API ${api.url} (docs ${api.url}/docs), demo token: ${demoToken}`,
            `try: curl -H 'Authorization: Bearer ${demoToken}' '${api.url}/v1/overview?from=now-15m&group_by=route'`,
            '',
          ].join('\n'),
        );
      }
      io.out(`tapwire running: proxy ${proxy.proxyUrl}, api ${api.url}; SIGTERM or Ctrl-C stops it\n`);

      // Reverse order of start: traffic and the proxy first, ingest last so it drains what is left.
      // Each stop is bounded by its own grace periods; the deadline covers them all, so no client
      // library's reconnect loop can keep a stopped process alive.
      stopOnSignals(
        async () => {
          for (const stop of stops.reverse())
            await stop().catch((err: unknown) => logger.error({ err }, 'stop failed'));
        },
        { deadlineMs: 2 * config.proxy.shutdownGraceMs + config.ingest.shutdownGraceMs + SHUTDOWN_SLACK_MS },
      );
    });
}
