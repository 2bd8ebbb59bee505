import type { Command } from 'commander';
import { loadTapwireConfig } from '../cli-config.js';
import { type CliIo, CommandFailure } from '../io.js';

/** registerInfra adds `tapwire infra up|down|status`: local Kafka and ClickHouse as plain processes. */
export function registerInfra(program: Command, io: CliIo): void {
  const infra = program
    .command('infra')
    .description(
      'run a local Kafka (Maven Central jars) and ClickHouse (Debian package) for development and tests',
    );
  const cfg = () => loadTapwireConfig(program.opts<{ config?: string }>().config).infra;
  const say = (line: string) => io.out(`${line}\n`);

  infra
    .command('up')
    .description('start ClickHouse and Kafka unless already running, and wait until both answer')
    .action(async () => (await import('@tapwire/infra')).infraUp(cfg(), say));
  infra
    .command('down')
    .description('stop the servers `infra up` started (by pid file); leaves their data in place')
    .action(async () => (await import('@tapwire/infra')).infraDown(cfg(), say));
  infra
    .command('status')
    .description('show pid, address and readiness of each server; exit 1 unless both are ready')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const status = await (await import('@tapwire/infra')).infraStatus(cfg());
      if (opts.json) io.out(`${JSON.stringify(status, null, 2)}\n`);
      else {
        for (const s of status) {
          io.out(
            `${s.version ? `${s.name} ${s.version}` : s.name}\t${s.ready ? 'ready' : s.pid ? 'not answering' : 'stopped'}\t${s.address}\tpid=${s.pid ?? '-'}\tlog=${s.log}\n`,
          );
        }
      }
      if (!status.every((s) => s.ready)) throw new CommandFailure('', 1);
    });
}
