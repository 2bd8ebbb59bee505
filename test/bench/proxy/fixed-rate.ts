/**
 * A constant-rate HTTP/1.1 load generator for the proxy benchmark's fixed-rate rounds.
 *
 * autocannon's `overallRate` does not pace requests: each connection sends its whole quota for the
 * second back to back and then waits for the next second, so half the capacity is delivered as
 * saturated bursts and the latencies are those of a saturated server. Here requests are released
 * evenly (every millisecond, the ones due by then) over a fixed pool of keep-alive connections; a
 * request that finds every connection busy waits for one, and its latency counts from when it was
 * released, so a slow server cannot hide its queue (no coordinated omission).
 */
import { connect, type Socket } from 'node:net';

/** FixedRateResult is one fixed-rate window against one URL. */
export interface FixedRateResult {
  /** Responses received in the window. */
  requests: number;
  /** Responses per second actually achieved. */
  achievedRequestsPerSecond: number;
  latencyP50Ms: number;
  latencyP90Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
  /** Requests that had to wait for a free connection (the server fell behind the rate). */
  queued: number;
  /** Connection errors and requests never answered. */
  errors: number;
  non2xx: number;
}

const CRLF2 = Buffer.from('\r\n\r\n');

interface Conn {
  socket: Socket;
  pending: Buffer;
  /** Release time of the request in flight on this connection (performance.now ms). */
  due: number;
  busy: boolean;
}

/** Bytes a complete response takes at the head of `buf`, its status, or undefined when incomplete. */
function responseLength(buf: Buffer): { length: number; status: number } | undefined {
  const headEnd = buf.indexOf(CRLF2);
  if (headEnd < 0) return undefined;
  const head = buf.toString('latin1', 0, headEnd);
  const status = Number(head.slice(9, 12));
  const bodyStart = headEnd + 4;
  const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (cl) {
    const length = bodyStart + Number(cl[1]);
    return buf.length >= length ? { length, status } : undefined;
  }
  if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) {
    let at = bodyStart;
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', at, 'latin1');
      if (lineEnd < 0) return undefined;
      const size = Number.parseInt(buf.toString('latin1', at, lineEnd), 16);
      if (size === 0) {
        // No trailers are sent by any contender: the last chunk is followed by one empty line.
        const end = lineEnd + 4;
        return buf.length >= end ? { length: end, status } : undefined;
      }
      at = lineEnd + 2 + size + 2;
      if (buf.length < at) return undefined;
    }
  }
  if (status === 204 || status === 304) return { length: bodyStart, status };
  throw new Error(`response without content-length or chunked framing: ${head.split('\r\n')[0]}`);
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1);
  return Math.round((sorted[Math.max(0, i)] as number) * 1000) / 1000;
}

/**
 * runAtRate sends GET `url` at `ratePerSecond` for `durationS` over `connections` keep-alive
 * connections (opened, and each used once, before the clock starts) and reports the latencies. A
 * connection the server closes (nginx does after 1000 requests) is replaced. With `paths`, the
 * requests go to each path of the list in turn (over all connections) instead of url's path;
 * `headers` are sent with every request.
 */
