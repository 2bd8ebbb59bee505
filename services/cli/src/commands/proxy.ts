import type { Command } from 'commander';
import { serviceConfig } from '../cli-config.js';

/** registerProxy adds `tapwire proxy`: run the reverse proxy until SIGTERM/SIGINT. */
export function registerProxy(program: Command): void {
  program
    .command('proxy')
    .description(
      'run the reverse proxy: forwards to the configured upstreams and emits spans, access logs and saturation samples to Kafka',
    )
    .action(async () => {
      const config = serviceConfig(program.opts<{ config?: string }>().config, 'proxy');
      const { runProxyService } = await import('@tapwire/proxy');
      await runProxyService(config, { handleSignals: true });
      // Keep running: the servers hold the event loop open until a signal stops them.
    });
}
