import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
// Types only: the native library (~40 MB of RSS) loads in openDuckDb, so a process that imports
// this package for its SQL helpers and never opens a database (distributed ingest) does not pay for it.
import type { DuckDBConnection, DuckDBInstance, DuckDBType, DuckDBValue } from '@duckdb/node-api';
import {
  ADDED_COLUMN_FILL,
  createTableSql,
  type Rollup,
  TABLES,
  type TableSpec,
  tableSpec,
} from './schema.js';
import { type DuckSql, type DuckValue, raw, sql } from './sql.js';

/** DuckDbErrorCode names what went wrong with the embedded database. */
export type DuckDbErrorCode =
  | 'TAPWIRE_DUCKDB_LOCKED'
  | 'TAPWIRE_DUCKDB_OPEN_FAILED'
  | 'TAPWIRE_DUCKDB_TIMEOUT'
  | 'TAPWIRE_DUCKDB_QUERY_FAILED'
  | 'TAPWIRE_DUCKDB_CLOSED'
  | 'TAPWIRE_DUCKDB_UNKNOWN_TABLE';

/** TapwireDuckDbError is every failure of the embedded database, with a stable code. */
export class TapwireDuckDbError extends Error {
  readonly code: DuckDbErrorCode;
  constructor(code: DuckDbErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TapwireDuckDbError';
    this.code = code;
  }
}

/** DuckDbOptions opens the embedded database. */
export interface DuckDbOptions {
  /** Database file (its directory is created), or ':memory:'. */
  readonly path: string;
  /** Worker threads DuckDB may use; 0 leaves DuckDB's default (one per core). */
  readonly threads?: number;
  /** DuckDB memory limit, e.g. '1GB'; empty leaves DuckDB's default (80% of RAM). */
  readonly memoryLimit?: string;
}

/** QueryLimits bound one read. */
export interface QueryLimits {
  /** The query is interrupted after this long (TAPWIRE_DUCKDB_TIMEOUT). */
  readonly timeoutMs?: number;
}

/** DuckDb is Tapwire's handle on one embedded database: reads in parallel, writes one at a time. */
export interface DuckDb {
  readonly path: string;
  /** query runs a read and returns its rows as JSON-safe objects (64-bit integers as strings). */
  query<T = Record<string, unknown>>(statement: DuckSql, limits?: QueryLimits): Promise<T[]>;
  /** run executes a write (DDL, DELETE) in the write queue. */
  run(statement: DuckSql): Promise<number>;
  /**
   * insertJsonLines inserts JSON rows (one object per line, every column present) into a table in
   * one transaction; in tables unique by event id, ids already stored or repeated are skipped.
   * Resolves the number of rows inserted.
   */
  insertJsonLines(table: string, lines: readonly string[]): Promise<number>;
  /** insertNdjson is insertJsonLines for rows already joined: the pieces of `body`, concatenated, are NDJSON. */
  insertNdjson(table: string, body: readonly (string | Uint8Array)[]): Promise<number>;
  /** memory is what DuckDB counts as its own (duckdb_memory()), in bytes per tag (BASE_TABLE, HASH_TABLE, …). */
  memory(): Promise<{ tag: string; bytes: number; temporaryBytes: number }[]>;
  close(): Promise<void>;
}

/**
 * bind turns values into parameters and their types: whole numbers bind as BIGINT (usable as
 * LIMIT, compared to integer columns exactly), other numbers as DOUBLE; a list of numbers binds as
 * DOUBLE[], any other list as VARCHAR[] of its elements' text.
 */
function bind(
  duck: typeof import('@duckdb/node-api'),
  values: readonly DuckValue[],
): { values: DuckDBValue[]; types: (DuckDBType | undefined)[] } {
  const { DOUBLE, LIST, listValue, VARCHAR } = duck;
  const types: (DuckDBType | undefined)[] = [];
  const bound = values.map((v): DuckDBValue => {
    if (Array.isArray(v)) {
      const numeric = v.every((e) => typeof e === 'number');
      types.push(LIST(numeric ? DOUBLE : VARCHAR));
      return listValue(v.map((e) => (numeric ? (e as number) : String(e))));
    }
    types.push(undefined);
    if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
    return v as DuckDBValue;
  });
  return { values: bound, types };
}

// DuckDB's JSON reader takes buffers of twice the longest row it accepts, counted against
// memory_limit. An event is at most 1 MiB encoded (LIMITS.eventBytes in @tapwire/schema) and its
// row about as long; 64 MiB took 128 MiB per read, more than a small memory limit.
const MAX_ROW_BYTES = 8 * 1024 * 1024;