export async function runAtRate(
  url: string,
  ratePerSecond: number,
  durationS: number,
  connections: number,
  mix: { paths?: readonly string[]; headers?: Readonly<Record<string, string>> } = {},
): Promise<FixedRateResult> {
  const u = new URL(url);
  const extra = Object.entries(mix.headers ?? {})
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const requests = (mix.paths ?? [`${u.pathname}${u.search}`]).map((p) =>
    Buffer.from(`GET ${p} HTTP/1.1\r\nHost: ${u.host}\r\n${extra}\r\n`, 'latin1'),
  );
  let nextRequest = 0;
  const latencies = new Float64Array(Math.ceil(ratePerSecond * durationS * 1.1) + connections + 16);
  let ok = 0;
  let answered = 0;
  let lastAnswerAt = 0;
  let connectFailures = 0;
  let lostInFlight = 0;
  let protocolErrors = 0;
  let non2xx = 0;
  let queued = 0;
  let measuring = false;
  let stopped = false;
  const live = new Set<Conn>();
  const idle: Conn[] = [];
  // Release times of requests waiting for a free connection, oldest first.
  const waiting: number[] = [];
  let waitingHead = 0;

  const send = (c: Conn, due: number) => {
    c.due = due;
    c.busy = true;
    c.socket.write(requests[nextRequest++ % requests.length] as Buffer);
  };
  const release = (c: Conn) => {
    c.busy = false;
    if (waitingHead < waiting.length) {
      send(c, waiting[waitingHead++] as number);
      if (waitingHead === waiting.length) {
        waiting.length = 0;
        waitingHead = 0;
      }
    } else idle.push(c);
  };
  const open = (): Promise<Conn> =>
    new Promise((resolve, reject) => {
      const socket = connect(Number(u.port), u.hostname);
      socket.setNoDelay(true);
      const c: Conn = { socket, pending: Buffer.alloc(0), due: 0, busy: false };
      live.add(c);
      socket.once('connect', () => resolve(c));
      socket.on('error', (err) => reject(err));
      socket.on('data', (chunk: Buffer) => {
        c.pending = c.pending.length === 0 ? chunk : Buffer.concat([c.pending, chunk]);
        for (;;) {
          let r: ReturnType<typeof responseLength>;
          try {
            r = responseLength(c.pending);
          } catch {
            protocolErrors++;
            socket.destroy();
            return;
          }
          if (!r) break;
          c.pending = c.pending.subarray(r.length);
          if (measuring) {
            answered++;
            lastAnswerAt = performance.now();
            if (r.status < 200 || r.status > 299) non2xx++;
            else if (ok < latencies.length) latencies[ok++] = lastAnswerAt - c.due;
          }
          release(c);
        }
      });
      socket.on('close', () => {
        live.delete(c);
        const i = idle.indexOf(c);
        if (i >= 0) idle.splice(i, 1);
        // A request in flight on a closed connection is lost (counted); the connection is replaced.
        if (c.busy && measuring) lostInFlight++;
        if (!stopped) open().then(release, () => connectFailures++);
      });
    });

  const conns = await Promise.all(Array.from({ length: connections }, open));
  // Prime every connection (and the proxy's upstream pool behind it) outside the measurement.
  for (const c of conns) send(c, performance.now());
  while (idle.length < connections) await new Promise((r) => setTimeout(r, 5));

  measuring = true;
  const started = performance.now();
  const endsAt = started + durationS * 1000;
  let released = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      const due = Math.floor((Math.min(now, endsAt) - started) * (ratePerSecond / 1000));
      for (; released < due; released++) {
        const c = idle.shift();
        if (c) send(c, now);
        else {
          queued++;
          waiting.push(now);
        }
      }
      if (now >= endsAt) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  // Wait for what is still in flight (at most 10 s); anything unanswered then is an error.
  const answeredBy = performance.now() + 10_000;
  while (answered + lostInFlight < released && performance.now() < answeredBy)
    await new Promise((r) => setTimeout(r, 5));
  stopped = true;
  measuring = false;
  for (const c of live) c.socket.destroy();

  const sorted = latencies.subarray(0, ok).sort();
  return {
    requests: answered,
    achievedRequestsPerSecond: Math.round(
      answered / (Math.max(lastAnswerAt - started, durationS * 1000) / 1000),
    ),
    latencyP50Ms: percentile(sorted, 0.5),
    latencyP90Ms: percentile(sorted, 0.9),
    latencyP99Ms: percentile(sorted, 0.99),
    latencyMaxMs: percentile(sorted, 1),
    queued,
    errors: released - answered + connectFailures + protocolErrors,
    non2xx,
  };
}
