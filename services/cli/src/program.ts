import { readFileSync } from 'node:fs';
import { ConfigError } from '@tapwire/config';
import { Command, CommanderError } from 'commander';
import { registerAlerter } from './commands/alerter.js';
import { registerApi } from './commands/api.js';
import { registerDemo } from './commands/demo.js';
import { registerInfra } from './commands/infra.js';
import { registerIngest } from './commands/ingest.js';
import { registerMigrate } from './commands/migrate.js';
import { registerOtlp } from './commands/otlp.js';
import { registerProxy } from './commands/proxy.js';
import { registerReplay } from './commands/replay.js';
import { registerSlo } from './commands/slo.js';
import { registerStart } from './commands/start.js';
import { registerTopics } from './commands/topics.js';
import { registerExport, registerImport } from './commands/transfer.js';
import { type CliIo, CommandFailure, describeError, processIo, readProcessStdin } from './io.js';

/** cliVersion is the version of the tapwire command, from its package.json (beside src/ and dist/). */
export function cliVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** buildProgram assembles the `tapwire` command line; every subcommand has --help. */
export function buildProgram(io: CliIo = processIo): Command {
  const program = new Command('tapwire')
    .description(
      'Tapwire: runtime observability for HTTP APIs (proxy → event log → store → API, alerts, Grafana; on one machine or on Kafka and ClickHouse)',
    )
    .version(cliVersion(), '-V, --version', 'print the version')
    .option('-c, --config <file>', 'YAML or JSON config file (default: $TAPWIRE_CONFIG)')
    .showHelpAfterError()
    .configureOutput({ writeOut: io.out, writeErr: io.err });
  registerMigrate(program, io);
  registerTopics(program, io);
  registerProxy(program);
  registerOtlp(program);
  registerIngest(program);
  registerApi(program, io, io.readStdin ?? readProcessStdin);
  registerAlerter(program);
  registerSlo(program, io);
  registerStart(program, io);
  registerDemo(program, io);
  registerReplay(program, io);
  registerExport(program, io);
  registerImport(program, io);
  registerInfra(program, io);
  return program;
}

/** runCli parses argv, runs the command and resolves to the process exit code. */
export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const program = buildProgram(io);
  program.exitOverride();
  for (const c of program.commands) {
    c.exitOverride();
    for (const sub of c.commands) sub.exitOverride();
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof CommandFailure) {
      if (err.message) io.err(`tapwire: ${err.message}\n`);
      return err.exitCode;
    }
    // Found only when a service is built (a JWKS file that cannot be read): the same exit code as a
    // configuration file that does not validate.
    if (err instanceof ConfigError) {
      io.err(`tapwire: ${err.message}\n`);
      return 2;
    }
    io.err(`tapwire: ${describeError(err)}\n`);
    return 1;
  }
}
