import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePort, startUpstream, type TestUpstream } from '../support/upstream.js';

/**
 * The README's quick start as a newcomer follows it, on the built command through npx: in a fresh
 * working directory (so data lives there), `npx tapwire start --upstream <their API>`, a request
 * through the printed proxy URL, the printed curl showing it within 10 s, the same token after a
 * restart; and `-c file start --demo` keeping the configured upstream beside the demo.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const upstreams: TestUpstream[] = [];
const running: ChildProcess[] = [];
const homes: string[] = [];

/** tempHome is a fresh directory under the system temp directory, removed after the file's tests. */
function tempHome(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  homes.push(dir);
  return dir;
}

beforeAll(() => {
  // What the README has a newcomer run before the quick start (tsc -b: nothing to do when built).
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8', timeout: 280_000 });
  expect(build.status, `${build.stdout}\n${build.stderr}`).toBe(0);
}, 300_000);

afterAll(async () => {
  for (const child of running) if (child.exitCode === null && child.pid) killGroup(child, 'SIGKILL');
  for (const u of upstreams) await u.close();
  for (const dir of homes) rmSync(dir, { recursive: true, force: true });
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // Already gone.
  }
}

/**
 * A machine with nothing set but this test's ports (a user gets 8080, 8081 and 9464-9467; tests
 * share the machine, so each run takes free ones), and TMPDIR when given.
 */
async function bareEnv(extra: Record<string, string> = {}): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TAPWIRE_')) env[k] = v;
  const names = [
    'PROXY_LISTEN_PORT',
    'PROXY_ADMIN_PORT',
    'INGEST_ADMIN_PORT',
    'API_LISTEN_PORT',
    'API_ADMIN_PORT',
    'ALERTER_ADMIN_PORT',
    'OTLP_GRPC_PORT',
    'OTLP_HTTP_PORT',
    'OTLP_ADMIN_PORT',
  ];
  for (const name of names) env[`TAPWIRE_${name}`] = String(await freePort());
  return { ...env, ...extra };
}

interface Run {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}

