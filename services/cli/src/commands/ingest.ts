import type { Command } from 'commander';
import { serviceConfig } from '../cli-config.js';

/** registerIngest adds `tapwire ingest`: project Kafka into ClickHouse until SIGTERM/SIGINT. */
export function registerIngest(program: Command): void {
  program
    .command('ingest')
    .description('run the Kafka → ClickHouse projection (consumer group tapwire-ingest, DLQ, lag, retention)')
    .action(async () => {
      const config = serviceConfig(program.opts<{ config?: string }>().config, 'ingest');
      const { runIngestProcess } = await import('@tapwire/ingest');
      await runIngestProcess(config);
    });
}
