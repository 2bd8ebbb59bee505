import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createLogger, stopOnSignals } from '@tapwire/telemetry';
import type { Command } from 'commander';
import { renderBanner } from '../banner.js';
import { loadTapwireConfig, type TapwireConfig } from '../cli-config.js';
import { dataDir } from '../data-dir.js';
import { DEMO_SLO, demoAlertingYaml, startDemoApi, startTraffic } from '../demo.js';
import { openEmbedded } from '../deployment.js';
import type { CliIo } from '../io.js';
import { localToken } from '../local-token.js';
import { DEMO_UPSTREAM, upstreamsForStart } from '../start-upstreams.js';
import { DEFAULT_MIGRATIONS_DIR } from './migrate.js';

// Beyond the grace periods: leaving the consumer group, flushing producers, closing the stores.
const SHUTDOWN_SLACK_MS = 20_000;

/** DEMO_ALERTING_FILE is the demo's alerting file, written to the data directory on each start. */
export const DEMO_ALERTING_FILE = 'demo-alerting.yaml';

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function deploymentOf(config: TapwireConfig): { name: string; data: string[] } {
  const log = config.log.kind === 'embedded' ? 'the embedded log' : 'Kafka';
  const store = config.store.kind === 'duckdb' ? 'DuckDB' : 'ClickHouse';
  return {
    name: `${log} and ${store}`,
    data: [
      config.log.kind === 'embedded'
        ? `${resolve(config.log.dir)} (event log)`
        : `Kafka ${config.kafka.brokers.join(',')}`,
      config.store.kind === 'duckdb'
        ? `${resolve(config.store.path)} (DuckDB)`
        : `ClickHouse ${config.clickhouse.url} (database ${config.clickhouse.database})`,
    ],
  };
}

/**
 * registerStart adds `tapwire start`: topics and migrations, then ingest, proxy, OTLP receiver, API and alerter in
 * this one process (each as it runs alone); `--upstream` proxies an API with no config file,
 * `--demo` adds a demo API and traffic beside the configured upstreams.
 */
