import { alerterConfigSchema } from '@tapwire/alerter/config';
import { apiConfigSchema } from '@tapwire/api/config';
import {
  clickhouseConfigSchema,
  infraConfigSchema,
  kafkaConfigSchema,
  loadConfigOrExit,
  telemetryConfigSchema,
} from '@tapwire/config';
import { ingestConfigSchema } from '@tapwire/ingest/config';
import { proxyConfigSchema } from '@tapwire/proxy/config';
import { z } from 'zod';

/** tapwireConfigSchema is the whole configuration file: one section per component. */
export const tapwireConfigSchema = z.strictObject({
  telemetry: telemetryConfigSchema,
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
