import { createServer, type Server } from 'node:net';
import { buildProxy, proxyConfigSchema } from '@tapwire/proxy';
import { createLogger, type ListenError } from '@tapwire/telemetry';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemorySink } from '../../../test/support/memory-sink.js';
import { freePort } from '../../../test/support/upstream.js';

const held: Server[] = [];
afterEach(async () => {
  for (const s of held.splice(0)) await new Promise((r) => s.close(r));
});

/** hold binds 127.0.0.1:port the way another process would. */
async function hold(port: number): Promise<void> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  held.push(server);
}

function proxyOn(listenPort: number, adminPort: number) {
  return buildProxy(
    { sink: createMemorySink(), logger: createLogger({ name: 'test', level: 'silent' }) },
    proxyConfigSchema.parse({
      listen: { host: '127.0.0.1', port: listenPort },
      admin: { host: '127.0.0.1', port: adminPort },
    }),
  );
}

async function startFailure(start: Promise<unknown>): Promise<ListenError> {
  return start.then(
    () => {
      throw new Error('expected start() to fail');
    },
    (err: unknown) => err as ListenError,
  );
}

describe('a proxy whose port is taken', () => {
  it('fails to start naming proxy.listen.port and TAPWIRE_PROXY_LISTEN_PORT', async () => {
    const [listenPort, adminPort] = [await freePort(), await freePort()];
    await hold(listenPort);
    const err = await startFailure(proxyOn(listenPort, adminPort).start());
    expect(err.code).toBe('TAPWIRE_PORT_IN_USE');
    expect(err.message).toBe(
      `127.0.0.1:${listenPort} is in use — proxy.listen.port (env TAPWIRE_PROXY_LISTEN_PORT)`,
    );
    // The admin server was never started: its port is free.
    await hold(adminPort);
  });

  it('fails to start naming proxy.admin.port, and lets go of the proxy port it had bound', async () => {
    const [listenPort, adminPort] = [await freePort(), await freePort()];
    await hold(adminPort);
    const proxy = proxyOn(listenPort, adminPort);
    const err = await startFailure(proxy.start());
    expect(err.code).toBe('TAPWIRE_PORT_IN_USE');
    expect(err.message).toBe(
      `127.0.0.1:${adminPort} is in use — proxy.admin.port (env TAPWIRE_PROXY_ADMIN_PORT)`,
    );
    await hold(listenPort);
  });
});