/** npx tapwire <args> in `cwd`, as a user types it (the checkout at ROOT is where npx finds the bin). */
function npxTapwire(args: string[], cwd: string, env: NodeJS.ProcessEnv): Run {
  // Its own process group, as a shell gives a foreground job: Ctrl-C reaches npx and tapwire both.
  const child = spawn('npx', ['--prefix', ROOT, 'tapwire', ...args], {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  running.push(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, out: () => out, err: () => err, exited };
}

/** What the banner says, read the way a user reads it. */
interface Banner {
  proxy: string;
  token: string;
  curlToken: string;
  curlUrl: string;
}

async function banner(run: Run, tokenLabel = 'token'): Promise<Banner> {
  await vi.waitFor(
    () => {
      if (run.child.exitCode !== null)
        throw new Error(`exited ${run.child.exitCode}: ${run.out()}\n${run.err()}`);
      expect(run.out()).toMatch(/^ {2}try: +curl /m);
    },
    { timeout: 120_000, interval: 200 },
  );
  const out = run.out();
  const curl = /^ {2}try: +curl -H 'Authorization: Bearer (\S+)' '(\S+)'$/m.exec(out);
  expect(curl, out).not.toBeNull();
  return {
    proxy: /^ {2}proxy: +(\S+)$/m.exec(out)![1]!,
    token: new RegExp(`^  ${tokenLabel}: +(\\S+)`, 'm').exec(out)![1]!,
    curlToken: curl![1]!,
    curlUrl: curl![2]!,
  };
}

type Overview = {
  source: string;
  from: number;
  to: number;
  rows: { service: string; route: string; requests: number; rate_rps: number }[];
};

async function overview(url: string, token: string): Promise<Overview> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Overview;
}

/**
 * Ctrl-C, as a terminal sends it: SIGINT to the whole foreground process group. npx ends as any
 * command a Ctrl-C stopped does (130, like the shell says); tapwire stops gracefully within it,
 * ingest last, having stored what the log held.
 */
async function ctrlC(run: Run): Promise<void> {
  killGroup(run.child, 'SIGINT');
  await run.exited;
  expect(run.out()).toMatch(/"name":"tapwire-ingest".*"msg":"ingest stopped"/);
  expect(run.err()).not.toContain('shutdown did not finish');
}

describe('the quick start: npx tapwire start --upstream <your API>', () => {
  it('npx tapwire resolves the checkout’s own command, and --version prints its version', () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'services/cli/package.json'), 'utf8')) as {
      version: string;
    };
    for (const cwd of [ROOT, tempHome('tapwire-npx-')]) {
      const args = cwd === ROOT ? ['tapwire', '--version'] : ['--prefix', ROOT, 'tapwire', '--version'];
      const r = spawnSync('npx', args, { cwd, encoding: 'utf8', timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${version}\n`);
    }
  });

  it('is what the README tells a newcomer to run', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toMatch(/^npm ci && npm start\b/m);
    expect(readme).toMatch(/^npx tapwire start --upstream http:\/\/localhost:3000\b/m);
    expect(readme).toMatch(
      /^npx tapwire -c examples\/tapwire\.yaml start\b|`npx\s+tapwire -c examples\/tapwire\.yaml start`/m,
    );
  });

  it('proxies the API, shows a request in the printed curl within 10 s, and keeps the token across a restart', async () => {
    const api = await startUpstream();
    upstreams.push(api);
    const home = tempHome('tapwire-quickstart-');
    const env = await bareEnv();
    const first = npxTapwire(['start', '--upstream', api.url], home, env);
    const b = await banner(first);
    expect(b.curlToken).toBe(b.token);
    expect(b.proxy).toBe(`http://127.0.0.1:${env.TAPWIRE_PROXY_LISTEN_PORT}`);
    expect(first.out()).toContain(`127.0.0.1-${api.port} → ${api.url} (every request)`);
    // The window starts when tapwire started, over raw rows: rate_rps is the rate since then.
    const from = new URL(b.curlUrl).searchParams.get('from')!;
    expect(from).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(Date.now() - Date.parse(from)).toBeLessThan(60_000);

    const sent = Date.now();
    const proxied = await fetch(`${b.proxy}/users/42?q=1`);
    expect(proxied.status).toBe(200);
    expect(api.seen.map((s) => s.url)).toContain('/users/42?q=1');
    let seen: Overview | undefined;
    await vi.waitFor(
      async () => {
        seen = await overview(b.curlUrl, b.curlToken);
        expect(seen.rows.find((r) => r.route === '/users/:id')?.requests).toBe(1);
      },
      { timeout: 10_000, interval: 250 },
    );
    expect(Date.now() - sent).toBeLessThan(10_000);
    expect(seen!.source).toBe('raw');
    expect(seen!.from).toBe(Date.parse(from) / 1000);
    const row = seen!.rows.find((r) => r.route === '/users/:id')!;
    expect(row.rate_rps).toBeCloseTo(1 / (seen!.to - seen!.from), 6);

    // Off a terminal the logs stay JSON lines, one object a line, for whatever parses them.
    const logLines = first
      .out()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    expect(logLines.map((l) => (JSON.parse(l) as { name: string }).name)).toContain('tapwire-proxy');

    // Data, and the token, live in the working directory's .tapwire/data.
    const tokenFile = join(home, '.tapwire', 'data', 'api-token');
    expect(readFileSync(tokenFile, 'utf8')).toBe(`${b.token}\n`);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(existsSync(join(home, '.tapwire', 'data', 'tapwire.duckdb'))).toBe(true);
    await ctrlC(first);

    // Restarted on the same directory: the same token, still admitted, and the data kept.
    const second = npxTapwire(['start', '--upstream', api.url], home, env);
    const again = await banner(second);
    expect(again.token).toBe(b.token);
    const kept = await overview(b.curlUrl, b.token);
    expect(kept.rows.find((r) => r.route === '/users/:id')?.requests).toBe(1);
    await ctrlC(second);
  }, 300_000);
});

