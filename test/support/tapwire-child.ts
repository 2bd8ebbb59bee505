import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** TapwireProcess is a `tapwire` command running as a child process, with what it printed so far. */
export interface TapwireProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** output is stdout and stderr as printed so far, interleaved. */
  output(): string;
  /** exited resolves with how the process ended (at once if it already has). */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** bareEnv is the environment of a child `tapwire`: no TAPWIRE_* setting of this shell, warnings only, plus `extra`. */
export function bareEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TAPWIRE_')) env[k] = v;
  return { ...env, TAPWIRE_TELEMETRY_LOG_LEVEL: 'warn', ...extra };
}

/**
 * spawnTapwire runs `tapwire <args>` from the sources (as every integration test does, so it tests
 * the code of the working tree, built or not) in its own process: a SIGKILL takes only it.
 */
export function spawnTapwire(args: string[], env: NodeJS.ProcessEnv = bareEnv()): TapwireProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/cli/src/main.ts', ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const collect = (c: Buffer) => {
    out += c.toString('utf8');
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  if (child.pid === undefined) throw new Error('tapwire did not start');
  return { child, pid: child.pid, output: () => out, exited: () => ended };
}

/** killHard SIGKILLs a process still running and resolves once it is gone (its sockets and locks with it). */
export async function killHard(p: TapwireProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGKILL');
  await p.exited();
}

/** metricSamples returns the values of one metric's samples in a Prometheus text exposition. */
export function metricSamples(text: string, name: string): number[] {
  const line = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm');
  return [...text.matchAll(line)].map((m) => Number(m[1]));
}

/** scrape fetches a /metrics page; an unreachable server reads as an empty page. */
export async function scrape(url: string): Promise<string> {
  try {
    const res = await fetch(url);
    return res.ok ? await res.text() : '';
  } catch {
    return '';
  }
}
