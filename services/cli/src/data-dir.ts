import { dirname, resolve } from 'node:path';
import type { TapwireConfig } from './cli-config.js';

/**
 * dataDir is where `tapwire start` keeps what belongs to its data: the directory of the DuckDB
 * file, else the one holding the embedded log's directory (by default .tapwire/data either way,
 * also on Kafka and ClickHouse). The local API token and the demo's alerting file live there.
 */
export function dataDir(config: TapwireConfig): string {
  return resolve(config.store.kind === 'duckdb' ? dirname(config.store.path) : dirname(config.log.dir));
}
