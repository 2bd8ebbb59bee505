import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** SeenRequest is what the test upstream received. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  bodyBytes: number;
}

/** TestUpstream is a real HTTP server on loopback with behaviours chosen by path. */
export interface TestUpstream {
  readonly url: string;
  readonly port: number;
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

/**
 * startUpstream serves (after any prefix): /status/<code>[?bytes=N] answers that status with N bytes;
 * /slow/<ms> answers after a delay; /garbage writes a non-HTTP reply; /reset destroys the socket;
 * /stream/<chunks> sends chunks 10 ms apart; anything else answers 200 with a small JSON body.
 */
export async function startUpstream(): Promise<TestUpstream> {
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    let bodyBytes = 0;
    req.on('data', (c: Buffer) => {
      bodyBytes += c.length;
    });
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes });
      // The behaviour keyword may follow any prefix: /users/status/404 behaves like /status/404.
      const all = url.pathname.split('/').filter(Boolean);
      const at = all.findIndex((s) => ['status', 'slow', 'garbage', 'reset', 'stream'].includes(s));
      const parts = at === -1 ? all : all.slice(at);
      if (parts[0] === 'status') {
        const bytes = Number(url.searchParams.get('bytes') ?? 0);
        res.writeHead(Number(parts[1]), {
          'content-type': 'text/plain',
          'set-cookie': 'upstream_sid=CANARY_SETCOOKIE',
        });
        res.end('x'.repeat(bytes));
      } else if (parts[0] === 'slow') {
        const t = setTimeout(() => res.end('late'), Number(parts[1]));
        res.on('close', () => clearTimeout(t));
      } else if (parts[0] === 'garbage') {
        req.socket.end('THIS IS NOT HTTP\r\n\r\n');
      } else if (parts[0] === 'reset') {
        req.socket.destroy();
      } else if (parts[0] === 'stream') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        let n = Number(parts[1]);
        const tick = setInterval(() => {
          if (res.destroyed) return clearInterval(tick);
          res.write('chunk-');
          if (--n === 0) {
            clearInterval(tick);
            res.end();
          }
        }, 10);
      } else {
        const body = JSON.stringify({ ok: true, path: url.pathname, bodyBytes });
        res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
        res.end(body);
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** freePort returns a loopback port nothing listens on (bound then released). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
