import type { Command } from 'commander';
import { serviceConfig } from '../cli-config.js';

/** registerOtlp adds `tapwire otlp`: run the OTLP trace receiver until SIGTERM/SIGINT. */
export function registerOtlp(program: Command): void {
  program
    .command('otlp')
    .description(
      'run the OTLP trace receiver (gRPC :4317, HTTP :4318/v1/traces): apps’ own spans, written first to a local log and shipped to Kafka',
    )
    .action(async () => {
      const config = serviceConfig(program.opts<{ config?: string }>().config, 'otlp');
      const { runOtlpService } = await import('@tapwire/otlp-service');
      await runOtlpService(config, { handleSignals: true });
      // Keep running: the servers hold the event loop open until a signal stops them.
    });
}
