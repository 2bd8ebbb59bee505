/**
 * Proxy benchmark: the same upstream and load against (a) the upstream directly, (b) a bare
 * @fastify/http-proxy, (c) nginx as a reverse proxy, (d) Tapwire's proxy writing its events to a
 * local log and shipping them to the real Kafka, all in one run; prints one JSON report with the
 * ratios and whether each target is met (issue #18). A fifth, (e) Tapwire's proxy with a sink that
 * only counts events, shows what the request path costs without the telemetry, so the report
 * separates the proxy's cost from the telemetry's. A sixth, (f) Tapwire's proxy as (d) with the
 * policies of issue #23 on: an enforced API key, a rate limit (high enough that nothing is
 * refused: the limiter's work, not its refusals), and the response cache, with a request mix of
 * which half hits the cache (/users/7 carries max-age, /users/42 no freshness and is a miss) —
 * compared with (d) on the same mix.
 *
 * 1. Saturated. All five run side by side. Each is first warmed up until its throughput is
 *    steady (JIT, keep-alive pools, and for (d) the Kafka producer and the broker's own JIT,
 *    which after a broker restart takes 15–20 s of traffic): windows of BENCH_WARMUP_S, at least
 *    BENCH_WARMUP_MIN_S, then until the last two agree within 5%, at most BENCH_WARMUP_MAX_S.
 *    Then each is measured by autocannon in ROUNDS rounds, the order rotating each round so that
 *    a noisy moment on the shared machine does not land on one contender only.
 * 2. Fixed rate. Every contender gets the same constant rate, BENCH_FIXED_FRACTION (0.5) of (b)'s
 *    median saturated throughput, over the same number of connections (fixed-rate.ts: requests
 *    paced evenly, latency counted from release, so no coordinated omission), in
 *    BENCH_FIXED_ROUNDS rotating rounds of BENCH_FIXED_DURATION_S. The report gives each one's
 *    p50/p99 and what it adds over (a).
 * 3. Telemetry CPU per request, from the fixed-rate windows: utime+stime of all of a process's
 *    threads (/proc/<pid>/stat) over each window, divided by the requests answered in it. The
 *    telemetry's cost is (d) minus (e); the Kafka broker's CPU during (d)'s windows, net of its
 *    rate during the other contenders' windows (its idle work and other users of the shared
 *    broker), is reported separately and added. The kernel's page-cache writeback of the local
 *    log runs in kernel threads and is not counted.
 * 4. At the end the proxy's event counters, after waiting up to BENCH_DRAIN_S for the shipper to
 *    catch up: every event written must have been delivered to Kafka.
 *
 * The report gives every warm-up window and every round and, for the ratios and targets, each
 * contender's median. With the defaults a run takes 7–9 minutes (warm-up 100–200 s, 150 s
 * saturated, 150 s at the fixed rate); CI runs it with BENCH_DURATION_S=5 (4.5–6 minutes).
 * (d) ships to topics of its own (prefix bench_proxy_<time>.), created first and deleted at the end.
 *
 *   npm run bench:proxy            (needs `tapwire infra up` and Debian's nginx)
 *   BENCH_DURATION_S (10) per saturated round, BENCH_ROUNDS (3), BENCH_WARMUP_S (5),
 *   BENCH_WARMUP_MIN_S (20), BENCH_WARMUP_MAX_S (40), BENCH_CONNECTIONS (50),
 *   BENCH_FIXED_FRACTION (0.5), BENCH_FIXED_RATE (requests/s; overrides the fraction),
 *   BENCH_FIXED_DURATION_S (BENCH_DURATION_S), BENCH_FIXED_ROUNDS (BENCH_ROUNDS), BENCH_DRAIN_S (30)
 */
