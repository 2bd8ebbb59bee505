import type { Store } from '@tapwire/analytics';
import type { DuckDb } from '@tapwire/duckdb';
import type { Warehouse } from '@tapwire/ingest';
import type { EventLog } from '@tapwire/stream';
import type { Logger } from '@tapwire/telemetry';
import type { TapwireConfig } from './cli-config.js';
import { CommandFailure } from './io.js';

/**
 * Embedded is what one process opens for the embedded deployment: the event log directory and
 * the DuckDB file, each when the configuration selects it. Undefined parts mean Kafka / ClickHouse.
 */
export interface Embedded {
  /** The embedded event log, shared by every service of the process. */
  readonly log?: EventLog;
  /** The DuckDB database, shared by ingest (writes), the API and the alerter (reads). */
  readonly db?: DuckDb;
  /** warehouse is where ingest writes, on the DuckDB database. */
  readonly warehouse?: Warehouse;
  /** store answers queries from the DuckDB database, bounded like the API's queries. */
  store?(limits: { maxExecutionTimeS: number; maxResultRows: number }): Store;
  /** close closes the log and the database, after every service has stopped. */
  close(): Promise<void>;
}

/**
 * openEmbedded opens the embedded event log and DuckDB when the resolved configuration selects
 * them. The event topics' retention applies; alert state and silences are always kept. A
 * directory or file another process holds is a CommandFailure naming it. Commands that only
 * read or write events pass `store: false`.
 */
export async function openEmbedded(
  config: TapwireConfig,
  logger: Logger,
  open: { store: boolean } = { store: true },
): Promise<Embedded> {
  const closers: (() => Promise<void>)[] = [];
  const parts: { -readonly [K in keyof Embedded]: Embedded[K] } = {
    async close() {
      for (const close of closers.reverse())
        await close().catch((err: unknown) => logger.error({ err }, 'close failed'));
    },
  };
  try {
    if (config.log.kind === 'embedded') {
      const [{ openFileLog, fileLogSource }, { TOPICS }] = await Promise.all([
        import('@tapwire/log'),
        import('@tapwire/schema'),
      ]);
      const prefix = config.ingest.topicPrefix;
      const stateTopics = [TOPICS.alertState, TOPICS.silences].map((t) => prefix + t);
      const fileLog = await openFileLog({
        dir: config.log.dir,
        fsync: config.log.fsync,
        fsyncIntervalMs: config.log.fsyncIntervalMs,
        segmentBytes: config.log.segmentBytes,
        retentionMs: config.log.retentionHours * 3_600_000,
        retentionBytes: config.log.retentionBytes,
        keep: (topic) => stateTopics.includes(topic),
      });
      closers.push(() => fileLog.close());
      parts.log = fileLogSource(fileLog, logger);
    }
    if (open.store && config.store.kind === 'duckdb') {
      const [{ openDuckDb }, { duckdbWarehouse }, { createDuckDbStore }] = await Promise.all([
        import('@tapwire/duckdb'),
        import('@tapwire/ingest'),
        import('@tapwire/analytics'),
      ]);
      const db = await openDuckDb({
        path: config.store.path,
        ...(config.store.threads > 0 ? { threads: config.store.threads } : {}),
        ...(config.store.memoryLimit ? { memoryLimit: config.store.memoryLimit } : {}),
      });
      closers.push(() => db.close());
      parts.db = db;
      parts.warehouse = duckdbWarehouse(db);
      parts.store = (limits) => createDuckDbStore(db, limits);
    }
  } catch (err) {
    await parts.close();
    throw new CommandFailure((err as Error).message, 1);
  }
  return parts;
}
