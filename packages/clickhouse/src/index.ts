export {
  CAPABILITY_SINCE,
  type CapabilityName,
  capabilitiesOf,
  type KnownCapabilities,
  knownCapabilities,
  noCapabilities,
  type ServerCapabilities,
} from './capabilities.js';
export { type ClickHouse, type ClickHouseOverrides, createClickHouse, type QueryOptions } from './client.js';
export { type DayDrop, type DropDayOptions, dropDayPartition } from './day-partition.js';
export { type DayTtlChange, setDayTtl } from './day-ttl.js';
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
export {
  identifier,
  inline,
  joinSql,
  literal,
  PARAMS_BUDGET,
  type ParameterizedSql,
  parameterized,
  type QueryParamValue,
  quoteString,
  raw,
  SqlFragment,
  type SqlValue,
  sql,
} from './sql.js';
export { splitStatements, stripComments } from './statements.js';