export function registerStart(program: Command, io: CliIo): void {
  program
    .command('start')
    .description(
      'run proxy, OTLP receiver, ingest, api and alerter in one process: on the embedded log and DuckDB, or on Kafka and ClickHouse when their settings are given (creating topics and applying migrations first)',
    )
    .option(
      '--upstream <[name=]url>',
      'proxy this API (repeatable): the first takes every request no configured upstream takes, each answers at Host <name>.localhost; name defaults to host-port',
      collect,
    )
    .option(
      '--demo',
      `also start a demo API with realistic latency and errors, traffic through the proxy, and demo alert rules; beside other upstreams it answers at Host ${DEMO_UPSTREAM}.localhost`,
    )
    .option('--demo-rate <rps>', 'demo requests per second', '20')
    .action(async (opts: { upstream?: string[]; demo?: boolean; demoRate: string }) => {
      const flags = opts.upstream ?? [];
      const base = loadTapwireConfig(program.opts<{ config?: string }>().config);
      // Refuse bad flags before anything is opened; the demo's URL is known once it listens.
      upstreamsForStart(base.proxy.upstreams, flags, opts.demo ? { url: 'http://127.0.0.1' } : undefined);
      const demoRate = Number(opts.demoRate) || 20;
      const logger = createLogger({
        name: 'tapwire-start',
        level: base.telemetry.logLevel,
        format: base.telemetry.logFormat,
        fd: 2,
      });
      const stops: (() => Promise<void>)[] = [];
      const stopAll = async () => {
        for (const stop of stops.reverse())
          await stop().catch((err: unknown) => logger.error({ err }, 'stop failed'));
      };
      try {
        const config = await startAll();
        // Reverse order of start: traffic and the proxy first, ingest last so it drains what is left.
        // Each stop is bounded by its own grace periods; the deadline covers them all, so no client
        // library's reconnect loop can keep a stopped process alive.
        stopOnSignals(stopAll, {
          deadlineMs:
            2 * config.proxy.shutdownGraceMs +
            2 * config.otlp.shutdownGraceMs +
            config.ingest.shutdownGraceMs +
            SHUTDOWN_SLACK_MS,
        });
      } catch (err) {
        // Whatever did start must not keep the process alive behind the error.
        await stopAll();
        throw err;
      }

      async function startAll(): Promise<TapwireConfig> {
        const [{ createKafkaClient, ensureTopics, topicSpecs }, { migrate }] = await Promise.all([
          import('@tapwire/kafka'),
          import('@tapwire/clickhouse'),
        ]);
        // One process, one set of topics: ingest's topicPrefix applies to every component here.
        const prefix = base.ingest.topicPrefix;
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

        const dir = dataDir(base);
        let demo: Awaited<ReturnType<typeof startDemoApi>> | undefined;
        if (opts.demo) {
          demo = await startDemoApi((line) => io.out(`${line}\n`));
          const started = demo;
          stops.push(() => started.close());
        }
        const upstreams = upstreamsForStart(base.proxy.upstreams, flags, demo);
        // The API needs a token to be of use: with none configured (or for the demo), this data
        // directory's own, kept there so a restart keeps it; only its hash goes into the config.
        const [{ hashToken }, { DEFAULT_TENANT }] = await Promise.all([
          import('@tapwire/config'),
          import('@tapwire/schema'),
        ]);
        let local: ReturnType<typeof localToken> | undefined;
        const dirToken = () => {
          local ??= localToken(dir);
          return local;
        };
        const token = base.api.tokens.length === 0 || demo ? dirToken() : undefined;
        // The OTLP receiver takes the same token, for the default tenant, on the same condition.
        const otlpToken = base.otlp.tokens.length === 0 || demo ? dirToken() : undefined;
        const tokens = token
          ? [
              ...base.api.tokens.filter((t) => t.sha256 !== hashToken(token.token)),
              {
                name: 'local',
                sha256: hashToken(token.token),
                tenant: '*' as const,
                scopes: ['read' as const, 'admin' as const],
              },
            ]
          : base.api.tokens;
        let config: TapwireConfig = {
          ...base,
          proxy: { ...base.proxy, upstreams },
          otlp: {
            ...base.otlp,
            tokens: otlpToken
              ? [
                  ...base.otlp.tokens.filter((t) => t.sha256 !== hashToken(otlpToken.token)),
                  { name: 'local', sha256: hashToken(otlpToken.token), tenant: DEFAULT_TENANT },
                ]
              : base.otlp.tokens,
          },
          // The API answers GET /v1/slos from the SLOs the alerter here alerts on, unless told otherwise.
          api: {
            ...base.api,
            topicPrefix: prefix,
            tokens,
            alertingFile: base.api.alertingFile ?? base.alerter.rulesFile,
          },
          alerter: { ...base.alerter, topicPrefix: prefix },
        };
        let demoSlo = false;
        if (demo) {
          if (existsSync(base.alerter.rulesFile)) {
            io.err(`the demo's alert rules are not loaded: the alerter runs ${base.alerter.rulesFile}\n`);
          } else {
            // In the data directory, not the system temp directory: nothing is left behind there.
            const rulesFile = join(dir, DEMO_ALERTING_FILE);
            writeFileSync(rulesFile, demoAlertingYaml(`${demo.url}/demo/alerts`));
            config = {
              ...config,
              api: { ...config.api, alertingFile: rulesFile },
              alerter: { ...config.alerter, rulesFile },
            };
            demoSlo = true;
          }
        }

        const [
          { runIngestService },
          { runProxyService },
          { runOtlpService },
          { runApiService },
          { runAlerterService },
        ] = await Promise.all([
          import('@tapwire/ingest'),
          import('@tapwire/proxy'),
          import('@tapwire/otlp-service'),
          import('@tapwire/api'),
          import('@tapwire/alerter'),
        ]);
        const shared = embedded.log ? { log: embedded.log } : {};
        const ingest = await runIngestService(config, {
          ...shared,
          ...(embedded.warehouse ? { warehouse: embedded.warehouse } : {}),
        });
        stops.push(ingest.stop);
        const proxy = await runProxyService(config, {
          ...shared,
          ...(prefix ? { topicPrefix: prefix } : {}),
        });
        stops.push(proxy.stop);
        const otlp = await runOtlpService(config, {
          ...shared,
          ...(prefix ? { topicPrefix: prefix } : {}),
        });
        stops.push(otlp.stop);
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
          logger.warn(
            { rulesFile: config.alerter.rulesFile },
            'no alerting file: the alerter is not started',
          );
        }
        const since = new Date();
        if (demo) {
          const demoUpstream = upstreams.find((u) => u.name === DEMO_UPSTREAM);
          const traffic = startTraffic(proxy.proxyUrl, demoRate, demoUpstream?.match.host);
          stops.push(() => traffic.stop());
        }
        const deployment = deploymentOf(config);
        io.out(
          renderBanner({
            deployment: deployment.name,
            proxyUrl: proxy.proxyUrl,
            upstreams,
            ...(demo ? { demoRate } : {}),
            apiUrl: api.url,
            otlp: {
              grpc: otlp.grpcUrl.replace(/^http:\/\//, ''),
              http: `${otlp.httpUrl}/v1/traces`,
              ...(otlpToken ? { token: otlpToken.token } : {}),
            },
            ...(demoSlo
              ? {
                  slo: `${DEMO_SLO} pages in each demo outage (90 s every 5 min, the first 1 min in) and resolves about a minute after it (GET /v1/slos)`,
                }
              : {}),
            ...(token ? { token: { value: token.token, file: token.file } } : {}),
            tokenLabel: demo ? 'demo token' : 'token',
            data: deployment.data,
            since,
            color: io.terminal?.() ?? false,
          }),
        );
        return config;
      }
    });
}