import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { infraConfigSchema, kafkaConfigSchema, loadConfig } from '@tapwire/config';
import { kafkaBrokers } from '@tapwire/infra';
import { createKafkaClient, ensureTopics, topicSpecs } from '@tapwire/kafka';
import autocannon from 'autocannon';
import { z } from 'zod';
import { type FixedRateResult, runAtRate } from './fixed-rate.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const ROOT = here('../../..');
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 5);
const WARMUP_MIN_S = Number(process.env.BENCH_WARMUP_MIN_S ?? 20);
const WARMUP_MAX_S = Number(process.env.BENCH_WARMUP_MAX_S ?? 40);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const FIXED_FRACTION = Number(process.env.BENCH_FIXED_FRACTION ?? 0.5);
const FIXED_RATE = process.env.BENCH_FIXED_RATE ? Number(process.env.BENCH_FIXED_RATE) : undefined;
const FIXED_DURATION_S = Number(process.env.BENCH_FIXED_DURATION_S ?? DURATION_S);
const FIXED_ROUNDS = Number(process.env.BENCH_FIXED_ROUNDS ?? ROUNDS);
const DRAIN_S = Number(process.env.BENCH_DRAIN_S ?? 30);
const infra = loadConfig(z.object({ infra: infraConfigSchema }), {}).infra;
// (d) ships to topics of its own, created here and deleted at the end: the shared broker's
// default topics may not exist, and other runs read them.
const TOPIC_PREFIX = `bench_proxy_${Date.now().toString(36)}.`;
const quiet = { error() {}, warn() {}, info() {}, debug() {} };
const PORTS = {
  upstream: 18_901,
  bare: 18_902,
  nginx: 18_903,
  tapwire: 18_904,
  tapwireAdmin: 18_905,
  noEmission: 18_906,
  noEmissionAdmin: 18_907,
  policies: 18_908,
  policiesAdmin: 18_909,
};
// (d) and (f) get the same mix: every other request to a path the upstream marks cacheable.
const POLICY_MIX = ['/users/42', '/users/7'];
const BENCH_API_KEY = 'bench-key-0123456789';

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

/** FixedRound is one fixed-rate window, with the CPU its process used in it. */
interface FixedRound extends FixedRateResult {
  /** CPU time of the contender's process (all threads) over the window, in ms. */
  cpuMs: number | null;
  /** CPU time of the Kafka broker over the same window, in ms. */
  brokerCpuMs: number | null;
  windowMs: number;
}

interface Contender {
  name: string;
  url: string;
  /** Paths requested in turn (default: url's), and headers sent with each request. */
  paths: readonly string[] | undefined;
  headers: Readonly<Record<string, string>> | undefined;
  pid: number | undefined;
  warmup: number[];
  rounds: Round[];
  fixed: FixedRound[];
}

const contender = (
  name: string,
  base: string,
  pid: number | undefined,
  mix: { paths?: readonly string[]; headers?: Record<string, string> } = {},
): Contender => ({
  name,
  url: `${base}/users/42`,
  paths: mix.paths,
  headers: mix.headers,
  pid,
  warmup: [],
  rounds: [],
  fixed: [],
});

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const round3 = (x: number) => +x.toFixed(3);
const sum = (xs: number[]) => xs.reduce((n, x) => n + x, 0);

function peakRssMb(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : null;
  } catch {
    return null;
  }
}

const CLOCK_TICKS_PER_S =
  Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** cpuMs is the CPU time (user + system, every thread, living or exited) a process has used, in ms. */
function cpuMs(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime 14 and stime 15 (proc(5)).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
  } catch {
    return null;
  }
}

/**
 * brokerPid finds the Kafka broker's process: the pid file `tapwire infra` keeps, or else the one
 * process running kafka.Kafka. Undefined when there is none or more than one.
 */
