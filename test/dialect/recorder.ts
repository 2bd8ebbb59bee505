import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';

/**
 * A recording HTTP proxy in front of a ClickHouse server. Every Tapwire component reaches
 * ClickHouse over HTTP through @clickhouse/client, including the clients that `migrate` and the
 * services create for themselves from a ClickHouseConfig; pointing a config's url here captures
 * every statement a code path sends, in order, with the server's answer, without a hand-kept list.
 */

/** Exchange is one HTTP request to ClickHouse and its answer, as sent and received. */
export interface Exchange {
  /** seq orders exchanges by arrival. */
  readonly seq: number;
  readonly method: string;
  /** path is '/' for statements, '/ping' for pings. */
  readonly path: string;
  /** params are the URL parameters in order: query, database, query_id, settings, param_*. */
  readonly params: readonly (readonly [string, string])[];
  /** body is the request body (the statement, or an INSERT's rows), decompressed and decoded as UTF-8. */
  readonly body: string;
  /** contentType of the request, kept for multipart bodies. */
  readonly contentType: string;
  readonly status: number;
  /** response is the answer's body, decompressed and decoded as UTF-8. */
  readonly response: string;
}

/** Recorder is a running recording proxy. */
export interface Recorder {
  readonly url: string;
  /** take returns the exchanges recorded since the last take, in arrival order, and forgets them. */
  take(): Exchange[];
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'host']);

async function readAll(stream: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** decoded undoes a Content-Encoding, so the log holds text and a replay can send it plain. */
function decoded(body: Buffer, encoding: string | string[] | undefined): string {
  const e = String(encoding ?? '').toLowerCase();
  const plain =
    e === 'gzip'
      ? gunzipSync(body)
      : e === 'deflate'
        ? inflateSync(body)
        : e === 'br'
          ? brotliDecompressSync(body)
          : body;
  return plain.toString('utf8');
}

/** forward sends one request to `upstream` and resolves its status, headers and whole body. */
function forward(
  upstream: URL,
  req: IncomingMessage,
  body: Buffer,
): Promise<{ status: number; headers: Record<string, string | string[]>; body: Buffer }> {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
  headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const out = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
      (res) => {
        readAll(res).then(
          (b) =>
            resolve({
              status: res.statusCode ?? 502,
              headers: res.headers as Record<string, string | string[]>,
              body: b,
            }),
          reject,
        );
      },
    );
    out.once('error', reject);
    out.end(body);
  });
}

/** startRecorder listens on a free local port and forwards everything to `upstreamUrl`, recording it. */
export async function startRecorder(upstreamUrl: string): Promise<Recorder> {
  const upstream = new URL(upstreamUrl);
  let log: Exchange[] = [];
  let seq = 0;
  const server: Server = createServer((req, res) => {
    const n = seq++;
    readAll(req)
      .then(async (body) => {
        const url = new URL(req.url ?? '/', 'http://recorder');
        const answer = await forward(upstream, req, body);
        log.push({
          seq: n,
          method: req.method ?? 'GET',
          path: url.pathname,
          params: [...url.searchParams.entries()],
          body: decoded(body, req.headers['content-encoding']),
          contentType: String(req.headers['content-type'] ?? ''),
          status: answer.status,
          response: decoded(answer.body, answer.headers['content-encoding']),
        });
        const headers: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(answer.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
        headers['content-length'] = String(answer.body.length);
        res.writeHead(answer.status, headers);
        res.end(answer.body);
      })
      .catch((err: Error) => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`recorder: ${err.message}`);
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    take() {
      const out = log.sort((a, b) => a.seq - b.seq);
      log = [];
      return out;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
