import { Pool } from 'undici';

/** CountingLoad is load running against one origin, counting the requests that got their whole answer. */
export interface CountingLoad {
  /** answeredCount is how many requests got a complete answer so far. */
  answeredCount(): number;
  /**
   * stop sends no new request, waits for those in flight to end (answered or failed) and returns
   * the numbers of the answered requests and of the failed ones.
   */
  stop(): Promise<{ answered: Set<number>; failed: Set<number> }>;
}

/**
 * startCountingLoad sends GET requests as fast as `connections` keep-alive connections allow,
 * request n to `path(n)` (n = 0, 1, …). A request counts as answered only when its status was 200
 * and its whole body arrived and is what the test upstream answers for that path (its JSON names
 * the path), so a response cut short by a killed server never counts. Failures are counted and
 * the load goes on.
 */
export function startCountingLoad(
  origin: string,
  options: { connections: number; path: (n: number) => string },
): CountingLoad {
  const pool = new Pool(origin, { connections: options.connections, pipelining: 1 });
  const answered = new Set<number>();
  const failed = new Set<number>();
  let next = 0;
  let stopping = false;

  async function worker(): Promise<void> {
    while (!stopping) {
      const n = next++;
      const path = options.path(n);
      try {
        const res = await pool.request({ path, method: 'GET' });
        const body = await res.body.text();
        if (res.statusCode === 200 && (JSON.parse(body) as { path?: string }).path === path) answered.add(n);
        else failed.add(n);
      } catch {
        failed.add(n);
        // A refused connection fails at once: do not spin while the server is gone.
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }

  const workers = Promise.all(Array.from({ length: options.connections }, worker));
  return {
    answeredCount: () => answered.size,
    async stop() {
      stopping = true;
      await workers;
      await pool.destroy();
      return { answered, failed };
    },
  };
}
