import { z } from 'zod';

/**
 * storeConfigSchema selects where events are stored and queried: ClickHouse (the distributed
 * deployment), or DuckDB, an embedded database file owned by one `tapwire start` process.
 */
export const storeConfigSchema = z
  .strictObject({
    kind: z
      .enum(['auto', 'clickhouse', 'duckdb'])
      .default('auto')
      .describe(
        'Where events are stored and queried: clickhouse, duckdb (an embedded database file; only `tapwire start` runs on it), or auto: `tapwire start` and `replay` use duckdb unless a `clickhouse` setting is given; separate services use clickhouse. Default: auto.',
      ),
    path: z
      .string()
      .min(1)
      .default('.tapwire/data/tapwire.duckdb')
      .describe('DuckDB database file (its directory is created). Default: .tapwire/data/tapwire.duckdb.'),
    memoryLimit: z
      .string()
      .regex(/^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i, 'must be a size such as 512MB or 2GB')
      .optional()
      .describe("DuckDB's memory limit, e.g. 1GB. Default: DuckDB's own (80% of RAM)."),
    threads: z
      .number()
      .int()
      .min(0)
      .max(256)
      .default(0)
      .describe('Threads DuckDB may use for one query; 0 for one per core. Default: 0.'),
  })
  .prefault({});

/** StoreConfig is the validated `store` section. */
export type StoreConfig = z.infer<typeof storeConfigSchema>;
