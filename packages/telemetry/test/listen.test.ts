import { createServer, type Server } from 'node:net';
import { createAdminServer, explainListenError, ListenError, listenAt } from '@tapwire/telemetry';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';

const held: Server[] = [];
afterEach(async () => {
  for (const s of held.splice(0)) await new Promise((r) => s.close(r));
});

/** holdPort binds a free port on 127.0.0.1 the way another process would, and returns it. */
async function holdPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  held.push(server);
  return (server.address() as { port: number }).port;
}

function rejection(p: Promise<unknown>): Promise<ListenError> {
  return p.then(
    () => {
      throw new Error('expected the listener to fail');
    },
    (err: unknown) => err as ListenError,
  );
}

describe('createAdminServer', () => {
  it('names the setting and its environment variable when its port is in use', async () => {
    const port = await holdPort();
    const admin = createAdminServer({
      section: 'ingest.admin',
      host: '127.0.0.1',
      port,
      registry: new Registry(),
      readiness: () => ({ ready: true }),
    });
    const err = await rejection(admin.listen());
    await admin.close();
    expect(err).toBeInstanceOf(ListenError);
    expect(err.code).toBe('TAPWIRE_PORT_IN_USE');
    expect(err.message).toBe(
      `127.0.0.1:${port} is in use — ingest.admin.port (env TAPWIRE_INGEST_ADMIN_PORT)`,
    );
    expect(err.setting).toBe('ingest.admin.port');
    expect(err.address).toBe(`127.0.0.1:${port}`);
    expect((err.cause as NodeJS.ErrnoException).code).toBe('EADDRINUSE');
  });
});

describe('listenAt', () => {
  it('names the host setting when the address is not this machine’s', async () => {
    // 192.0.2.0/24 is TEST-NET-1: never an address of this machine.
    const server = createServer();
    const err = await rejection(
      listenAt({ section: 'proxy.listen', host: '192.0.2.1', port: 0 }, () => {
        return new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(0, '192.0.2.1', resolve);
        });
      }),
    );
    expect(err.code).toBe('TAPWIRE_LISTEN_FAILED');
    expect(err.message).toBe(
      'cannot listen on 192.0.2.1:0: not an address of this machine (EADDRNOTAVAIL) — proxy.listen.host (env TAPWIRE_PROXY_LISTEN_HOST)',
    );
  });

  it('resolves with what the listener resolves with', async () => {
    expect(await listenAt({ section: 'api.listen', host: '127.0.0.1', port: 1 }, async () => 'url')).toBe(
      'url',
    );
  });
});

describe('explainListenError', () => {
  it('names the port setting for a privileged port, brackets an IPv6 host, and passes other errors through', () => {
    const eacces = Object.assign(new Error('listen EACCES'), { code: 'EACCES' });
    const explained = explainListenError(eacces, {
      section: 'api.listen',
      host: '::',
      port: 80,
    }) as ListenError;
    expect(explained.code).toBe('TAPWIRE_LISTEN_FAILED');
    expect(explained.message).toBe(
      'cannot listen on [::]:80: permission denied (ports below 1024 need privileges) — api.listen.port (env TAPWIRE_API_LISTEN_PORT)',
    );
    expect(explained.cause).toBe(eacces);
    const other = new Error('something else');
    expect(explainListenError(other, { section: 'api.listen', host: '::', port: 80 })).toBe(other);
  });
});
