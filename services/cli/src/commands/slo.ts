import type { Command } from 'commander';
import { loadTapwireConfig } from '../cli-config.js';
import { type CliIo, CommandFailure } from '../io.js';

/** registerSlo adds `tapwire slo export --prometheus`: the SLOs as Prometheus recording and alerting rules. */
export function registerSlo(program: Command, io: CliIo): void {
  const slo = program.command('slo').description('service level objectives of the alerting file');
  slo
    .command('export')
    .description(
      'print Prometheus recording and alerting rules (YAML) equivalent to the SLOs and their burn-rate alerts, over the proxy metrics; SLOs those metrics cannot express are listed with the reason',
    )
    .option('--prometheus', 'Prometheus rule file format (the only format)')
    .option('-f, --file <alerting.yaml>', 'alerting file (default: alerter.rulesFile of the configuration)')
    .action(async (opts: { prometheus?: boolean; file?: string }) => {
      if (!opts.prometheus) throw new CommandFailure('choose the output format: --prometheus', 2);
      const config = loadTapwireConfig(program.opts<{ config?: string }>().config);
      const file = opts.file ?? config.alerter.rulesFile;
      const [{ loadAlertingFile }, { REQUEST_DURATION_BUCKETS_S }, { prometheusSloRules }] =
        await Promise.all([
          import('@tapwire/alerting'),
          import('@tapwire/proxy'),
          import('../prometheus-slo-rules.js'),
        ]);
      let alerting: ReturnType<typeof loadAlertingFile>;
      try {
        alerting = loadAlertingFile(file);
      } catch (err) {
        throw new CommandFailure((err as Error).message, 2, { cause: err });
      }
      const proxy = config.proxy;
      const upstreams =
        proxy.upstreams.length === 0
          ? undefined
          : [
              ...proxy.upstreams.map((u) => ({
                upstream: u.name,
                service: u.service ?? u.name,
                tenant: u.tenant ?? proxy.tenant,
              })),
              { upstream: 'unmatched', service: proxy.service, tenant: proxy.tenant },
            ];
      io.out(prometheusSloRules(alerting, { source: file, upstreams, bucketsS: REQUEST_DURATION_BUCKETS_S }));
    });
}
