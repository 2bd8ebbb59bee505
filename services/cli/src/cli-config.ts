import { alerterConfigSchema } from '@tapwire/alerter/config';
import { apiConfigSchema } from '@tapwire/api/config';
import {
  clickhouseConfigSchema,
  givenSections,
  infraConfigSchema,
  kafkaConfigSchema,
  loadConfigOrExit,
  logConfigSchema,
  storeConfigSchema,
  telemetryConfigSchema,
} from '@tapwire/config';
import { ingestConfigSchema } from '@tapwire/ingest/config';
import { otlpConfigSchema } from '@tapwire/otlp-service/config';
import { proxyConfigSchema } from '@tapwire/proxy/config';
import { z } from 'zod';
import { CommandFailure } from './io.js';

/** tapwireConfigSchema is the whole configuration file: one section per component. */
export const tapwireConfigSchema = z.strictObject({
  telemetry: telemetryConfigSchema,
  log: logConfigSchema,
  kafka: kafkaConfigSchema,
  clickhouse: clickhouseConfigSchema,
  store: storeConfigSchema,
  infra: infraConfigSchema,
  proxy: proxyConfigSchema,
  otlp: otlpConfigSchema,
  ingest: ingestConfigSchema,
  api: apiConfigSchema,
  alerter: alerterConfigSchema,
});

/** TapwireConfig is the validated configuration of every component. */
export type TapwireConfig = z.infer<typeof tapwireConfigSchema>;

/**
 * loadTapwireConfig loads the configuration or exits with code 2 naming every bad field. `auto`
 * kinds resolve to the embedded parts unless the section of the distributed one is given: no
 * `kafka` setting → the embedded log, no `clickhouse` setting → DuckDB.
 */
export function loadTapwireConfig(file: string | undefined): TapwireConfig {
  const options = file ? { file } : {};
  const config = loadConfigOrExit(tapwireConfigSchema, options);
  const given = givenSections(tapwireConfigSchema, options);
  if (config.log.kind === 'auto') config.log.kind = given.has('kafka') ? 'kafka' : 'embedded';
  if (config.store.kind === 'auto') config.store.kind = given.has('clickhouse') ? 'clickhouse' : 'duckdb';
  return config;
}

/**
 * serviceConfig loads the configuration of one separately run service. The embedded log and
 * DuckDB belong to one process, so a separate service runs on Kafka and ClickHouse (`auto` means
 * those here); `tapwire start` runs every service on the embedded parts.
 */
export function serviceConfig(file: string | undefined, command: string): TapwireConfig {
  const config = loadConfigOrExit(tapwireConfigSchema, file ? { file } : {});
  if (config.log.kind === 'embedded') {
    throw new CommandFailure(
      `log.kind is embedded: \`tapwire ${command}\` runs as a separate process only over Kafka; run \`tapwire start\` (every service in one process on the embedded log), or set log.kind: kafka`,
      2,
    );
  }
  // The proxy and the OTLP receiver only write events: where they are stored is not their concern.
  if (config.store.kind === 'duckdb' && command !== 'proxy' && command !== 'otlp') {
    throw new CommandFailure(
      `store.kind is duckdb: \`tapwire ${command}\` runs as a separate process only on ClickHouse; run \`tapwire start\` (every service in one process on DuckDB), or set store.kind: clickhouse`,
      2,
    );
  }
  return resolveDistributed(config);
}

/** distributedConfig loads the configuration of a command about Kafka or ClickHouse themselves (topics, migrate): `auto` means those. */
export function distributedConfig(file: string | undefined): TapwireConfig {
  return resolveDistributed(loadConfigOrExit(tapwireConfigSchema, file ? { file } : {}));
}

function resolveDistributed(config: TapwireConfig): TapwireConfig {
  if (config.log.kind === 'auto') config.log.kind = 'kafka';
  if (config.store.kind === 'auto') config.store.kind = 'clickhouse';
  return config;
}
