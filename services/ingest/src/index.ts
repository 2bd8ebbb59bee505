export { buildIngest, type Ingest } from './app.js';
export { type IngestConfig, ingestConfigSchema, RETAINED_TABLES } from './config.js';
export { type DayAudit, tablesAboveLedger } from './day-audit.js';
export { createIngestPipeline, type IngestPipeline, type IngestStats } from './pipeline.js';
export { DERIVED_TABLES, type ReplayOptions, type ReplaySummary, replay } from './replay.js';
export { createRetentionJob, type RetentionRun } from './retention.js';
export { STREAMS } from './rows.js';
export {
  type IngestServiceConfig,
  ingestServiceConfigSchema,
  type RunningIngest,
  runIngestProcess,
  runIngestService,
} from './service.js';
export { clickhouseWarehouse, duckdbWarehouse, type Warehouse } from './warehouse.js';
export { type HostedIngest, hostIngest } from './worker-host.js';