describe('npx tapwire -c tapwire.yaml start --demo', () => {
  it('keeps the configured upstream and adds the demo at Host demo-shop.localhost; the curl shows the demo’s real rate; nothing is left in the temp directory', async () => {
    const api = await startUpstream();
    upstreams.push(api);
    const home = tempHome('tapwire-quickstart-demo-');
    const tmp = join(home, 'tmp');
    mkdirSync(tmp);
    writeFileSync(
      join(home, 'tapwire.yaml'),
      `proxy:\n  upstreams:\n    - name: my-api\n      url: ${api.url}\n`,
    );
    const env = await bareEnv({ TMPDIR: tmp });
    const rate = 20;
    const run = npxTapwire(['-c', 'tapwire.yaml', 'start', '--demo', '--demo-rate', String(rate)], home, env);
    const b = await banner(run, 'demo token');
    expect(run.out()).toContain(`my-api → ${api.url} (every request)`);
    expect(run.out()).toMatch(
      /demo-shop → http:\/\/127\.0\.0\.1:\d+ \(Host demo-shop\.localhost, 20 requests\/s/,
    );
    expect(readdirSync(join(home, '.tapwire', 'data'))).toContain('demo-alerting.yaml');

    // Any request goes to the configured API; Host demo-shop.localhost to the demo.
    expect((await fetch(`${b.proxy}/orders/7`)).status).toBe(200);
    expect(api.seen.map((s) => s.url)).toEqual(['/orders/7']);
    const demoHealth = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${b.proxy}/api/health`, { headers: { host: 'demo-shop.localhost' } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(demoHealth).toEqual({ status: 200, body: '{"ok":true}' });

    const from = Date.parse(new URL(b.curlUrl).searchParams.get('from')!);
    await vi.waitFor(
      async () => {
        const o = await overview(b.curlUrl, b.curlToken);
        expect(o.rows.find((r) => r.service === 'my-api' && r.route === '/orders/:id')?.requests).toBe(1);
        expect(o.rows.some((r) => r.service === 'demo-shop' && r.route === '/api/users/:id')).toBe(true);
      },
      { timeout: 30_000, interval: 500 },
    );
    // 15 s in, the demo's rate over the printed window is about its 20 requests/s (over a fixed
    // 15-minute window it read 0.084).
    await new Promise((r) => setTimeout(r, Math.max(0, from + 15_000 - Date.now())));
    const o = await overview(b.curlUrl, b.curlToken);
    const demoRate = o.rows.filter((r) => r.service === 'demo-shop').reduce((sum, r) => sum + r.rate_rps, 0);
    expect(demoRate).toBeGreaterThan(rate * 0.5);
    expect(demoRate).toBeLessThan(rate * 1.5);

    await ctrlC(run);
    expect(readdirSync(tmp).filter((f) => f.startsWith('tapwire'))).toEqual([]);
  }, 300_000);
});

describe('npx tapwire start on a terminal', () => {
  it('prints the banner with emphasis and human-readable log lines instead of JSON; Ctrl-C stops it cleanly', async () => {
    const api = await startUpstream();
    upstreams.push(api);
    const home = tempHome('tapwire-quickstart-tty-');
    const env = await bareEnv();
    // `script` runs the command on a pseudo-terminal, as a user's shell does.
    const child = spawn(
      'script',
      ['-qefc', `npx --prefix '${ROOT}' tapwire start --upstream ${api.url}`, '/dev/null'],
      {
        cwd: home,
        env,
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
      },
    );
    running.push(child);
    let raw = '';
    child.stdout.on('data', (c: Buffer) => {
      raw += c.toString();
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences are what is stripped
    const plain = () => raw.replace(/\u001b\[[0-9;]*m/g, '').replace(/\r/g, '');
    await vi.waitFor(() => expect(plain()).toMatch(/^ {2}try: +curl /m), { timeout: 120_000, interval: 200 });
    expect(raw).toContain('\u001b[1mproxy:');
    const lines = plain().split('\n');
    expect(lines.some((l) => /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(tapwire-api\): api listening /.test(l))).toBe(
      true,
    );
    expect(lines.filter((l) => l.startsWith('{'))).toEqual([]);
    child.stdin.write('\u0003');
    await exited;
    expect(plain()).toMatch(/INFO \(tapwire-ingest\): ingest stopped/);
  }, 300_000);
});
