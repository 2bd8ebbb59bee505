// latency-client is a load client run in its own process: it sends `count` GET requests, cycling
// through the given URLs of one origin, over `concurrency` keep-alive connections, each in its own
// trace (traceparent with trace id <n> in 32 hex digits, plus 1), and prints one JSON object mapping
// each trace id to the latency it measured (ms, from just before sending to the last body byte).
// A separate process competes for the CPU like a real client on the same host.
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

const [countArg, concurrencyArg, ...urls] = process.argv.slice(2);
if (!countArg || !concurrencyArg || urls.length === 0) {
  process.stderr.write('usage: latency-client <count> <concurrency> <url>...\n');
  process.exit(2);
}
const count = Number(countArg);
const concurrency = Number(concurrencyArg);
const targets = urls.map((u) => new URL(u));
const pool = new Pool(targets[0]!.origin, { connections: concurrency, pipelining: 1 });
const latencies: Record<string, number> = {};
let next = 0;
let failed = 0;

async function worker(): Promise<void> {
  while (next < count) {
    const n = next++;
    const id = (n + 1).toString(16).padStart(32, '0');
    const target = targets[n % targets.length]!;
    const t0 = performance.now();
    try {
      const res = await pool.request({
        path: `${target.pathname}${target.search}`,
        method: 'GET',
        headers: { traceparent: `00-${id}-${'1'.padStart(16, '0')}-01` },
      });
      for await (const _ of res.body) {
        // Drain to the last byte.
      }
      latencies[id] = performance.now() - t0;
    } catch {
      failed++;
    }
  }
}

await Promise.all(Array.from({ length: concurrency }, worker));
await pool.close();
process.stdout.write(JSON.stringify({ latencies, failed }));
