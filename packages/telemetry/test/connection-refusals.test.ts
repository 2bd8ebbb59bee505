import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type ConnectionRefusals, createConnectionRefusals } from '../src/connection-refusals.js';

const ANSWER = 'HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n';

let server: Server | undefined;
afterEach(async () => {
  await new Promise((r) => server?.close(r) ?? r(undefined));
  server = undefined;
});

/**
 * refusedClient opens a half-open client (it keeps its side open after the server's FIN, like the
 * clients that held the proxy's shutdown) to a server whose sockets also allow half-open, as
 * http.Server's do, and refuses it at once; it resolves when the client has read the answer.
 */
async function refusedClient(refusals: ConnectionRefusals) {
  let serverSide: Socket | undefined;
  let serverSideClosed = false;
  server = createServer({ allowHalfOpen: true }, (socket) => {
    serverSide = socket;
    socket.on('close', () => {
      serverSideClosed = true;
    });
    refusals.refuse(socket, ANSWER);
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const client = connect({
    port: (server.address() as AddressInfo).port,
    host: '127.0.0.1',
    allowHalfOpen: true,
  });
  client.on('error', () => {});
  let received = '';
  let ended = false;
  client.on('data', (c: Buffer) => {
    received += c.toString('latin1');
  });
  client.on('end', () => {
    ended = true;
  });
  await vi.waitFor(() => expect(ended).toBe(true), { timeout: 5000, interval: 10 });
  expect(received).toBe(ANSWER);
  expect(serverSide).toBeDefined();
  return { client, serverSideClosed: () => serverSideClosed };
}

describe('createConnectionRefusals', () => {
  it('destroys a refused connection the client keeps half open once lingerMs has passed', async () => {
    const refusals = createConnectionRefusals(50);
    const { client, serverSideClosed } = await refusedClient(refusals);
    try {
      await vi.waitFor(() => expect(serverSideClosed()).toBe(true), { timeout: 5000, interval: 10 });
      expect(refusals.open).toBe(0);
    } finally {
      client.destroy();
    }
  });

  it('destroyAll destroys refused connections still lingering, for a server shutting down', async () => {
    const refusals = createConnectionRefusals(60_000);
    const { client, serverSideClosed } = await refusedClient(refusals);
    try {
      expect(refusals.open).toBe(1);
      expect(serverSideClosed()).toBe(false);
      refusals.destroyAll();
      await vi.waitFor(() => expect(serverSideClosed()).toBe(true), { timeout: 5000, interval: 10 });
      expect(refusals.open).toBe(0);
    } finally {
      client.destroy();
    }
  });
});