/** CHUNK_BYTES is how much of a batch one statement reads (whole rows; a longer row is read alone). */
const CHUNK_BYTES = 4 * 1024 * 1024;

/** CHECKPOINT_BYTES of rows inserted (as NDJSON) lead to a checkpoint (DuckDB's own threshold is 16 MiB of WAL). */
const CHECKPOINT_BYTES = 32 * 1024 * 1024;

const NEWLINE = 0x0a;

/**
 * ndjsonChunks cuts NDJSON, given in pieces that may split rows anywhere, into chunks of whole
 * rows of about `target` bytes.
 */
export function* ndjsonChunks(
  body: readonly (string | Uint8Array)[],
  target: number,
): Generator<Uint8Array[]> {
  let chunk: Uint8Array[] = [];
  let size = 0;
  for (const piece of body) {
    let rest =
      typeof piece === 'string'
        ? Buffer.from(piece)
        : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    while (rest.length > target - size) {
      // The last row end that fits, else the first one after it.
      const room = target - size;
      let cut = room > 0 ? rest.lastIndexOf(NEWLINE, room - 1) : -1;
      if (cut < 0) cut = rest.indexOf(NEWLINE, Math.max(room, 0));
      if (cut < 0) break;
      chunk.push(rest.subarray(0, cut + 1));
      yield chunk;
      chunk = [];
      size = 0;
      rest = rest.subarray(cut + 1);
    }
    if (rest.length > 0) {
      chunk.push(rest);
      size += rest.length;
    }
  }
  if (size > 0) yield chunk;
}

function writeChunk(file: string, chunk: readonly Uint8Array[]): void {
  const fd = openSync(file, 'w');
  try {
    for (const piece of chunk) {
      let done = 0;
      while (done < piece.length) done += writeSync(fd, piece, done);
    }
  } finally {
    closeSync(fd);
  }
}

/** rollupMergeSql sums a rollup's rows staged in `staged` into one row per key. */
function rollupMergeSql(rollup: Rollup, staged: string): string {
  const target = tableSpec(rollup.table);
  if (!target) throw new Error(`rollup of an unknown table ${rollup.table}`);
  const keys = target.columns.map(([c]) => c).filter((c) => !rollup.measures.includes(c));
  return `SELECT ${keys.map((c) => `"${c}"`).join(', ')}, ${rollup.measures.map((c) => `sum("${c}") AS "${c}"`).join(', ')}
    FROM ${staged} GROUP BY ALL`;
}

/**
 * addMissingColumns brings a table of an older database file up to its spec: each column added
 * since is appended and, where ADDED_COLUMN_FILL says how, filled for the rows already stored.
 */
async function addMissingColumns(writer: DuckDBConnection, t: TableSpec): Promise<void> {
  const present = await writer.runAndReadAll(
    `SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = '${t.name}'`,
  );
  const have = new Set(present.getRows().map((r) => String(r[0])));
  const missing = t.columns.filter(([c]) => !have.has(c));
  if (missing.length === 0) return;
  await writer.run('BEGIN TRANSACTION');
  try {
    for (const [c, type] of missing) await writer.run(`ALTER TABLE "${t.name}" ADD COLUMN "${c}" ${type}`);
    const fills = missing.filter(([c]) => ADDED_COLUMN_FILL[c] !== undefined);
    if (fills.length > 0)
      await writer.run(
        `UPDATE "${t.name}" SET ${fills.map(([c]) => `"${c}" = ${ADDED_COLUMN_FILL[c]}`).join(', ')}`,
      );
    await writer.run('COMMIT');
  } catch (err) {
    await writer.run('ROLLBACK').catch(() => {});
    throw err;
  }
}

