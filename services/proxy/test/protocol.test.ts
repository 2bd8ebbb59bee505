import { createHash, randomBytes } from 'node:crypto';
import {
  createServer,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingHttpHeaders,
} from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { PROXY_ERRORS, type ProxyErrorCode } from '@tapwire/proxy';
import { createLogger } from '@tapwire/telemetry';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePort } from '../../../test/support/upstream.js';
import { type ProxyUnderTest, startProxy } from './helpers.js';

/** What the upstream of this file received: the body is hashed so a 2 MB upload can be compared. */
interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  bytes: number;
  sha256: string;
}

let upstreamUrl: string;
let closeUpstream: () => Promise<void>;
const received: Received[] = [];

beforeAll(async () => {
  const server = createServer((req, res) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
    });
    req.on('end', () => {
      const r = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        bytes,
        sha256: hash.digest('hex'),
      };
      received.push(r);
      const body = JSON.stringify({ bytes, sha256: r.sha256 });
      res.writeHead(req.method === 'POST' ? 201 : 200, {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
      });
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  closeUpstream = () =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
});
afterAll(() => closeUpstream());

/** A raw HTTP/1.1 response as read off the socket. */
interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function parseResponses(data: string): RawResponse[] {
  const out: RawResponse[] = [];
  let rest = data;
  while (rest.startsWith('HTTP/')) {
    const headEnd = rest.indexOf('\r\n\r\n');
    const [statusLine, ...lines] = rest.slice(0, headEnd).split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    const status = Number(statusLine!.split(' ')[1]);
    out.push({ status, headers, body: rest.slice(headEnd + 4, headEnd + 4 + length) });
    rest = rest.slice(headEnd + 4 + length);
  }
  return out;
}

/** RawClient is one client connection driven byte by byte. */
interface RawClient {
  readonly socket: Socket;
  /** received is everything read so far. */
  received(): string;
  /** waitFor resolves once what was read satisfies `done` (bounded by vitest's waitFor). */
  waitFor(done: (data: string) => boolean): Promise<string>;
  /** closed resolves true once the proxy closed the connection, false if it is still open after 5 s. */
  closed(): Promise<boolean>;
}

