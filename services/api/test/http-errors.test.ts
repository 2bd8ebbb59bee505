import { connect } from 'node:net';
import type { Store } from '@tapwire/analytics';
import { hashToken } from '@tapwire/config';
import { createLogger } from '@tapwire/telemetry';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Api, apiConfigSchema, buildApi } from '../src/index.js';

// Requests a normal HTTP client cannot send, written byte for byte to a listening API: what Node's
// parser or fastify refuse before any route must still be the API's JSON error, and a response
// after which the server closes the connection must say `Connection: close`.

const logger = createLogger({ name: 'api-http-errors', level: 'silent' });
const HEADERS_TIMEOUT_MS = 500;

const unusedStore = new Proxy({} as Store, {
  get: (_target, name) =>
    name === 'ping'
      ? async () => true
      : name === 'close'
        ? async () => {}
        : () => Promise.reject(new Error('unused')),
});

let api: Api;
let port: number;

beforeAll(async () => {
  api = await buildApi(
    { store: unusedStore, logger },
    apiConfigSchema.parse({
      tokens: [{ name: 'ops', sha256: hashToken('o-token'), tenant: '*', scopes: ['read', 'admin'] }],
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
    }),
  );
  await api.app.listen({ host: '127.0.0.1', port: 0 });
  port = (api.app.server.address() as { port: number }).port;
});
afterAll(async () => {
  await api.app.close();
});

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * exchange writes requests on one connection, each after the previous one's response (keep-alive)
 * or all at once (pipelined), and returns the responses read until the server closes it.
 */
function exchange(
  writes: string[],
  mode: 'keep-alive' | 'pipelined' = 'keep-alive',
): Promise<{ responses: RawResponse[]; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const pending = [...writes];
    const socket = connect(port, '127.0.0.1', () => {
      if (mode === 'pipelined') socket.write(pending.splice(0).join(''));
      else socket.write(pending.shift() ?? '');
    });
    let data = '';
    let closedByServer = false;
    const guard = setTimeout(() => socket.destroy(), 10_000);
    socket.on('data', (c) => {
      data += c.toString('latin1');
      const answered = completeResponses(data);
      if (pending.length > 0 && answered === writes.length - pending.length)
        socket.write(pending.shift() ?? '');
    });
    socket.on('end', () => {
      closedByServer = true;
    });
    socket.on('close', () => {
      clearTimeout(guard);
      resolve({ responses: parseResponses(data), closedByServer });
    });
    socket.on('error', reject);
  });
}

/** completeResponses counts the whole responses (head and Content-Length body) in what was read so far. */
function completeResponses(data: string): number {
  let n = 0;
  let rest = data;
  for (;;) {
    const headEnd = rest.indexOf('\r\n\r\n');
    if (headEnd < 0) return n;
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(rest.slice(0, headEnd))?.[1] ?? 0);
    if (rest.length < headEnd + 4 + length) return n;
    n++;
    rest = rest.slice(headEnd + 4 + length);
  }
}

/** parseResponses splits a byte stream of HTTP/1.1 responses with Content-Length bodies. */
function parseResponses(data: string): RawResponse[] {
  const out: RawResponse[] = [];
  let rest = data;
  while (rest.length > 0) {
    const headEnd = rest.indexOf('\r\n\r\n');
    if (headEnd < 0) throw new Error(`incomplete response head: ${JSON.stringify(rest.slice(0, 200))}`);
    const [statusLine = '', ...lines] = rest.slice(0, headEnd).split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    out.push({
      status: Number(statusLine.split(' ')[1]),
      headers,
      body: rest.slice(headEnd + 4, headEnd + 4 + length),
    });
    rest = rest.slice(headEnd + 4 + length);
  }
  return out;
}

const HEALTH = 'GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n';

function expectJsonError(res: RawResponse | undefined, status: number, code: string) {
  expect(res?.status).toBe(status);
  expect(res?.headers['content-type']).toMatch(/^application\/json/);
  const body = JSON.parse(res?.body ?? '');
  expect(body).toEqual({ error: { code, message: expect.any(String), request_id: expect.any(String) } });
  expect(body.error.request_id.length).toBeGreaterThan(0);
  return body.error as { code: string; message: string; request_id: string };
}

