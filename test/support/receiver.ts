import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';

/** ReceivedRequest is one request a test receiver got. */
export interface ReceivedRequest {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly at: number;
}

/** ScriptedAnswer is what a test receiver replies to one request. */
export interface ScriptedAnswer {
  readonly status: number;
  readonly body?: string;
  readonly headers?: Record<string, string>;
}

/** TestReceiver is a real local HTTP endpoint that records requests and answers from a script. */
export interface TestReceiver {
  readonly url: string;
  readonly requests: ReceivedRequest[];
  /** answers are used in order; after the last one, `fallback` answers. */
  script(answers: ScriptedAnswer[], fallback?: ScriptedAnswer): void;
  close(): Promise<void>;
}

/** startReceiver listens on a free local port. */
export async function startReceiver(
  fallback: ScriptedAnswer = { status: 200, body: 'ok' },
): Promise<TestReceiver> {
  let queue: ScriptedAnswer[] = [];
  let otherwise = fallback;
  const requests: ReceivedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({
        path: req.url ?? '/',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      });
      const answer = queue.shift() ?? otherwise;
      res.writeHead(answer.status, answer.headers ?? {});
      res.end(answer.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    script(answers, fb) {
      queue = [...answers];
      if (fb) otherwise = fb;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
