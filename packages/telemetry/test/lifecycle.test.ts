import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REPEAT_SIGNAL_MS } from '../src/lifecycle.js';

const CHILD = fileURLToPath(new URL('./support/stop-on-signals-child.ts', import.meta.url));

/** stopped sends SIGTERM to a child once it is ready and resolves with how it exited (or `running` after waitMs). */
async function stopped(mode: 'hangs' | 'finishes', deadlineMs: number, waitMs: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, mode, String(deadlineMs)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  const outcome = await Promise.race([
    exited,
    new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), waitMs).unref()),
  ]);
  if (outcome === 'running') child.kill('SIGKILL');
  return { outcome, stderr };
}

describe('stopOnSignals', () => {
  it('exits with code 1 at the deadline when stop never finishes and timers keep the process alive', async () => {
    expect(await stopped('hangs', 300, 10_000)).toEqual({
      outcome: 1,
      stderr: 'shutdown did not finish within 300 ms; exiting\n',
    });
  });

  it('the same Ctrl-C forwarded by npx or npm run (a second signal at once) does not cut the shutdown short; a later one does', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, 'hangs', '60000'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      child.kill('SIGINT');
      child.kill('SIGINT');
      await new Promise((r) => setTimeout(r, REPEAT_SIGNAL_MS + 200));
      expect(child.exitCode).toBe(null);
      expect(child.signalCode).toBe(null);
      child.kill('SIGINT');
      expect(await exited).toBe(1);
      expect(stderr).toBe('SIGINT again: exiting before the shutdown finished\n');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('exits with code 0 as soon as stop finishes, before the deadline', async () => {
    expect(await stopped('finishes', 60_000, 10_000)).toEqual({ outcome: 0, stderr: '' });
  });
});