/** openDuckDb opens (or creates) the database and its tables; a file another process holds is TAPWIRE_DUCKDB_LOCKED. */
export async function openDuckDb(options: DuckDbOptions): Promise<DuckDb> {
  const memory = options.path === ':memory:';
  if (!memory) mkdirSync(dirname(options.path), { recursive: true });
  const settings: Record<string, string> = {
    // Freed memory goes back to the system after each task instead of staying cached per thread
    // (up to 128 MiB by default): resident memory follows what DuckDB holds.
    allocator_flush_threshold: '16MB',
    // A freed batch (an insert's parsed rows, a checkpoint's buffers) goes back to the system at
    // once above 8 MiB instead of 512 MiB: measured 56 MB less resident after 16 inserts of 10k rows.
    allocator_bulk_deallocation_flush_threshold: '8MB',
    allocator_background_threads: 'true',
  };
  if (options.threads) settings.threads = String(options.threads);
  if (options.memoryLimit) settings.memory_limit = options.memoryLimit;
  const duck = await import('@duckdb/node-api');
  let instance: DuckDBInstance;
  try {
    instance = await duck.DuckDBInstance.create(options.path, settings);
  } catch (err) {
    const message = (err as Error).message;
    if (/lock/i.test(message))
      throw new TapwireDuckDbError(
        'TAPWIRE_DUCKDB_LOCKED',
        `${options.path} is in use by another process (${message.split('\n')[0]})`,
        { cause: err },
      );
    throw new TapwireDuckDbError('TAPWIRE_DUCKDB_OPEN_FAILED', `cannot open ${options.path}: ${message}`, {
      cause: err,
    });
  }
  const writer = await instance.connect();
  for (const t of TABLES) {
    await writer.run(createTableSql(t));
    await addMissingColumns(writer, t);
  }
  // Rows for a bulk insert pass through a file that DuckDB's JSON reader parses natively.
  const spoolDir = mkdtempSync(join(tmpdir(), 'tapwire-duckdb-'));
  let spoolSeq = 0;
  let sinceCheckpoint = 0;
  let closed = false;
  let queue: Promise<unknown> = Promise.resolve();
  const open = new Set<DuckDBConnection>();

  function fail(err: unknown, what: string): TapwireDuckDbError {
    if (err instanceof TapwireDuckDbError) return err;
    return new TapwireDuckDbError('TAPWIRE_DUCKDB_QUERY_FAILED', `${what}: ${(err as Error).message}`, {
      cause: err,
    });
  }

  function ensureOpen(): void {
    if (closed) throw new TapwireDuckDbError('TAPWIRE_DUCKDB_CLOSED', 'the embedded database is closed');
  }

  /** serial runs writes one after another on the write connection. */
  function serial<T>(work: () => Promise<T>): Promise<T> {
    const next = queue.then(work, work);
    queue = next.catch(() => {});
    return next;
  }

  async function exec(conn: DuckDBConnection, statement: DuckSql): Promise<number> {
    const { text, values } = statement.render();
    const bound = bind(duck, values);
    // An undefined entry lets DuckDB infer that parameter's type (the typings say otherwise).
    const result = await conn.run(text, bound.values, bound.types as DuckDBType[]);
    return Number(result.rowsChanged);
  }

  const self: DuckDb = {
    path: options.path,

    async query<T>(statement: DuckSql, limits: QueryLimits = {}): Promise<T[]> {
      ensureOpen();
      const conn = await instance.connect();
      open.add(conn);
      let timedOut = false;
      const timer =
        limits.timeoutMs !== undefined
          ? setTimeout(() => {
              timedOut = true;
              conn.interrupt();
            }, limits.timeoutMs)
          : undefined;
      try {
        const { text, values } = statement.render();
        const bound = bind(duck, values);
        const reader = await conn.runAndReadAll(text, bound.values, bound.types as DuckDBType[]);
        return reader.getRowObjectsJson() as T[];
      } catch (err) {
        if (timedOut)
          throw new TapwireDuckDbError(
            'TAPWIRE_DUCKDB_TIMEOUT',
            `query interrupted after ${limits.timeoutMs} ms`,
            {
              cause: err,
            },
          );
        throw fail(err, 'query failed');
      } finally {
        if (timer) clearTimeout(timer);
        open.delete(conn);
        conn.closeSync();
      }
    },

    run(statement: DuckSql): Promise<number> {
      ensureOpen();
      return serial(async () => {
        try {
          return await exec(writer, statement);
        } catch (err) {
          throw fail(err, 'statement failed');
        }
      });
    },

    insertJsonLines(table: string, lines: readonly string[]): Promise<number> {
      return self.insertNdjson(table, [lines.join('\n')]);
    },

    insertNdjson(table: string, body: readonly (string | Uint8Array)[]): Promise<number> {
      ensureOpen();
      const spec = tableSpec(table);
      if (!spec)
        return Promise.reject(
          new TapwireDuckDbError('TAPWIRE_DUCKDB_UNKNOWN_TABLE', `the embedded store has no table ${table}`),
        );
      if (body.every((piece) => piece.length === 0)) return Promise.resolve(0);
      return serial(async () => {
        const name = raw(`"${spec.name}"`);
        const columns = raw(spec.columns.map(([c]) => `"${c}"`).join(', '));
        const types = raw(`{${spec.columns.map(([c, t]) => `'${c}': '${t}'`).join(', ')}}`);
        const rollups = (spec.rollups ?? []).map((rollup, i) => ({
          staged: raw(`tapwire_rollup_${i}`),
          merge: raw(rollupMergeSql(rollup, `tapwire_rollup_${i}`)),
          ...rollup,
        }));
        const file = join(spoolDir, `${++spoolSeq}.ndjson`);
        const source = sql`read_ndjson(${file}, columns = ${types}, maximum_object_size = ${raw(String(MAX_ROW_BYTES))})`;
        let inserted = 0;
        try {
          await writer.run('BEGIN TRANSACTION');
          for (const rollup of rollups)
            await exec(
              writer,
              sql`CREATE OR REPLACE TEMP TABLE ${rollup.staged} AS SELECT * FROM ${raw(`"${rollup.table}"`)} LIMIT 0`,
            );
          // A batch is read a few MiB at a time: what DuckDB holds while reading, de-duplicating and
          // appending grows with the piece read, not with the batch.
          for (const chunk of ndjsonChunks(body, CHUNK_BYTES)) {
            writeChunk(file, chunk);
            if (!spec.uniqueId) {
              inserted += await exec(
                writer,
                sql`INSERT INTO ${name} (${columns}) SELECT ${columns} FROM ${source}`,
              );
              continue;
            }
            // Duplicates carry the same event, so the same ts: only the chunk's time span is
            // searched; rows of earlier chunks count as stored (same transaction).
            const fresh = sql`WITH s AS MATERIALIZED (SELECT DISTINCT ON (id) ${columns} FROM ${source})
              SELECT ${columns} FROM s
              WHERE id NOT IN (SELECT id FROM ${name} WHERE ts BETWEEN (SELECT min(ts) FROM s) AND (SELECT max(ts) FROM s))`;
            if (rollups.length === 0) {
              inserted += await exec(writer, sql`INSERT INTO ${name} (${columns}) ${fresh}`);
              continue;
            }
            await exec(writer, sql`CREATE OR REPLACE TEMP TABLE tapwire_new AS ${fresh}`);
            inserted += await exec(
              writer,
              sql`INSERT INTO ${name} (${columns}) SELECT ${columns} FROM tapwire_new`,
            );
            for (const rollup of rollups)
              await exec(writer, sql`INSERT INTO ${rollup.staged} BY NAME ${raw(rollup.select)}`);
            await writer.run('DROP TABLE tapwire_new');
          }
          // The rollups get exactly the rows added, in the same transaction: never more, never
          // fewer; one row per key and insert, however many chunks the batch was read in.
          for (const rollup of rollups) {
            await exec(writer, sql`INSERT INTO ${raw(`"${rollup.table}"`)} BY NAME ${rollup.merge}`);
            await exec(writer, sql`DROP TABLE ${rollup.staged}`);
          }
          await writer.run('COMMIT');
          sinceCheckpoint += body.reduce((n, piece) => n + piece.length, 0);
          if (sinceCheckpoint >= CHECKPOINT_BYTES) {
            // Rows not yet checkpointed stay in memory, beyond memory_limit's reach, and DuckDB's own
            // checkpoint at commit is skipped while a read is running (the API, ingest's lookups).
            sinceCheckpoint = 0;
            await writer.run('CHECKPOINT').catch(() => {});
          }
          return inserted;
        } catch (err) {
          await writer.run('ROLLBACK').catch(() => {});
          throw fail(err, `insert into ${table} failed`);
        } finally {
          rmSync(file, { force: true });
        }
      });
    },

    async memory() {
      const rows = await self.query<{ tag: string; b: string; t: string }>(
        raw('SELECT tag, memory_usage_bytes AS b, temporary_storage_bytes AS t FROM duckdb_memory()'),
      );
      return rows.map((r) => ({ tag: r.tag, bytes: Number(r.b), temporaryBytes: Number(r.t) }));
    },

    async close(): Promise<void> {
      if (closed) return;
      await queue;
      closed = true;
      for (const conn of open) conn.interrupt();
      writer.closeSync();
      instance.closeSync();
      rmSync(spoolDir, { recursive: true, force: true });
    },
  };
  return self;
}
