import { Pool } from 'undici';

/** LoadRequest is one request the steady load sends. */
export interface LoadRequest {
  path: string;
  headers?: Record<string, string>;
}

/** SteadyLoad is a client sending requests at a fixed rate, counting what was answered. */
export interface SteadyLoad {
  /** Requests answered with the expected status, body read to the end. */
  answered(): number;
  /** Requests that failed: an error, or another status. */
  failed(): number;
  /** The first failures' reasons (at most 20). */
  failures(): string[];
  /** stop sends no more requests and resolves once every request sent has settled. */
  stop(): Promise<{ answered: number; failed: number }>;
}

/**
 * steadyLoad sends `ratePerS` requests a second to `origin` (open loop: a request is sent when its
 * time comes, whether or not earlier ones were answered), over at most `connections` keep-alive
 * connections. A request counts as answered once its whole body arrived with `expectStatus`.
 */
export function steadyLoad(
  origin: string,
  options: {
    ratePerS: number;
    connections: number;
    request: (n: number) => LoadRequest;
    expectStatus?: number;
  },
): SteadyLoad {
  const pool = new Pool(origin, { connections: options.connections, pipelining: 1 });
  const expectStatus = options.expectStatus ?? 200;
  const started = performance.now();
  const inFlight = new Set<Promise<void>>();
  const reasons: string[] = [];
  let sent = 0;
  let answered = 0;
  let failed = 0;
  let stopped: Promise<{ answered: number; failed: number }> | undefined;

  const fail = (reason: string) => {
    failed++;
    if (reasons.length < 20) reasons.push(reason);
  };

  function send(): void {
    const { path, headers } = options.request(sent++);
    const p = (async () => {
      try {
        const res = await pool.request({ path, method: 'GET', ...(headers ? { headers } : {}) });
        await res.body.dump({ limit: Number.POSITIVE_INFINITY });
        if (res.statusCode === expectStatus) answered++;
        else fail(`${path}: status ${res.statusCode}`);
      } catch (err) {
        fail(`${path}: ${(err as Error).message}`);
      }
    })();
    inFlight.add(p);
    void p.then(() => inFlight.delete(p));
  }

  // Catch up on what the rate asks for since the start: timers late on a busy machine do not lower it.
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * options.ratePerS);
    while (sent < due) send();
  }, 10);

  return {
    answered: () => answered,
    failed: () => failed,
    failures: () => [...reasons],
    stop() {
      stopped ??= (async () => {
        clearInterval(timer);
        while (inFlight.size > 0) await Promise.all(inFlight);
        await pool.close();
        return { answered, failed };
      })();
      return stopped;
    },
  };
}