function brokerPid(): { pid: number | undefined; how: string } {
  const isBroker = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('kafka.Kafka');
    } catch {
      return false;
    }
  };
  try {
    const file = resolve(infra.dir, 'kafka', 'kafka.pid');
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (pid > 0 && isBroker(pid)) return { pid, how: file };
  } catch {
    /* no pid file: look for the process */
  }
  const found = spawnSync('pgrep', ['-f', 'kafka\\.Kafka'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map(Number)
    .filter((pid) => pid > 0 && isBroker(pid));
  return found.length === 1
    ? { pid: found[0], how: 'pgrep -f kafka.Kafka' }
    : { pid: undefined, how: `pgrep -f kafka.Kafka found ${found.length} processes` };
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

async function measure(c: Contender, durationS: number): Promise<Round> {
  const r = await autocannon({
    url: c.url,
    connections: CONNECTIONS,
    duration: durationS,
    ...(c.headers ? { headers: { ...c.headers } } : {}),
    // Each connection goes through the paths in turn.
    ...(c.paths ? { requests: c.paths.map((path) => ({ method: 'GET' as const, path })) } : {}),
  });
  return {
    requestsPerSecond: Math.round(r.requests.average),
    latencyP50Ms: r.latency.p50,
    latencyP99Ms: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}

async function measureFixed(c: Contender, rate: number, broker: number | undefined): Promise<FixedRound> {
  const cpu0 = cpuMs(c.pid);
  const broker0 = cpuMs(broker);
  const t0 = performance.now();
  const r = await runAtRate(c.url, rate, FIXED_DURATION_S, CONNECTIONS, {
    ...(c.paths ? { paths: c.paths } : {}),
    ...(c.headers ? { headers: c.headers } : {}),
  });
  const windowMs = performance.now() - t0;
  const cpu1 = cpuMs(c.pid);
  const broker1 = cpuMs(broker);
  return {
    ...r,
    cpuMs: cpu0 === null || cpu1 === null ? null : cpu1 - cpu0,
    brokerCpuMs: broker0 === null || broker1 === null ? null : broker1 - broker0,
    windowMs: Math.round(windowMs),
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

/** CPU per request of a contender's process over its fixed-rate windows, in µs. */
function cpuUsPerRequest(c: Contender): number | null {
  if (c.fixed.some((r) => r.cpuMs === null)) return null;
  return round3((sum(c.fixed.map((r) => r.cpuMs as number)) * 1000) / sum(c.fixed.map((r) => r.requests)));
}

function summarizeFixed(c: Contender, direct: Contender, rate: number) {
  const p50 = round3(median(c.fixed.map((r) => r.latencyP50Ms)));
  const p99 = round3(median(c.fixed.map((r) => r.latencyP99Ms)));
  const achieved = Math.round(median(c.fixed.map((r) => r.achievedRequestsPerSecond)));
  return {
    name: c.name,
    achievedRequestsPerSecond: achieved,
    // Within 2% of the rate asked for, none failed (a request that waited for a free connection
    // counts, its wait is in its latency).
    sustained: achieved >= 0.98 * rate && c.fixed.every((r) => r.errors === 0 && r.non2xx === 0),
    latencyP50Ms: p50,
    latencyP99Ms: p99,
    p50AddedOverDirectMs: round3(p50 - median(direct.fixed.map((r) => r.latencyP50Ms))),
    p99AddedOverDirectMs: round3(p99 - median(direct.fixed.map((r) => r.latencyP99Ms))),
    cpuUsPerRequest: cpuUsPerRequest(c),
    errors: sum(c.fixed.map((r) => r.errors)),
    non2xx: sum(c.fixed.map((r) => r.non2xx)),
    rounds: c.fixed,
  };
}

type FixedSummary = ReturnType<typeof summarizeFixed>;

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
  const kafkaConfig = kafkaConfigSchema.parse({ brokers: kafkaBrokers(infra) });
  const kafka = createKafkaClient(kafkaConfig, quiet, 'bench');
  const topics = topicSpecs(kafkaConfig.topics, TOPIC_PREFIX);
  await ensureTopics(kafka, topics);
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
kafka: { brokers: ${JSON.stringify(kafkaConfig.brokers)} }
proxy:
  listen: { host: 127.0.0.1, port: ${PORTS.tapwire} }
  admin: { host: 127.0.0.1, port: ${PORTS.tapwireAdmin} }
  emit: { logDir: ${join(work, 'proxy-log')}, topicPrefix: ${TOPIC_PREFIX} }
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

    // (f): (d) with auth, a rate limit and the cache on the route (responses without freshness
    // are not stored: ttlSeconds 0), shipping to the same topics.
    const policiesConfig = join(work, 'tapwire-policies.yaml');
    const keyHash = createHash('sha256').update(BENCH_API_KEY).digest('hex');
    writeFileSync(
      policiesConfig,
      `telemetry: { logLevel: warn }
kafka: { brokers: ${JSON.stringify(kafkaConfig.brokers)} }
proxy:
  listen: { host: 127.0.0.1, port: ${PORTS.policies} }
  admin: { host: 127.0.0.1, port: ${PORTS.policiesAdmin} }
  emit: { logDir: ${join(work, 'proxy-log-policies')}, topicPrefix: ${TOPIC_PREFIX} }
  consumers:
    apiKeys: [{ id: bench, sha256: ${keyHash} }]
  upstreams:
    - name: users
      url: ${upstreamUrl}
      routes: [/users/:id]
      auth: { methods: [apiKey] }
      rateLimit: { limit: 1000000000, windowSeconds: 60 }
      cache: { ttlSeconds: 0, cacheCredentialed: true }
`,
    );
    const policies = spawn(
      process.execPath,
      [join(ROOT, 'services/cli/dist/main.js'), '-c', policiesConfig, 'proxy'],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    children.push(policies);
    await waitHttp(`http://127.0.0.1:${PORTS.policiesAdmin}/readyz`);

    const contenders = [
      contender('a_upstream_direct', upstreamUrl, upstream.pid),
      contender('b_bare_fastify_http_proxy', `http://127.0.0.1:${PORTS.bare}`, bare.pid),
      contender('c_nginx', `http://127.0.0.1:${PORTS.nginx}`, nginxWorker || nginx.pid),
      contender('d_tapwire_proxy_kafka', `http://127.0.0.1:${PORTS.tapwire}`, tapwire.pid, {
        paths: POLICY_MIX,
      }),
      contender('e_tapwire_proxy_no_emission', `http://127.0.0.1:${PORTS.noEmission}`, noEmission.pid),
      contender('f_tapwire_proxy_policies', `http://127.0.0.1:${PORTS.policies}`, policies.pid, {
        paths: POLICY_MIX,
        headers: { 'x-api-key': BENCH_API_KEY },
      }),
    ];
    for (const c of contenders) {
      for (let spent = 0; spent < WARMUP_MAX_S; spent += WARMUP_S) {
        c.warmup.push((await measure(c, WARMUP_S)).requestsPerSecond);
        const [prev, last] = c.warmup.slice(-2) as [number, number];
        if (spent + WARMUP_S >= WARMUP_MIN_S && Math.abs(last - prev) <= 0.05 * prev) break;
      }
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < contenders.length; i++) {
        const c = contenders[(i + round) % contenders.length] as Contender;
        c.rounds.push(await measure(c, DURATION_S));
      }
    }
    // Fixed rate: half of what the bare proxy sustains, the same for every contender.
    const bareSaturated = median((contenders[1] as Contender).rounds.map((r) => r.requestsPerSecond));
    const rate = Math.round(FIXED_RATE ?? FIXED_FRACTION * bareSaturated);
    const broker = brokerPid();
    for (let round = 0; round < FIXED_ROUNDS; round++) {
      for (let i = 0; i < contenders.length; i++) {
        const c = contenders[(i + round) % contenders.length] as Contender;
        c.fixed.push(await measureFixed(c, rate, broker.pid));
      }
    }

    // The shipper has until DRAIN_S to deliver what (d) wrote.
    const adminUrl = `http://127.0.0.1:${PORTS.tapwireAdmin}/metrics`;
    const drainStarted = Date.now();
    let metrics = '';
    const metric = (name: string) =>
      Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN);
    for (;;) {
      metrics = await (await fetch(adminUrl)).text();
      const shipped =
        metric('tapwire_proxy_events_emitted_total') === metric('tapwire_proxy_events_delivered_total') &&
        metric('tapwire_proxy_unshipped_events') === 0;
      if (shipped || Date.now() - drainStarted >= DRAIN_S * 1000) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const drainWaitMs = Date.now() - drainStarted;
    // (f)'s shipper too, and what its policies decided (from its own counters).
    let fMetrics = '';
    const fMetric = (name: string) =>
      Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(fMetrics)?.[1] ?? Number.NaN);
    const fSum = (name: string, label: RegExp) =>
      sum(
        fMetrics
          .split('\n')
          .filter((l) => l.startsWith(`${name}{`) && label.test(l))
          .map((l) => Number(l.slice(l.lastIndexOf(' ') + 1))),
      );
    for (;;) {
      fMetrics = await (await fetch(`http://127.0.0.1:${PORTS.policiesAdmin}/metrics`)).text();
      const shipped =
        fMetric('tapwire_proxy_events_emitted_total') === fMetric('tapwire_proxy_events_delivered_total') &&
        fMetric('tapwire_proxy_unshipped_events') === 0;
      if (shipped || Date.now() - drainStarted >= DRAIN_S * 1000) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const cacheHits = fSum('tapwire_proxy_cache_requests_total', /result="hit"/);
    const cacheLookups = fSum('tapwire_proxy_cache_requests_total', /result="(hit|miss|stale)"/);
    const fEvents = {
      emitted: fMetric('tapwire_proxy_events_emitted_total'),
      delivered: fMetric('tapwire_proxy_events_delivered_total'),
      unshipped: fMetric('tapwire_proxy_unshipped_events'),
      cacheHits,
      cacheLookups,
      cacheHitRatio: cacheLookups > 0 ? round3(cacheHits / cacheLookups) : null,
    };

    const results = contenders.map(summarize);
    const [a, b, c, d, e, f] = results as [Result, Result, Result, Result, Result, Result];
    const [fa, fb, fc, fd, fe, ff] = contenders.map((x) =>
      summarizeFixed(x, contenders[0] as Contender, rate),
    ) as [FixedSummary, FixedSummary, FixedSummary, FixedSummary, FixedSummary, FixedSummary];

    // Telemetry CPU: (d) minus (e) per request; the broker's CPU in (d)'s windows net of its rate
    // in the others' (none of which sends it anything).
    const dContender = contenders[3] as Contender;
    const proxyTelemetryUs =
      fd.cpuUsPerRequest === null || fe.cpuUsPerRequest === null
        ? null
        : round3(fd.cpuUsPerRequest - fe.cpuUsPerRequest);
    const brokerWindows = (xs: Contender[]) => xs.flatMap((x) => x.fixed);
    const others = brokerWindows(contenders.filter((x) => x !== dContender));
    const brokerKnown =
      broker.pid !== undefined && brokerWindows(contenders).every((r) => r.brokerCpuMs !== null);
    const brokerBaselineMsPerS = brokerKnown
      ? (sum(others.map((r) => r.brokerCpuMs as number)) * 1000) / sum(others.map((r) => r.windowMs))
      : null;
    const dBrokerMs = sum(dContender.fixed.map((r) => r.brokerCpuMs ?? 0));
    const dWindowMs = sum(dContender.fixed.map((r) => r.windowMs));
    const dRequests = sum(dContender.fixed.map((r) => r.requests));
    const brokerGrossUs = brokerKnown ? round3((dBrokerMs * 1000) / dRequests) : null;
    const brokerNetUs =
      brokerBaselineMsPerS === null
        ? null
        : round3(((dBrokerMs - (brokerBaselineMsPerS * dWindowMs) / 1000) * 1000) / dRequests);
    const telemetryUs =
      proxyTelemetryUs === null ? null : round3(proxyTelemetryUs + (brokerNetUs === null ? 0 : brokerNetUs));

    const events = {
      emitted: metric('tapwire_proxy_events_emitted_total'),
      delivered: metric('tapwire_proxy_events_delivered_total'),
      unshipped: metric('tapwire_proxy_unshipped_events'),
      shippedBatches: metric('tapwire_proxy_shipped_batches_total'),
    };
    const allShipped = events.emitted > 0 && events.emitted === events.delivered && events.unshipped === 0;
    const report = {
      benchmark: 'proxy',
      durationS: DURATION_S,
      rounds: ROUNDS,
      warmupWindowS: WARMUP_S,
      connections: CONNECTIONS,
      results,
      ratios: {
        d_over_b_throughput: round3(d.requestsPerSecond / b.requestsPerSecond),
        d_over_c_throughput: round3(d.requestsPerSecond / c.requestsPerSecond),
        b_over_c_throughput: round3(b.requestsPerSecond / c.requestsPerSecond),
        d_p99_minus_b_p99_ms: round3(d.latencyP99Ms - b.latencyP99Ms),
        d_over_a_throughput: round3(d.requestsPerSecond / a.requestsPerSecond),
        d_over_e_throughput: round3(d.requestsPerSecond / e.requestsPerSecond),
        e_over_c_throughput: round3(e.requestsPerSecond / c.requestsPerSecond),
        f_over_d_throughput: round3(f.requestsPerSecond / d.requestsPerSecond),
        f_over_b_throughput: round3(f.requestsPerSecond / b.requestsPerSecond),
      },
      fixedRate: {
        requestsPerSecond: rate,
        basis:
          FIXED_RATE === undefined
            ? `${FIXED_FRACTION} x b_bare_fastify_http_proxy median saturated (${bareSaturated}/s)`
            : 'BENCH_FIXED_RATE',
        durationS: FIXED_DURATION_S,
        rounds: FIXED_ROUNDS,
        connections: CONNECTIONS,
        results: [fa, fb, fc, fd, fe, ff],
        d_p50_minus_b_p50_ms: round3(fd.latencyP50Ms - fb.latencyP50Ms),
        d_p99_minus_b_p99_ms: round3(fd.latencyP99Ms - fb.latencyP99Ms),
        f_p99_minus_d_p99_ms: round3(ff.latencyP99Ms - fd.latencyP99Ms),
      },
      telemetryCpu: {
        method:
          'utime+stime of all threads (/proc/<pid>/stat) over the fixed-rate windows / requests answered; telemetry = d - e; broker = its CPU in d windows minus its rate in the other contenders windows',
        requestsPerSecond: rate,
        // Whether (d) and (e) both kept up with the rate (if not, their CPU is that of saturation).
        sustained: fd.sustained && fe.sustained,
        d_cpu_us_per_request: fd.cpuUsPerRequest,
        e_cpu_us_per_request: fe.cpuUsPerRequest,
        proxy_telemetry_us_per_request: proxyTelemetryUs,
        broker: {
          pid: broker.pid ?? null,
          foundBy: broker.how,
          included: brokerNetUs !== null,
          grossUsPerRequest: brokerGrossUs,
          baselineCpuMsPerS: brokerBaselineMsPerS === null ? null : round3(brokerBaselineMsPerS),
          netUsPerRequest: brokerNetUs,
        },
        telemetry_us_per_request: telemetryUs,
      },
      tapwireEvents: { ...events, drainWaitMs, allShipped },
      policiesEvents: fEvents,
      targets: {
        d_over_e_ge_0_85: d.requestsPerSecond >= 0.85 * e.requestsPerSecond,
        d_over_b_ge_1_2: d.requestsPerSecond >= 1.2 * b.requestsPerSecond,
        d_over_c_ge_0_4: d.requestsPerSecond >= 0.4 * c.requestsPerSecond,
        d_peak_rss_le_200mb: (d.peakRssMb ?? Number.POSITIVE_INFINITY) <= 200,
        d_p50_le_b_p50_plus_0_3ms: fd.sustained && fd.latencyP50Ms <= fb.latencyP50Ms + 0.3,
        d_p99_le_b_p99_plus_1ms: fd.sustained && fd.latencyP99Ms <= fb.latencyP99Ms + 1,
        telemetry_cpu_us_per_request_le_25: telemetryUs !== null && telemetryUs <= 25,
        all_events_shipped: allShipped,
        // Issue #23: auth + rate limit + cache (about half the requests hit) against (d) on the
        // same mix, and against the bare proxy.
        f_over_d_ge_0_9: f.requestsPerSecond >= 0.9 * d.requestsPerSecond,
        f_over_b_ge_1: f.requestsPerSecond >= b.requestsPerSecond,
        f_p99_le_d_p99_plus_1ms: ff.sustained && fd.sustained && ff.latencyP99Ms <= fd.latencyP99Ms + 1,
        f_all_answered_2xx: f.non2xx === 0 && ff.non2xx === 0,
      },
      // The targets before issue #18, on the saturated medians.
      previousTargets: {
        d_over_b_throughput_ge_1: d.requestsPerSecond >= b.requestsPerSecond,
        d_p99_le_b_p99_plus_1ms_saturated: d.latencyP99Ms <= b.latencyP99Ms + 1,
        d_over_c_throughput_ge_0_5: d.requestsPerSecond >= 0.5 * c.requestsPerSecond,
      },
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    for (const child of children.reverse()) await stop(child);
    rmSync(work, { recursive: true, force: true });
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: topics.map((t) => t.topic) }).catch(() => {});
    await admin.disconnect();
  }
}

await main();
