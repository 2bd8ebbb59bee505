import { Readable } from 'node:stream';
import {
  type ClickHouseClient,
  ClickHouseLogLevel,
  type ClickHouseSettings,
  createClient,
} from '@clickhouse/client';
import type { ClickHouseConfig } from '@tapwire/config';
import { capabilitiesOf, noCapabilities, type ServerCapabilities } from './capabilities.js';
import { classifyError } from './errors.js';
import { identifier, parameterized, type QueryParamValue, type SqlFragment } from './sql.js';

/** QueryOptions are per-query limits; only settings that exist on 18.16 and on 24.x/25.x are allowed. */
export interface QueryOptions {
  /** Whole seconds; ClickHouse ignores fractions. */
  readonly maxExecutionTimeS?: number;
  readonly maxResultRows?: number;
  readonly maxMemoryBytes?: number;
  readonly maxRowsToRead?: number;
  /** 2 = read only but settings may change (1 would refuse every per-query setting). */
  readonly readonly?: 0 | 1 | 2;
  readonly queryId?: string;
  readonly signal?: AbortSignal;
}

/** ClickHouse is the narrow client every Tapwire component uses instead of @clickhouse/client. */
export interface ClickHouse {
  readonly database: string;
  /**
   * query runs a SELECT and returns its rows (64-bit integers arrive as strings); its values go as
   * server-side parameters when the server has them (capabilities().queryParams), else inline.
   */
  query<T = Record<string, unknown>>(statement: SqlFragment, options?: QueryOptions): Promise<T[]>;
  /**
   * command runs DDL or any statement without a result, always with inline literals: DDL and
   * mutations keep their text in table metadata, where a placeholder has no value.
   */
  command(statement: SqlFragment, options?: QueryOptions): Promise<void>;
  /** insert writes rows as JSONEachRow; every column must be present in each row. */
  insert(table: string, rows: readonly Record<string, unknown>[], options?: QueryOptions): Promise<void>;
  /**
   * insertNdjson writes rows already serialized as NDJSON: the pieces of `body`, concatenated, are
   * JSON objects each ending in a newline (every column present). Pieces go out as they are, so a
   * caller can keep rows in large buffers outside the JavaScript heap.
   */
  insertNdjson(table: string, body: readonly (string | Uint8Array)[], options?: QueryOptions): Promise<void>;
  /** ping resolves true when the server answers /ping. */
  ping(): Promise<boolean>;
  /** serverVersion returns `SELECT version()`. */
  serverVersion(): Promise<string>;
  /**
   * capabilities reads the server's version once (again after a failed attempt) and says what it
   * can do beyond 18.16's SQL (capabilities.ts); query() uses it to choose how values are sent.
   */
  capabilities(): Promise<ServerCapabilities>;
  close(): Promise<void>;
}

/** ClickHouseOverrides adjust one client: another database, or no capabilities whatever the server. */
export interface ClickHouseOverrides {
  readonly database?: string;
  /** false: use none of the server's capabilities (inline literals, partition drops), as on 18.16. */
  readonly capabilities?: boolean;
}

function settingsOf(options: QueryOptions | undefined): ClickHouseSettings {
  const s: ClickHouseSettings = {};
  if (!options) return s;
  if (options.maxExecutionTimeS !== undefined)
    s.max_execution_time = Math.max(1, Math.ceil(options.maxExecutionTimeS));
  if (options.maxResultRows !== undefined) {
    s.max_result_rows = String(options.maxResultRows);
    s.result_overflow_mode = 'throw';
  }
  if (options.maxMemoryBytes !== undefined) s.max_memory_usage = String(options.maxMemoryBytes);
  if (options.maxRowsToRead !== undefined) s.max_rows_to_read = String(options.maxRowsToRead);
  if (options.readonly !== undefined) s.readonly = String(options.readonly) as '0' | '1' | '2';
  return s;
}

/** isStaleSocket is true for the reset a server's keep-alive close causes on a reused socket. */
function isStaleSocket(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  return e?.code === 'ECONNRESET' || /socket hang up/.test(e?.message ?? '');
}

