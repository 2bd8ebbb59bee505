import type { InfraConfig } from '@tapwire/config';
import {
  CLICKHOUSE_READONLY_USER,
  clickhouseDown,
  clickhouseStatus,
  clickhouseUp,
  clickhouseUrl,
} from './clickhouse.js';
import {
  ensureKafkaLibs,
  kafkaBrokers,
  kafkaDown,
  kafkaStatus,
  kafkaUp,
  type ServerStatus,
} from './kafka.js';

/** infraUp starts ClickHouse and Kafka (each only if not already running) and waits until both answer. */
export async function infraUp(cfg: InfraConfig, say: (line: string) => void): Promise<void> {
  await clickhouseUp(cfg, say);
  await kafkaUp(cfg, say);
}

/** infraDown stops what infraUp started (by pid file), Kafka first. */
export async function infraDown(cfg: InfraConfig, say: (line: string) => void): Promise<void> {
  await kafkaDown(cfg, say);
  await clickhouseDown(cfg, say);
}

/** infraStatus reports each server's pid, address and readiness. */
export async function infraStatus(cfg: InfraConfig): Promise<ServerStatus[]> {
  return [await kafkaStatus(cfg), await clickhouseStatus(cfg)];
}

export {
  CLICKHOUSE_READONLY_USER,
  clickhouseDown,
  clickhouseUp,
  clickhouseUrl,
  ensureKafkaLibs,
  kafkaBrokers,
  kafkaDown,
  kafkaUp,
  type ServerStatus,
};
