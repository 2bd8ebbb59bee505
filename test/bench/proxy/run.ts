/**
 * Proxy benchmark: the same upstream and load against (a) the upstream directly, (b) a bare
 * @fastify/http-proxy, (c) nginx as a reverse proxy, (d) Tapwire's proxy emitting to the real Kafka,
 * all in one run; prints one JSON report with the ratios and whether each target is met. A fifth,
 * (e) Tapwire's proxy with a sink that only counts events, shows what the request path costs
 * without the Kafka side, so the report separates the proxy's cost from the telemetry's.
 *
 * All five run side by side. Each is first warmed up until its throughput is steady (JIT,
 * keep-alive pools, and for (d) the Kafka producer and the broker's own JIT, which after a broker
 * restart takes 15–20 s of traffic): windows of BENCH_WARMUP_S, at least BENCH_WARMUP_MIN_S, then
 * until the last two agree within 5%, at most BENCH_WARMUP_MAX_S. Then each is
 * measured in ROUNDS rounds, the order rotating each round so that a noisy moment on the shared
 * machine does not land on one contender only. The report gives every warm-up window, every round
 * and, for the ratios and targets, each contender's median.
 *
 *   npm run bench:proxy            (needs `tapwire infra up` and Debian's nginx)
 *   BENCH_DURATION_S (10) per measurement, BENCH_ROUNDS (3), BENCH_WARMUP_S (5),
 *   BENCH_WARMUP_MIN_S (20), BENCH_WARMUP_MAX_S (40), BENCH_CONNECTIONS (50)
 */
import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const ROOT = here('../../..');
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 5);
const WARMUP_MIN_S = Number(process.env.BENCH_WARMUP_MIN_S ?? 20);
const WARMUP_MAX_S = Number(process.env.BENCH_WARMUP_MAX_S ?? 40);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const PORTS = {
  upstream: 18_901,
  bare: 18_902,
  nginx: 18_903,
  tapwire: 18_904,
  tapwireAdmin: 18_905,
  noEmission: 18_906,
  noEmissionAdmin: 18_907,
};

interface Round {
  requestsPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  errors: number;
  non2xx: number;
}

/** Result is one contender's medians over the rounds (errors summed), with every round kept. */
interface Result extends Round {
  name: string;
  peakRssMb: number | null;
  /** Throughput of each warm-up window. */
  warmupRequestsPerSecond: number[];
  rounds: Round[];
}

interface Contender {
  name: string;
  url: string;
  pid: number | undefined;
  warmup: number[];
  rounds: Round[];
}

const contender = (name: string, base: string, pid: number | undefined): Contender => ({
  name,
  url: `${base}/users/42`,
  pid,
  warmup: [],
  rounds: [],
});

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

function peakRssMb(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : null;
  } catch {
    return null;
  }
}

