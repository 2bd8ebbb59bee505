import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { lockAddress } from '../src/dir-lock.js';
import { type FileLog, openFileLog } from '../src/index.js';

const opened: FileLog[] = [];
const children: ChildProcess[] = [];
const fresh = () => mkdtempSync(join(tmpdir(), 'tapwire-log-lock-'));
/** longDir is a directory whose LOCK path does not fit a Unix socket address (107 bytes). */
function longDir(): string {
  const dir = join(fresh(), 'a'.repeat(60), 'b'.repeat(60));
  mkdirSync(dir, { recursive: true });
  return dir;
}
async function open(dir: string): Promise<FileLog> {
  const log = await openFileLog({ dir, fsync: 'never' });
  opened.push(log);
  return log;
}
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const l of opened.splice(0)) await l.close();
});

const exited = (child: ChildProcess) =>
  new Promise<string | null>((r) => child.once('exit', (_code, signal) => r(signal)));

/** holdInChild opens the log in `dir` in another process and resolves once it holds it. */
async function holdInChild(dir: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('./support/hold-log.ts', import.meta.url)), dir],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the child exited (${code}) before opening the log`)));
  });
  return child;
}

describe('directory lock', () => {
  it('refuses a second open in the same process, naming this process; a closed log opens again', async () => {
    const dir = fresh();
    const log = await open(dir);
    expect(statSync(join(dir, 'LOCK')).isSocket()).toBe(true);
    await expect(openFileLog({ dir })).rejects.toThrow(
      `TAPWIRE_LOG_LOCKED: ${dir} is in use by process ${process.pid}; one process owns a log directory`,
    );
    await log.close();
    opened.pop();
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
    await open(dir);
  });

  it.each([
    ['<dir>/LOCK', fresh],
    ['an abstract socket (the path is too long for one)', longDir],
  ])(
    'with the lock at %s: another process is refused with the owner’s pid; after SIGKILL of the owner the directory opens',
    async (_where, makeDir) => {
      const dir = makeDir();
      expect(lockAddress(dir).startsWith('\0')).toBe(makeDir === longDir);
      const owner = await holdInChild(dir);
      expect(existsSync(join(dir, 'LOCK'))).toBe(makeDir === fresh);
      await expect(openFileLog({ dir })).rejects.toThrow(
        `TAPWIRE_LOG_LOCKED: ${dir} is in use by process ${owner.pid};`,
      );
      const gone = exited(owner);
      owner.kill('SIGKILL');
      expect(await gone).toBe('SIGKILL');
      const log = await open(dir);
      expect(log.appendSync('t', [{ key: null, value: 'mine now' }])).toBe(0n);
      // And it is this process's lock now.
      await expect(openFileLog({ dir })).rejects.toThrow(`in use by process ${process.pid};`);
    },
    60_000,
  );

  it('a socket file left by a process that died does not block the directory', async () => {
    const dir = fresh();
    const lock = join(dir, 'LOCK');
    // A process that listens at the lock path and dies without closing it.
    const child = spawn(process.execPath, [
      '-e',
      "require('node:net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))",
      lock,
    ]);
    expect(await exited(child)).toBe('SIGKILL');
    expect(statSync(lock).isSocket()).toBe(true);
    await open(dir);
    await expect(openFileLog({ dir })).rejects.toThrow(`in use by process ${process.pid};`);
  });

  it('a PID file from an earlier release does not block the directory, even when that pid is alive (a reused pid)', async () => {
    const dir = fresh();
    writeFileSync(join(dir, 'LOCK'), String(process.ppid));
    await open(dir);
    expect(statSync(join(dir, 'LOCK')).isSocket()).toBe(true);
  });
});