describe('errors answered before routing', () => {
  const OVERSIZED = `GET /healthz HTTP/1.1\r\nHost: api\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`;

  it('a 431 on a keep-alive connection is JSON and says Connection: close before the server closes', async () => {
    const { responses, closedByServer } = await exchange([HEALTH, OVERSIZED]);
    expect(responses.map((r) => r.status)).toEqual([200, 431]);
    expect(responses[0]?.headers.connection).toBe('keep-alive');
    const error = expectJsonError(responses[1], 431, 'TAPWIRE_API_HEADERS_TOO_LARGE');
    expect(error.message).toBe('request line and headers are too large');
    expect(responses[1]?.headers.connection).toBe('close');
    expect(closedByServer).toBe(true);
  });

  it('a pipelined request before an oversized one is still answered, then the 431', async () => {
    const { responses, closedByServer } = await exchange([HEALTH, OVERSIZED], 'pipelined');
    expect(responses.map((r) => r.status)).toEqual([200, 431]);
    expect(JSON.parse(responses[0]?.body ?? '')).toEqual({ status: 'ok' });
    expectJsonError(responses[1], 431, 'TAPWIRE_API_HEADERS_TOO_LARGE');
    expect(closedByServer).toBe(true);
  });

  it('a malformed request line or header is a 400 JSON error with Connection: close', async () => {
    const cases = [
      ['NOT A REQUEST', 'Invalid method encountered'],
      ['GET /healthz HTTP/9.9', 'Invalid HTTP version'],
      ['GET /healthz HTTP/1.1\r\nBad Header', 'Invalid header token'],
    ] as const;
    for (const [line, reason] of cases) {
      const { responses, closedByServer } = await exchange([`${line}\r\nHost: api\r\n\r\n`]);
      expect(responses, line).toHaveLength(1);
      const error = expectJsonError(responses[0], 400, 'TAPWIRE_API_BAD_REQUEST');
      expect(error.message, line).toBe(`malformed HTTP request: ${reason}`);
      expect(responses[0]?.headers.connection, line).toBe('close');
      expect(closedByServer, line).toBe(true);
    }
  });

  it('a client that does not finish its headers in time gets a 408 JSON error with Connection: close', async () => {
    const { responses, closedByServer } = await exchange(['GET /healthz HTTP/1.1\r\nHost: api\r\n']);
    expect(responses).toHaveLength(1);
    const error = expectJsonError(responses[0], 408, 'TAPWIRE_API_REQUEST_TIMEOUT');
    expect(error.message).toBe('the request line and headers were not received in time');
    expect(responses[0]?.headers.connection).toBe('close');
    expect(closedByServer).toBe(true);
  });

  it('a body over the limit is a 413 JSON error and the connection is closed, saying so', async () => {
    const { responses, closedByServer } = await exchange([
      `POST /v1/silences HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer o-token\r\nContent-Type: application/json\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n{"matchers":[`,
    ]);
    expect(responses).toHaveLength(1);
    expectJsonError(responses[0], 413, 'TAPWIRE_API_BODY_TOO_LARGE');
    expect(responses[0]?.headers.connection).toBe('close');
    expect(closedByServer).toBe(true);
  });

  it('bad percent-encoding is a 400 JSON error and the connection stays usable', async () => {
    const { responses } = await exchange([
      'GET /v1/%zz HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer o-token\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n',
    ]);
    expect(responses.map((r) => r.status)).toEqual([400, 200]);
    expectJsonError(responses[0], 400, 'TAPWIRE_API_BAD_REQUEST');
  });

  it('an HTTP/1.1 request without Host is a 400 JSON error naming the header', async () => {
    const { responses } = await exchange(['GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n']);
    expect(responses).toHaveLength(1);
    const error = expectJsonError(responses[0], 400, 'TAPWIRE_API_BAD_REQUEST');
    expect(error.message).toBe('an HTTP/1.1 request needs a Host header');
  });
});

describe('shutdown', () => {
  it('close() destroys a refused connection its client keeps half open instead of waiting 5 s for it', async () => {
    const own = await buildApi({ store: unusedStore, logger }, apiConfigSchema.parse({ tokens: [] }));
    await own.app.listen({ host: '127.0.0.1', port: 0 });
    const ownPort = (own.app.server.address() as { port: number }).port;
    // allowHalfOpen: the client reads the API's FIN and keeps its own side open.
    const socket = connect({ port: ownPort, host: '127.0.0.1', allowHalfOpen: true });
    let data = '';
    let isClosed = false;
    socket.on('data', (c) => {
      data += c.toString('latin1');
    });
    socket.on('close', () => {
      isClosed = true;
    });
    socket.on('error', () => {});
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n');
    await new Promise<void>((resolve) => socket.once('end', () => resolve()));
    expect(data).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    // Without destroying it, close() waits for the refusal's 5 s linger to end the connection.
    const outcome = await Promise.race([
      own.app.close().then(() => 'closed' as const),
      new Promise<'still open'>((r) => setTimeout(() => r('still open'), 2500)),
    ]);
    expect(outcome).toBe('closed');
    // Having read the FIN, the client learns the connection is gone only when a write draws a
    // reset.
    await vi.waitFor(
      () => {
        if (!isClosed) socket.write('hello?');
        expect(isClosed).toBe(true);
      },
      { timeout: 2500, interval: 50 },
    );
  });
});