async function waitHttp(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      if (r.status < 500) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer`);
}

async function measure(url: string, durationS: number): Promise<Round> {
  const r = await autocannon({ url, connections: CONNECTIONS, duration: durationS });
  return {
    requestsPerSecond: Math.round(r.requests.average),
    latencyP50Ms: r.latency.p50,
    latencyP99Ms: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}

function summarize(c: Contender): Result {
  return {
    name: c.name,
    requestsPerSecond: Math.round(median(c.rounds.map((r) => r.requestsPerSecond))),
    latencyP50Ms: median(c.rounds.map((r) => r.latencyP50Ms)),
    latencyP99Ms: median(c.rounds.map((r) => r.latencyP99Ms)),
    errors: c.rounds.reduce((n, r) => n + r.errors, 0),
    non2xx: c.rounds.reduce((n, r) => n + r.non2xx, 0),
    peakRssMb: peakRssMb(c.pid),
    warmupRequestsPerSecond: c.warmup,
    rounds: c.rounds,
  };
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 20_000).unref();
  });
}

function forkReady(script: string, env: Record<string, string>): Promise<ChildProcess> {
  const child = fork(script, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'tapwire-bench-proxy-'));
  const children: ChildProcess[] = [];
  const upstream = await forkReady(here('./upstream.mjs'), { PORT: String(PORTS.upstream) });
  children.push(upstream);
  const upstreamUrl = `http://127.0.0.1:${PORTS.upstream}`;
  try {
    const bare = await forkReady(here('./bare-fastify-proxy.mjs'), {
      PORT: String(PORTS.bare),
      UPSTREAM: upstreamUrl,
    });
    children.push(bare);
    const noEmission = await forkReady(here('./tapwire-no-emission.mjs'), {
      PORT: String(PORTS.noEmission),
      ADMIN_PORT: String(PORTS.noEmissionAdmin),
      UPSTREAM: upstreamUrl,
    });
    children.push(noEmission);

    const nginxConf = join(work, 'nginx.conf');
    writeFileSync(
      nginxConf,
      `worker_processes 1;
daemon off;
pid ${join(work, 'nginx.pid')};
error_log ${join(work, 'nginx-error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${work}/body; proxy_temp_path ${work}/proxy; fastcgi_temp_path ${work}/fcgi;
  uwsgi_temp_path ${work}/uwsgi; scgi_temp_path ${work}/scgi;
  upstream api { server 127.0.0.1:${PORTS.upstream}; keepalive 128; }
  server {
    listen 127.0.0.1:${PORTS.nginx};
    location / { proxy_pass http://api; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`,
    );
    const nginxBin = spawnSync('which', ['nginx'], { encoding: 'utf8' }).stdout.trim() || '/usr/sbin/nginx';
    const nginx = spawn(nginxBin, ['-c', nginxConf], { stdio: 'inherit' });
    children.push(nginx);
    await waitHttp(`http://127.0.0.1:${PORTS.nginx}/users/42`);
    const nginxWorker = Number(
      spawnSync('pgrep', ['-P', String(nginx.pid)], { encoding: 'utf8' })
        .stdout.trim()
        .split('\n')[0],
    );

    const config = join(work, 'tapwire.yaml');
    writeFileSync(
      config,
      `telemetry: { logLevel: warn }
proxy:
  listen: { host: 127.0.0.1, port: ${PORTS.tapwire} }
  admin: { host: 127.0.0.1, port: ${PORTS.tapwireAdmin} }
  emit: { logDir: ${join(work, 'proxy-log')} }
  upstreams:
    - name: users
      url: ${upstreamUrl}
      routes: [/users/:id]
`,
    );
    const tapwire = spawn(
      process.execPath,
      [join(ROOT, 'services/cli/dist/main.js'), '-c', config, 'proxy'],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    children.push(tapwire);
    await waitHttp(`http://127.0.0.1:${PORTS.tapwireAdmin}/readyz`);

    const contenders = [
      contender('a_upstream_direct', upstreamUrl, upstream.pid),
      contender('b_bare_fastify_http_proxy', `http://127.0.0.1:${PORTS.bare}`, bare.pid),
      contender('c_nginx', `http://127.0.0.1:${PORTS.nginx}`, nginxWorker || nginx.pid),
      contender('d_tapwire_proxy_kafka', `http://127.0.0.1:${PORTS.tapwire}`, tapwire.pid),
      contender('e_tapwire_proxy_no_emission', `http://127.0.0.1:${PORTS.noEmission}`, noEmission.pid),
    ];
    for (const c of contenders) {
      for (let spent = 0; spent < WARMUP_MAX_S; spent += WARMUP_S) {
        c.warmup.push((await measure(c.url, WARMUP_S)).requestsPerSecond);
        const [prev, last] = c.warmup.slice(-2) as [number, number];
        if (spent + WARMUP_S >= WARMUP_MIN_S && Math.abs(last - prev) <= 0.05 * prev) break;
      }
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < contenders.length; i++) {
        const c = contenders[(i + round) % contenders.length] as Contender;
        c.rounds.push(await measure(c.url, DURATION_S));
      }
    }
    const results = contenders.map(summarize);
    const metrics = await (await fetch(`http://127.0.0.1:${PORTS.tapwireAdmin}/metrics`)).text();

    const [a, b, c, d, e] = results as [Result, Result, Result, Result, Result];
    const metric = (name: string) =>
      Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN);
    const report = {
      benchmark: 'proxy',
      durationS: DURATION_S,
      rounds: ROUNDS,
      warmupWindowS: WARMUP_S,
      connections: CONNECTIONS,
      results,
      ratios: {
        d_over_b_throughput: +(d.requestsPerSecond / b.requestsPerSecond).toFixed(3),
        d_over_c_throughput: +(d.requestsPerSecond / c.requestsPerSecond).toFixed(3),
        b_over_c_throughput: +(b.requestsPerSecond / c.requestsPerSecond).toFixed(3),
        d_p99_minus_b_p99_ms: +(d.latencyP99Ms - b.latencyP99Ms).toFixed(3),
        d_over_a_throughput: +(d.requestsPerSecond / a.requestsPerSecond).toFixed(3),
        d_over_e_throughput: +(d.requestsPerSecond / e.requestsPerSecond).toFixed(3),
        e_over_c_throughput: +(e.requestsPerSecond / c.requestsPerSecond).toFixed(3),
      },
      tapwireEvents: {
        emitted: metric('tapwire_proxy_events_emitted_total'),
        delivered: metric('tapwire_proxy_events_delivered_total'),
        unshipped: metric('tapwire_proxy_unshipped_events'),
        shippedBatches: metric('tapwire_proxy_shipped_batches_total'),
      },
      targets: {
        d_over_b_throughput_ge_1: d.requestsPerSecond >= b.requestsPerSecond,
        d_p99_le_b_p99_plus_1ms: d.latencyP99Ms <= b.latencyP99Ms + 1,
        d_over_c_throughput_ge_0_5: d.requestsPerSecond >= 0.5 * c.requestsPerSecond,
        d_peak_rss_le_200mb: (d.peakRssMb ?? Number.POSITIVE_INFINITY) <= 200,
      },
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    for (const child of children.reverse()) await stop(child);
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
