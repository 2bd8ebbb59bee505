export { closestName, editDistance } from './closest-name.js';
export { type ClickHouseConfig, clickhouseConfigSchema } from './components/clickhouse.js';
export { DEFAULT_KAFKA_VERSION, type InfraConfig, infraConfigSchema } from './components/infra.js';
export { type KafkaConfig, kafkaConfigSchema } from './components/kafka.js';
export { type LogConfig, logConfigSchema } from './components/log.js';
export { type StoreConfig, storeConfigSchema } from './components/store.js';
export {
  LOG_FORMATS,
  LOG_LEVELS,
  type TelemetryConfig,
  telemetryConfigSchema,
} from './components/telemetry.js';
export { ConfigError, type ConfigIssue } from './errors.js';
export {
  CONFIG_FILE_ENV,
  ENV_PREFIX,
  type ExitFn,
  envWarnings,
  givenSections,
  type LoadConfigOptions,
  loadConfig,
  loadConfigOrExit,
  NON_SETTING_ENV_VARS,
} from './load.js';
export {
  type ConfigLeaf,
  configLeaves,
  envVarName,
  keysAt,
  type LeafKind,
  strictEnvPrefixes,
} from './schema-walk.js';
export { hashToken } from './token-hash.js';
export { describeUnknownEnvVar, type UnknownEnvVar, unknownEnvVars } from './unknown-env.js';
