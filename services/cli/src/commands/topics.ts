import { createLogger } from '@tapwire/telemetry';
import type { Command } from 'commander';
import { distributedConfig } from '../cli-config.js';
import type { CliIo } from '../io.js';

/** registerTopics adds `tapwire topics`: create or align Tapwire's Kafka topics. */
export function registerTopics(program: Command, io: CliIo): void {
  program
    .command('topics')
    .description(
      'create missing Kafka topics, grow partitions and align retention/compaction (safe to rerun)',
    )
    .action(async () => {
      const config = distributedConfig(program.opts<{ config?: string }>().config);
      const logger = createLogger({ name: 'tapwire-topics', level: config.telemetry.logLevel, fd: 2 });
      const { createKafkaClient, ensureTopics, topicSpecs } = await import('@tapwire/kafka');
      const kafka = createKafkaClient(config.kafka, logger, 'topics');
      const report = await ensureTopics(kafka, topicSpecs(config.kafka.topics));
      for (const [what, list] of Object.entries(report))
        for (const t of list as string[]) io.out(`${t}\t${what}\n`);
    });
}