/** createClickHouse builds the ClickHouse client from validated config; overrides pick another database or turn capabilities off. */
export function createClickHouse(config: ClickHouseConfig, overrides: ClickHouseOverrides = {}): ClickHouse {
  const database = overrides.database ?? config.database;
  const client: ClickHouseClient = createClient({
    url: config.url,
    username: config.username,
    password: config.password,
    database,
    request_timeout: config.requestTimeoutMs,
    max_open_connections: config.maxOpenConnections,
    application: 'tapwire',
    // A socket idle longer than its TTL is dropped when it is next picked, not only by its timer:
    // after an event-loop stall the timer has not run, and the server has already closed it.
    keep_alive: { eagerly_destroy_stale_sockets: true },
    // Errors are classified and logged by the caller; the client's own console logger would duplicate them.
    log: { level: ClickHouseLogLevel.OFF },
    clickhouse_settings: {
      // Without it a failure after streaming began still returns HTTP 200: the server has already
      // sent the status line when the error happens.
      wait_end_of_query: 1,
      // 64-bit integers arrive as strings (as the interface says): 25.8 made bare numbers the
      // default, which lose precision above 2^53. 18.16 has the setting with this default.
      output_format_json_quote_64bit_integers: 1,
    },
  });

  /** read runs a SELECT and parses its rows; sent once more when the server closed a kept-alive socket under it. */
  async function read<T>(
    query: string,
    params: Readonly<Record<string, QueryParamValue>>,
    options?: QueryOptions,
  ): Promise<T[]> {
    const run = async () => {
      const rs = await client.query({
        query,
        ...(Object.keys(params).length > 0 ? { query_params: params } : {}),
        format: 'JSONEachRow',
        clickhouse_settings: settingsOf(options),
        ...(options?.queryId ? { query_id: options.queryId } : {}),
        ...(options?.signal ? { abort_signal: options.signal } : {}),
      });
      return await rs.json<T>();
    };
    try {
      return await run();
    } catch (err) {
      // A read is safe to send again: once, when the server closed a kept-alive socket under it.
      if (!isStaleSocket(err) || options?.signal?.aborted) throw classifyError(err);
      try {
        return await run();
      } catch (again) {
        throw classifyError(again);
      }
    }
  }

  async function serverVersion(): Promise<string> {
    const rows = await read<{ v: string }>('SELECT version() AS v', {});
    return rows[0]?.v ?? '';
  }
  let detected: Promise<ServerCapabilities> | undefined;
  function capabilities(): Promise<ServerCapabilities> {
    detected ??= serverVersion().then(
      (v) => (overrides.capabilities === false ? noCapabilities(v) : capabilitiesOf(v)),
      (err: unknown) => {
        detected = undefined;
        throw err;
      },
    );
    return detected;
  }

  return {
    database,
    async query<T>(statement: SqlFragment, options?: QueryOptions): Promise<T[]> {
      const { query, params } = (await capabilities()).queryParams
        ? parameterized(statement)
        : { query: statement.text, params: {} };
      return read<T>(query, params, options);
    },
    async command(statement: SqlFragment, options?: QueryOptions): Promise<void> {
      try {
        await client.command({
          query: statement.text,
          clickhouse_settings: settingsOf(options),
          ...(options?.queryId ? { query_id: options.queryId } : {}),
          ...(options?.signal ? { abort_signal: options.signal } : {}),
        });
      } catch (err) {
        throw classifyError(err);
      }
    },
    async insert(
      table: string,
      rows: readonly Record<string, unknown>[],
      options?: QueryOptions,
    ): Promise<void> {
      if (rows.length === 0) return;
      try {
        await client.insert({
          table: identifier(table).text,
          values: rows as Record<string, unknown>[],
          format: 'JSONEachRow',
          clickhouse_settings: { ...settingsOf(options), input_format_skip_unknown_fields: 1 },
          ...(options?.queryId ? { query_id: options.queryId } : {}),
          ...(options?.signal ? { abort_signal: options.signal } : {}),
        });
      } catch (err) {
        throw classifyError(err, 'TAPWIRE_CH_INSERT_FAILED');
      }
    },
    async insertNdjson(
      table: string,
      body: readonly (string | Uint8Array)[],
      options?: QueryOptions,
    ): Promise<void> {
      if (body.every((piece) => piece.length === 0)) return;
      try {
        // Rows already serialized by the caller go in the body as they are (exec with values).
        const result = await client.exec({
          query: `INSERT INTO ${identifier(table).text} FORMAT JSONEachRow`,
          values: Readable.from(body, { objectMode: false }),
          clickhouse_settings: { ...settingsOf(options), input_format_skip_unknown_fields: 1 },
          ...(options?.queryId ? { query_id: options.queryId } : {}),
          ...(options?.signal ? { abort_signal: options.signal } : {}),
        });
        result.stream.resume();
        await new Promise<void>((resolve, reject) => {
          result.stream.once('end', resolve);
          result.stream.once('error', reject);
        });
      } catch (err) {
        throw classifyError(err, 'TAPWIRE_CH_INSERT_FAILED');
      }
    },
    async ping(): Promise<boolean> {
      const r = await client.ping();
      return r.success;
    },
    serverVersion,
    capabilities,
    close: () => client.close(),
  };
}
