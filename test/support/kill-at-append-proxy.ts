// kill-at-append-proxy runs a proxy in its own process whose local log kills that process with
// SIGKILL at the first append of an access log: the instant a write-first proxy records a
// request. Usage: kill-at-append-proxy <upstream url>; prints "listening <proxy url>" once ready.
import { createWriteFirstSink } from '@tapwire/log';
import { buildProxy, proxyConfigSchema } from '@tapwire/proxy';
import { TOPICS } from '@tapwire/schema';
import { createLogger } from '@tapwire/telemetry';

const upstream = process.argv[2];
if (!upstream) {
  process.stderr.write('usage: kill-at-append-proxy <upstream url>\n');
  process.exit(2);
}
const logger = createLogger({ name: 'kill-at-append-proxy', level: 'silent' });
const sink = createWriteFirstSink(
  {
    appendSync(topic) {
      if (topic === TOPICS.accessLogs) process.kill(process.pid, 'SIGKILL');
      return 0n;
    },
  },
  { logger },
);
const proxy = buildProxy(
  { sink, logger },
  proxyConfigSchema.parse({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: [{ name: 'up', url: upstream }],
  }),
);
const { proxyUrl } = await proxy.start();
process.stdout.write(`listening ${proxyUrl}\n`);
