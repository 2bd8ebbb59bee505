export { type ClickHouse, createClickHouse, type QueryOptions } from './client.js';
export { type DayDrop, type DropDayOptions, dropDayPartition } from './day-partition.js';
export {
  CH_ERRORS,
  type ClickHouseErrorCode,
  classifyError,
  serverCodeOf,
  TapwireClickHouseError,
} from './errors.js';
export {
  appliedMigrations,
  type MigrateOptions,
  type MigrateReport,
  type Migration,
  type MigrationLogger,
  migrate,
  readMigrations,
} from './migrate.js';
export { identifier, joinSql, literal, quoteString, raw, SqlFragment, type SqlValue, sql } from './sql.js';
export { splitStatements, stripComments } from './statements.js';
