import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { serviceConfig } from '../cli-config.js';
import { type CliIo, CommandFailure } from '../io.js';

/** registerApi adds `tapwire api` (run the analytics API) and `tapwire token` (make or hash a bearer token). */
export function registerApi(program: Command, io: CliIo, readStdin: () => Promise<string>): void {
  program
    .command('api')
    .description(
      'run the analytics API: /v1 questions over ClickHouse, OpenAPI at /openapi.json, docs at /docs',
    )
    .action(async () => {
      const config = serviceConfig(program.opts<{ config?: string }>().config, 'api');
      const { runApiService } = await import('@tapwire/api');
      await runApiService(config, { handleSignals: true });
    });
  program
    .command('token')
    .description(
      'print a new random API token with the api.tokens entry that admits it (only the hash goes in config); --hash reads a token on stdin',
    )
    .option('--hash', 'read a token from stdin and print its sha256 (never pass tokens as arguments)')
    .option('--name <name>', 'name of the token in config', 'my-token')
    .option('--tenant <tenant>', 'tenant the token reads, or * for all', '*')
    .option('--admin', 'also grant the admin scope')
    .option('--otlp', 'print the otlp.tokens entry instead: apps send their spans with it (needs --tenant)')
    .action(
      async (opts: { hash?: boolean; name: string; tenant: string; admin?: boolean; otlp?: boolean }) => {
        const { hashToken } = await import('@tapwire/config');
        if (opts.hash) {
          const token = (await readStdin()).trim();
          if (!token) throw new CommandFailure('no token on stdin');
          io.out(`${hashToken(token)}\n`);
          return;
        }
        const token = `tw_${randomBytes(24).toString('base64url')}`;
        if (opts.otlp) {
          // An app's spans belong to one tenant: the receiver never lets a token pick another.
          if (opts.tenant === '*')
            throw new CommandFailure('--otlp needs --tenant <tenant>: the tenant its spans belong to');
          io.out(
            [
              `token: ${token}`,
              '# add to the config file under otlp.tokens; apps send it as "Authorization: Bearer <token>":',
              `- name: ${opts.name}`,
              `  sha256: ${hashToken(token)}`,
              `  tenant: "${opts.tenant}"`,
              '',
            ].join('\n'),
          );
          return;
        }
        io.out(
          [
            `token: ${token}`,
            '# add to the config file under api.tokens:',
            `- name: ${opts.name}`,
            `  sha256: ${hashToken(token)}`,
            `  tenant: "${opts.tenant}"`,
            `  scopes: [read${opts.admin ? ', admin' : ''}]`,
            '',
          ].join('\n'),
        );
      },
    );
}
