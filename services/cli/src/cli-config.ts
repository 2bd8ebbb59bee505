import { alerterConfigSchema } from '@tapwire/alerter/config';
import { apiConfigSchema } from '@tapwire/api/config';
import {
  clickhouseConfigSchema,
  infraConfigSchema,
  kafkaConfigSchema,
  loadConfigOrExit,
  logConfigSchema,
  telemetryConfigSchema,
} from '@tapwire/config';
import { ingestConfigSchema } from '@tapwire/ingest/config';
import { proxyConfigSchema } from '@tapwire/proxy/config';
import { z } from 'zod';
import { CommandFailure } from './io.js';

/** tapwireConfigSchema is the whole configuration file: one section per component. */
export const tapwireConfigSchema = z.strictObject({
  telemetry: telemetryConfigSchema,
  log: logConfigSchema,
  kafka: kafkaConfigSchema,
  clickhouse: clickhouseConfigSchema,
  infra: infraConfigSchema,
  proxy: proxyConfigSchema,
  ingest: ingestConfigSchema,
  api: apiConfigSchema,
  alerter: alerterConfigSchema,
});

/** TapwireConfig is the validated configuration of every component. */
export type TapwireConfig = z.infer<typeof tapwireConfigSchema>;

/** loadTapwireConfig loads the configuration or exits with code 2 naming every bad field. */
export function loadTapwireConfig(file: string | undefined): TapwireConfig {
  return loadConfigOrExit(tapwireConfigSchema, file ? { file } : {});
}

/**
 * serviceConfig loads the configuration of one separately run service. The embedded log belongs
 * to one process, so a separate service needs Kafka; `tapwire start` runs every service on it.
 */
export function serviceConfig(file: string | undefined, command: string): TapwireConfig {
  const config = loadTapwireConfig(file);
  if (config.log.kind === 'embedded') {
    throw new CommandFailure(
      `log.kind is embedded: \`tapwire ${command}\` runs as a separate process only over Kafka; run \`tapwire start\` (every service in one process on the embedded log), or set log.kind: kafka`,
      2,
    );
  }
  return config;
}
