import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const SERVER = join(REPO, 'test/dialect/chdb_server.py');

/** ChdbServer is a running chdb HTTP shim: a ClickHouse of the chdb-core version, for tests. */
export interface ChdbServer {
  /** url is the shim's HTTP address, e.g. http://127.0.0.1:40123. */
  readonly url: string;
  /** version is the engine's `SELECT version()`, e.g. 26.9.2.1. */
  readonly version: string;
  /** stop ends the shim (SIGTERM, then SIGKILL after 5 s) and removes its data directory. */
  stop(): Promise<void>;
}

/**
 * ensureChdbVenv runs scripts/chdb-venv.sh (creates .tapwire/chdb-venv with chdb-core when it is
 * missing; .ci/run calls the same script) and returns the venv's python.
 */
export function ensureChdbVenv(): string {
  return execFileSync(join(REPO, 'scripts/chdb-venv.sh'), {
    cwd: REPO,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 600_000,
  }).trim();
}

/** startChdb starts the shim on a free port with a fresh data directory and waits until it listens. */
export async function startChdb(): Promise<ChdbServer> {
  const python = ensureChdbVenv();
  const data = mkdtempSync(join(tmpdir(), 'tapwire-chdb-'));
  const child: ChildProcess = spawn(python, [SERVER, '--data', join(data, 'db'), '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TZ: 'UTC' },
  });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = await new Promise<{ url: string; version: string }>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`chdb shim did not start in 60 s: ${stderr}`)), 60_000);
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /listening on (\S+) version (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1]!, version: m[2]! });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`chdb shim exited with ${code}: ${stderr}`));
    });
  }).catch((err) => {
    child.kill('SIGKILL');
    rmSync(data, { recursive: true, force: true });
    throw err;
  });
  child.stdout?.resume();
  return {
    ...ready,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(killer);
      }
      rmSync(data, { recursive: true, force: true });
    },
  };
}
