import type { Command } from 'commander';
import { startDemoApi, startTraffic } from '../demo.js';
import { type CliIo, CommandFailure } from '../io.js';

/** registerDemo adds `tapwire demo`: the demo shop API and traffic through a proxy, for deployments where the proxy runs apart (docker-compose's demo profile). */
export function registerDemo(program: Command, io: CliIo): void {
  program
    .command('demo')
    .description(
      'serve the demo shop API and send traffic to it through a Tapwire proxy (what `tapwire start --demo` does in one process)',
    )
    .option('--listen <host:port>', 'where the demo API listens', '0.0.0.0:3000')
    .option('--proxy <url>', 'the proxy whose upstream is this demo API', 'http://127.0.0.1:8080')
    .option('--rate <rps>', 'requests per second', '20')
    .action(async (opts: { listen: string; proxy: string; rate: string }) => {
      const m = /^(.+):(\d+)$/.exec(opts.listen);
      if (!m) throw new CommandFailure(`--listen: not host:port: ${opts.listen}`, 2);
      const api = await startDemoApi((line) => io.out(`${line}\n`), {
        host: m[1] ?? '0.0.0.0',
        port: Number(m[2]),
      });
      const traffic = startTraffic(opts.proxy, Number(opts.rate) || 20);
      io.out(`demo API on ${opts.listen}; ${opts.rate} requests/s to ${opts.proxy}\n`);
      const stop = async () => {
        await traffic.stop();
        await api.close();
        process.exit(0);
      };
      process.once('SIGTERM', () => void stop());
      process.once('SIGINT', () => void stop());
    });
}
