export {
  type DuckDb,
  type DuckDbErrorCode,
  type DuckDbOptions,
  openDuckDb,
  type QueryLimits,
  TapwireDuckDbError,
} from './db.js';
export {
  createTableSql,
  LATENCY_BUCKET_SQL,
  type Rollup,
  TABLES,
  type TableSpec,
  tableSpec,
} from './schema.js';
export { DuckSql, DuckSqlError, type DuckValue, identifier, joinSql, raw, sql } from './sql.js';
