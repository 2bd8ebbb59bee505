import type { Command } from 'commander';
import { serviceConfig } from '../cli-config.js';

/** registerAlerter adds `tapwire alerter`: evaluate alert rules and notify until SIGTERM/SIGINT. */
export function registerAlerter(program: Command): void {
  program
    .command('alerter')
    .description(
      'run the alerting worker: evaluates the rules of alerter.rulesFile, keeps alert state on Kafka, notifies Slack, PagerDuty and webhooks',
    )
    .action(async () => {
      const config = serviceConfig(program.opts<{ config?: string }>().config, 'alerter');
      const { runAlerterService } = await import('@tapwire/alerter');
      await runAlerterService(config, { handleSignals: true });
    });
}