async function rawClient(port: number): Promise<RawClient> {
  const socket = connect(port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  let data = '';
  let isClosed = false;
  socket.on('data', (c: Buffer) => {
    data += c.toString('latin1');
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    isClosed = true;
  });
  return {
    socket,
    received: () => data,
    async waitFor(done) {
      await vi.waitFor(() => expect(done(data)).toBe(true), { timeout: 10_000, interval: 20 });
      return data;
    },
    async closed() {
      try {
        await vi.waitFor(() => expect(isClosed).toBe(true), { timeout: 5000, interval: 20 });
        return true;
      } catch {
        return false;
      }
    },
  };
}

/** exchange sends `payload` on a new connection and returns the responses read until the proxy closes it. */
async function exchange(
  port: number,
  payload: string,
): Promise<{ responses: RawResponse[]; closed: boolean }> {
  const c = await rawClient(port);
  c.socket.write(payload);
  const closed = await c.closed();
  c.socket.destroy();
  return { responses: parseResponses(c.received()), closed };
}

function errorBody(code: ProxyErrorCode, requestId: string) {
  return { error: { code, message: PROXY_ERRORS[code].message, request_id: requestId } };
}

describe('HTTP edge cases at the proxy', () => {
  let p: ProxyUnderTest;
  let port: number;
  beforeAll(async () => {
    p = await startProxy({
      limits: { maxBodyBytes: 4 * 1024 * 1024, headersTimeoutMs: 1000, requestTimeoutMs: 3000 },
      upstreams: [{ name: 'files', service: 'files-api', url: upstreamUrl, match: { pathPrefix: '/' } }],
    });
    port = Number(new URL(p.url).port);
  });
  afterAll(() => p.proxy.close());

  const accessLogs = () => p.sink.of('tapwire.access.v1');

  it('forwards an Expect: 100-continue upload with its body and answers with the upstream’s response (was a 502 upstream_error)', async () => {
    const body = randomBytes(2 * 1024 * 1024);
    const sha256 = createHash('sha256').update(body).digest('hex');
    const before = received.length;
    const logsBefore = accessLogs().length;
    const c = await rawClient(port);
    c.socket.write(
      `POST /upload/big HTTP/1.1\r\nHost: files.example\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
    );
    // The client holds its body back until the proxy says 100 Continue, as curl does.
    await c.waitFor((d) => d.includes('\r\n\r\n'));
    expect(c.received()).toBe('HTTP/1.1 100 Continue\r\n\r\n');
    c.socket.write(body);
    expect(await c.closed()).toBe(true);
    const [final, ...more] = parseResponses(c.received().slice('HTTP/1.1 100 Continue\r\n\r\n'.length));
    expect(more).toEqual([]);
    expect(final!.status).toBe(201);
    expect(JSON.parse(final!.body)).toEqual({ bytes: body.length, sha256 });
    expect(received.slice(before)).toHaveLength(1);
    expect(received[before]).toMatchObject({
      method: 'POST',
      url: '/upload/big',
      bytes: body.length,
      sha256,
    });
    expect(received[before]!.headers.expect).toBeUndefined();
    await vi.waitFor(() => expect(accessLogs().length).toBe(logsBefore + 1));
    expect(accessLogs()[logsBefore]).toMatchObject({
      status: 201,
      error_kind: 'none',
      upstream: 'files',
      bytes_in: body.length,
      path: '/upload/big',
    });
  });

  it('answers 413 instead of 100 Continue when the declared body is over the limit, so no body is sent for nothing', async () => {
    const c = await rawClient(port);
    c.socket.write(
      `POST /upload/huge HTTP/1.1\r\nHost: files.example\r\nContent-Length: ${8 * 1024 * 1024}\r\nExpect: 100-continue\r\n\r\n`,
    );
    expect(await c.closed()).toBe(true);
    expect(c.received()).toMatch(/^HTTP\/1\.1 413 /);
    const [res, ...more] = parseResponses(c.received());
    expect(more).toEqual([]);
    expect(res!.headers.connection).toBe('close');
    expect(JSON.parse(res!.body).error.code).toBe('TAPWIRE_PROXY_BODY_TOO_LARGE');
  });

  it('records a request undici cannot send (OPTIONS *) as a 400 bad_request, not an upstream_error', async () => {
    const logsBefore = accessLogs().length;
    const { responses } = await exchange(
      port,
      'OPTIONS * HTTP/1.1\r\nHost: files.example\r\nConnection: close\r\n\r\n',
    );
    expect(responses).toHaveLength(1);
    expect(responses[0]!.status).toBe(400);
    expect(JSON.parse(responses[0]!.body)).toEqual(
      errorBody('TAPWIRE_PROXY_NOT_FORWARDABLE', responses[0]!.headers['x-request-id']!),
    );
    await vi.waitFor(() => expect(accessLogs().length).toBe(logsBefore + 1));
    expect(accessLogs()[logsBefore]).toMatchObject({
      status: 400,
      error_kind: 'bad_request',
      upstream: 'files',
    });
  });

  // Each of these the proxy answers itself, in its error shape, records as a bad request, and
  // never forwards. RFC 9112 §3.2 (Host), §3 (request line), §2.3 (version); RFC 9110 §9.3.6 (CONNECT).
  const refusals: {
    name: string;
    payload: string;
    code: ProxyErrorCode;
    closes: boolean;
    method: string;
  }[] = [
    {
      name: 'two Host headers',
      payload: 'GET /two-hosts HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n',
      code: 'TAPWIRE_PROXY_BAD_HOST',
      closes: true,
      method: 'GET',
    },
    {
      name: 'two Host headers spelled differently',
      payload: 'GET /two-hosts HTTP/1.1\r\nhost: a.example\r\nHOST: a.example\r\n\r\n',
      code: 'TAPWIRE_PROXY_BAD_HOST',
      closes: true,
      method: 'GET',
    },
    {
      name: 'an HTTP/1.1 request without Host',
      payload: 'GET /no-host HTTP/1.1\r\n\r\n',
      code: 'TAPWIRE_PROXY_BAD_HOST',
      closes: true,
      method: 'GET',
    },
    {
      name: 'two spaces after the method',
      payload: 'GET  /spaces HTTP/1.1\r\nHost: a.example\r\n\r\n',
      code: 'TAPWIRE_PROXY_BAD_REQUEST_LINE',
      closes: true,
      method: 'GET',
    },
    {
      name: 'two spaces before the version',
      payload: 'GET /spaces  HTTP/1.1\r\nHost: a.example\r\n\r\n',
      code: 'TAPWIRE_PROXY_BAD_REQUEST_LINE',
      closes: true,
      method: 'GET',
    },
    {
      name: 'an HTTP/0.9 request line',
      payload: 'GET /nine\r\n\r\n',
      code: 'TAPWIRE_PROXY_BAD_REQUEST_LINE',
      closes: true,
      method: 'GET',
    },
    {
      name: 'an HTTP/2.0 request line over HTTP/1',
      payload: 'GET /two HTTP/2.0\r\nHost: a.example\r\n\r\n',
      code: 'TAPWIRE_PROXY_BAD_REQUEST_LINE',
      closes: true,
      method: 'GET',
    },
    {
      name: 'a bad percent-encoding',
      payload: 'GET /a/%zz HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n',
      code: 'TAPWIRE_PROXY_BAD_URL',
      closes: true,
      method: 'GET',
    },
    {
      name: 'an Expect other than 100-continue',
      payload: 'POST /expect HTTP/1.1\r\nHost: a.example\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\nhi',
      code: 'TAPWIRE_PROXY_EXPECTATION_FAILED',
      closes: true,
      method: 'POST',
    },
    {
      name: 'CONNECT',
      payload: 'CONNECT files.example:443 HTTP/1.1\r\nHost: files.example:443\r\n\r\n',
      code: 'TAPWIRE_PROXY_METHOD_NOT_ALLOWED',
      closes: true,
      method: 'OTHER',
    },
  ];
  for (const r of refusals) {
    it(`answers ${r.name} with ${PROXY_ERRORS[r.code].status} ${r.code}, records it and forwards nothing`, async () => {
      const forwarded = received.length;
      const logsBefore = accessLogs().length;
      const { responses, closed } = await exchange(port, r.payload);
      expect(responses).toHaveLength(1);
      const res = responses[0]!;
      expect(res.status).toBe(PROXY_ERRORS[r.code].status);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
      expect(JSON.parse(res.body)).toEqual(errorBody(r.code, res.headers['x-request-id']!));
      if (r.closes) {
        expect(res.headers.connection).toBe('close');
        expect(closed).toBe(true);
      }
      if (r.code === 'TAPWIRE_PROXY_METHOD_NOT_ALLOWED') {
        expect(res.headers.allow).toBe('GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, TRACE');
      }
      expect(received.length).toBe(forwarded);
      await vi.waitFor(() => expect(accessLogs().length).toBe(logsBefore + 1));
      expect(accessLogs()[logsBefore]).toMatchObject({
        status: PROXY_ERRORS[r.code].status,
        error_kind: 'bad_request',
        route: '__invalid__',
        upstream: '',
        method: r.method,
      });
    });
  }

  it('forwards a request line preceded by an empty line, and an absolute-form target (RFC 9112 §2.2, §3.2.2)', async () => {
    const forwarded = received.length;
    const { responses } = await exchange(
      port,
      '\r\nGET /after-empty-line HTTP/1.1\r\nHost: a.example\r\n\r\nGET http://a.example/absolute HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n',
    );
    expect(responses.map((r) => r.status)).toEqual([200, 200]);
    // Both reached the upstream (how an absolute-form target is rewritten is not this test's concern).
    expect(
      received
        .slice(forwarded)
        .map((r) => r.url.endsWith('/after-empty-line') || r.url.endsWith('/absolute')),
    ).toEqual([true, true]);
  });

  it('still forwards a well-formed HTTP/1.0 request without Host', async () => {
    const forwarded = received.length;
    const { responses } = await exchange(port, 'GET /old-client HTTP/1.0\r\n\r\n');
    expect(responses.map((r) => r.status)).toEqual([200]);
    expect(received.slice(forwarded).map((r) => r.url)).toEqual(['/old-client']);
  });

  it('checks the request line of every request on a keep-alive connection, not only the first', async () => {
    const c = await rawClient(port);
    c.socket.write('GET /first HTTP/1.1\r\nHost: a.example\r\n\r\n');
    await c.waitFor((d) => parseResponses(d).length === 1);
    c.socket.write('GET  /second HTTP/1.1\r\nHost: a.example\r\n\r\n');
    expect(await c.closed()).toBe(true);
    const res = parseResponses(c.received());
    expect(res.map((r) => r.status)).toEqual([200, 400]);
    expect(JSON.parse(res[1]!.body).error.code).toBe('TAPWIRE_PROXY_BAD_REQUEST_LINE');
    expect(received.some((r) => r.url === '/second')).toBe(false);
  });

  it('forwards pipelined requests whose request line is split across two reads', async () => {
    const c = await rawClient(port);
    c.socket.setNoDelay(true);
    c.socket.write('GET /pipe-1 HTTP/1.1\r\nHost: a.example\r\n\r\nGET /pipe-2 HT');
    await c.waitFor((d) => parseResponses(d).length === 1);
    c.socket.write('TP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n');
    expect(await c.closed()).toBe(true);
    expect(parseResponses(c.received()).map((r) => [r.status, JSON.parse(r.body).bytes])).toEqual([
      [200, 0],
      [200, 0],
    ]);
    expect(received.filter((r) => r.url.startsWith('/pipe-')).map((r) => r.url)).toEqual([
      '/pipe-1',
      '/pipe-2',
    ]);
  });

  it('checks the next request line after a pipelined request line split across two reads (the check was off for the rest of the connection)', async () => {
    const c = await rawClient(port);
    c.socket.setNoDelay(true);
    c.socket.write('GET /split-1 HTTP/1.1\r\nHost: a.example\r\n\r\nGET /split-2 H');
    await c.waitFor((d) => parseResponses(d).length === 1);
    c.socket.write('TTP/1.1\r\nHost: a.example\r\n\r\n');
    await c.waitFor((d) => parseResponses(d).length === 2);
    c.socket.write('GET  /split-3  HTTP/1.1\r\nHost: a.example\r\n\r\n');
    expect(await c.closed()).toBe(true);
    const res = parseResponses(c.received());
    expect(res.map((r) => r.status)).toEqual([200, 200, 400]);
    expect(JSON.parse(res[2]!.body)).toEqual(
      errorBody('TAPWIRE_PROXY_BAD_REQUEST_LINE', res[2]!.headers['x-request-id']!),
    );
    expect(received.filter((r) => r.url.startsWith('/split-')).map((r) => r.url)).toEqual([
      '/split-1',
      '/split-2',
    ]);
  });

  it('forwards a pipelined request whose second read starts with what looks like a method (GET /GET split after "GET /")', async () => {
    const c = await rawClient(port);
    c.socket.setNoDelay(true);
    c.socket.write('GET /look-1 HTTP/1.1\r\nHost: a.example\r\n\r\nGET /');
    await c.waitFor((d) => parseResponses(d).length === 1);
    c.socket.write('GET HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n');
    expect(await c.closed()).toBe(true);
    expect(parseResponses(c.received()).map((r) => r.status)).toEqual([200, 200]);
    expect(received.filter((r) => r.url === '/look-1' || r.url === '/GET').map((r) => r.url)).toEqual([
      '/look-1',
      '/GET',
    ]);
  });

  it('checks a request line a client sends one byte per write', async () => {
    const c = await rawClient(port);
    c.socket.setNoDelay(true);
    for (const ch of '\r\nGET  /bytewise HTTP/1.1\r\n') {
      c.socket.write(ch);
      await new Promise((r) => setTimeout(r, 2));
    }
    c.socket.write('Host: a.example\r\n\r\n');
    expect(await c.closed()).toBe(true);
    const res = parseResponses(c.received());
    expect(res.map((r) => r.status)).toEqual([400]);
    expect(JSON.parse(res[0]!.body).error.code).toBe('TAPWIRE_PROXY_BAD_REQUEST_LINE');
    expect(received.some((r) => r.url === '/bytewise')).toBe(false);
  });

  it('answers a bad request line that says Expect: 100-continue with the 400 alone, never 100 Continue first', async () => {
    const forwarded = received.length;
    const c = await rawClient(port);
    c.socket.write(
      'POST  /expect-bad-line HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n',
    );
    expect(await c.closed()).toBe(true);
    expect(c.received()).toMatch(/^HTTP\/1\.1 400 /);
    const res = parseResponses(c.received());
    expect(res.map((r) => r.status)).toEqual([400]);
    expect(JSON.parse(res[0]!.body)).toEqual(
      errorBody('TAPWIRE_PROXY_BAD_REQUEST_LINE', res[0]!.headers['x-request-id']!),
    );
    expect(received.length).toBe(forwarded);
  });

  // A refusal written straight to the socket must wait for the answers owed to requests pipelined
  // before it (the 200s were lost: the refusal ended the connection first).
  const pipelinedRefusals: { name: string; refused: string; status: number; code: ProxyErrorCode }[] = [
    {
      name: 'a CONNECT',
      refused: 'CONNECT x.example:443 HTTP/1.1\r\nHost: x.example:443\r\n\r\n',
      status: 405,
      code: 'TAPWIRE_PROXY_METHOD_NOT_ALLOWED',
    },
    {
      name: 'an unparseable header',
      refused: 'GET /x HTTP/1.1\r\nHost: a.example\r\nbad header\r\n\r\n',
      status: 400,
      code: 'TAPWIRE_PROXY_BAD_REQUEST',
    },
  ];
  for (const r of pipelinedRefusals) {
    it(`answers two requests pipelined before ${r.name} in the same write, then refuses it with ${r.status}`, async () => {
      const tag = r.status === 405 ? 'connect' : 'header';
      const { responses, closed } = await exchange(
        port,
        `GET /before-${tag}-1 HTTP/1.1\r\nHost: a.example\r\n\r\nGET /before-${tag}-2 HTTP/1.1\r\nHost: a.example\r\n\r\n${r.refused}`,
      );
      expect(closed).toBe(true);
      expect(responses.map((x) => [x.status, x.headers.connection])).toEqual([
        [200, 'keep-alive'],
        [200, 'keep-alive'],
        [r.status, 'close'],
      ]);
      expect(JSON.parse(responses[2]!.body)).toEqual(
        errorBody(r.code, responses[2]!.headers['x-request-id']!),
      );
      expect(received.filter((x) => x.url.startsWith(`/before-${tag}-`)).map((x) => x.url)).toEqual([
        `/before-${tag}-1`,
        `/before-${tag}-2`,
      ]);
    });
  }

  // After each of these the proxy closes the connection; it must say so, or a keep-alive client
  // sends its next request into a dead socket.
  const closingErrors: { name: string; payload: string; status: number }[] = [
    {
      name: '431 for oversized headers',
      payload: `GET /big-head HTTP/1.1\r\nHost: a.example\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`,
      status: 431,
    },
    {
      name: '400 for an unparseable request',
      payload: 'GET /x HTTP/1.1\r\nHost: a.example\r\nbad header\r\n\r\n',
      status: 400,
    },
    {
      name: '400 for a bad request line',
      payload: 'GET /x  HTTP/1.1\r\nHost: a.example\r\n\r\n',
      status: 400,
    },
    {
      name: '413 for a body over the limit',
      payload: `POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: ${8 * 1024 * 1024}\r\n\r\n`,
      status: 413,
    },
    { name: '408 for a head never finished', payload: 'GET /x HTTP/1.1\r\nHost: a.example\r\n', status: 408 },
  ];
  for (const e of closingErrors) {
    it(`says Connection: close with a ${e.name} on a keep-alive connection, and closes it`, async () => {
      const c = await rawClient(port);
      c.socket.write('GET /before HTTP/1.1\r\nHost: a.example\r\n\r\n');
      await c.waitFor((d) => parseResponses(d).length === 1);
      c.socket.write(e.payload);
      expect(await c.closed()).toBe(true);
      const res = parseResponses(c.received());
      expect(res.map((r) => r.status)).toEqual([200, e.status]);
      expect(res[0]!.headers.connection).toBe('keep-alive');
      expect(res[1]!.headers.connection).toBe('close');
      expect(JSON.parse(res[1]!.body).error.code).toMatch(/^TAPWIRE_PROXY_/);
    });
  }

  it('a keep-alive client’s next request succeeds after a 431 closed its connection', async () => {
    const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    const send = (path: string, headers: Record<string, string> = {}) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest(`${p.url}${path}`, { agent, headers }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
    try {
      expect(await send('/one')).toBe(200);
      expect(await send('/two', { 'x-big': 'a'.repeat(20_000) })).toBe(431);
      expect(await send('/three')).toBe(200);
    } finally {
      agent.destroy();
    }
  });
});

describe('counting and logging what the proxy answers itself', () => {
  it('counts every self-answered response by code on /metrics and logs each cause at most once per interval', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      name: 'test',
      level: 'warn',
      destination: { write: (s: string) => lines.push(JSON.parse(s)) },
    });
    let clockMs = 1_000_000;
    const refused = await freePort();
    const own = await startProxy(
      {
        limits: { maxBodyBytes: 100 },
        upstreams: [
          { name: 'down', url: `http://127.0.0.1:${refused}`, match: { pathPrefix: '/down' } },
          { name: 'ok', url: upstreamUrl, match: { pathPrefix: '/ok' } },
        ],
      },
      { logger, now: () => clockMs },
    );
    const ownPort = Number(new URL(own.url).port);
    try {
      const statuses: number[] = [];
      const send = async (payload: string) => {
        for (const r of (await exchange(ownPort, payload)).responses) statuses.push(r.status);
      };
      const twoHosts = 'GET /ok HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n';
      for (let i = 0; i < 3; i++) await send(twoHosts);
      await send('CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n');
      await send(`GET /ok HTTP/1.1\r\nHost: a\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
      await send('GET /ok/%zz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      await send('GET /nowhere HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      await send('POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n');
      await send('GET /down/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      await send('GET /down/y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      await send('GET /ok/fine HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      // One interval later the same cause is logged again, with what was held back meanwhile.
      clockMs += 10_000;
      await send(twoHosts);
      expect(statuses).toEqual([400, 400, 400, 405, 431, 400, 404, 413, 502, 502, 200, 400]);

      const metrics = await (await fetch(`${own.adminUrl}/metrics`)).text();
      const counted = Object.fromEntries(
        [...metrics.matchAll(/^tapwire_proxy_error_responses_total\{code="(\w+)"\} (\d+)$/gm)].map((m) => [
          m[1],
          Number(m[2]),
        ]),
      );
      expect(counted).toEqual({
        ...Object.fromEntries(Object.keys(PROXY_ERRORS).map((code) => [code, 0])),
        TAPWIRE_PROXY_BAD_HOST: 4,
        TAPWIRE_PROXY_METHOD_NOT_ALLOWED: 1,
        TAPWIRE_PROXY_HEADERS_TOO_LARGE: 1,
        TAPWIRE_PROXY_BAD_URL: 1,
        TAPWIRE_PROXY_NO_ROUTE: 1,
        TAPWIRE_PROXY_BODY_TOO_LARGE: 1,
        TAPWIRE_PROXY_UPSTREAM_REFUSED: 2,
      });

      const logged = lines
        .filter((l) => l.msg === 'proxy answered a request itself')
        .map((l) => [l.code, l.status, l.suppressed]);
      expect(logged).toEqual([
        ['TAPWIRE_PROXY_BAD_HOST', 400, 0],
        ['TAPWIRE_PROXY_METHOD_NOT_ALLOWED', 405, 0],
        ['TAPWIRE_PROXY_HEADERS_TOO_LARGE', 431, 0],
        ['TAPWIRE_PROXY_BAD_URL', 400, 0],
        ['TAPWIRE_PROXY_NO_ROUTE', 404, 0],
        ['TAPWIRE_PROXY_BODY_TOO_LARGE', 413, 0],
        ['TAPWIRE_PROXY_UPSTREAM_REFUSED', 502, 0],
        ['TAPWIRE_PROXY_BAD_HOST', 400, 2],
      ]);
      const refusedLine = lines.find((l) => l.code === 'TAPWIRE_PROXY_UPSTREAM_REFUSED')!;
      expect(refusedLine.cause).toBe(`upstream down: connect ECONNREFUSED 127.0.0.1:${refused}`);
      expect(lines.find((l) => l.code === 'TAPWIRE_PROXY_METHOD_NOT_ALLOWED')!.cause).toBe('CONNECT x:443');
    } finally {
      await own.proxy.close();
    }
  });
});

describe('shutting down with a refused client that never closes', () => {
  it('closes a half-open CONNECT client after its 405, and close() resolves (it never did)', async () => {
    const own = await startProxy({
      upstreams: [{ name: 'files', url: upstreamUrl, match: { pathPrefix: '/' } }],
    });
    // allowHalfOpen: the client reads the proxy's FIN and keeps its own half open, as a tunnel
    // client waiting for a 200 might.
    const socket = connect({ port: Number(new URL(own.url).port), host: '127.0.0.1', allowHalfOpen: true });
    let data = '';
    let ended = false;
    let isClosed = false;
    socket.on('data', (c: Buffer) => {
      data += c.toString('latin1');
    });
    socket.on('end', () => {
      ended = true;
    });
    socket.on('close', () => {
      isClosed = true;
    });
    socket.on('error', () => {});
    await new Promise((r) => socket.once('connect', r));
    socket.write('CONNECT x.example:443 HTTP/1.1\r\nHost: x.example:443\r\n\r\n');
    await vi.waitFor(() => expect(ended).toBe(true), { timeout: 10_000, interval: 20 });
    expect(parseResponses(data).map((r) => r.status)).toEqual([405]);
    const closing = own.proxy.close().then(() => 'closed' as const);
    try {
      // close() resolves only once the listener has no connection left, this one included.
      const outcome = await Promise.race([
        closing,
        new Promise<'still open'>((r) => setTimeout(() => r('still open'), 15_000)),
      ]);
      expect(outcome).toBe('closed');
      // Having read the proxy's FIN the client reads no more: it learns the connection is gone
      // only when a write fails on the reset its previous write drew.
      await vi.waitFor(
        () => {
          if (!isClosed) socket.write('hello?');
          expect(isClosed).toBe(true);
        },
        { timeout: 10_000, interval: 50 },
      );
    } finally {
      socket.destroy();
      await closing;
    }
  }, 40_000);
});
