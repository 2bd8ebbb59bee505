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
      .default('256MB')
      .describe(
        "DuckDB's memory limit: its cache of table blocks and the hash tables and sorts of queries and inserts (which spill to a .tmp folder beside the file beyond it), e.g. 256MB or 2GB. Rows not yet checkpointed, the allocator's slack and the rest of the process come on top. Default: 256MB (DuckDB's own default is 80% of RAM).",
      ),
    threads: z
      .number()
      .int()
      .min(0)
      .max(256)
      .default(2)
      .describe(
        'Threads DuckDB may use for one query or insert; each needs memory of its own within memoryLimit. 0 for one per core. Default: 2.',
      ),
  })
  .prefault({});

/** StoreConfig is the validated `store` section. */
export type StoreConfig = z.infer<typeof storeConfigSchema>;
