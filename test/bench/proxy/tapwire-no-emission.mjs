// Contender (e): Tapwire's proxy, same code and defaults as (d), with a sink that only counts the
// events instead of sending them: what the request path costs without the Kafka side.

import { buildProxy } from '@tapwire/proxy';
import { proxyConfigSchema } from '@tapwire/proxy/config';
import { emptySinkStats } from '@tapwire/stream';

let accepted = 0;
const sink = {
  emit: () => {
    accepted++;
    return true;
  },
  flush: async () => {},
  close: async () => {},
  stats: () => ({ ...emptySinkStats(), accepted }),
};
const silent = () => {};
const logger = { info: silent, warn: silent, error: silent, debug: silent, flush: silent };
const config = proxyConfigSchema.parse({
  listen: { host: '127.0.0.1', port: Number(process.env.PORT) },
  admin: { host: '127.0.0.1', port: Number(process.env.ADMIN_PORT) },
  upstreams: [{ name: 'users', url: process.env.UPSTREAM, routes: ['/users/:id'] }],
});
await buildProxy({ sink, logger }, config).start();
process.send?.('ready');
