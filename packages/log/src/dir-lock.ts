import { createHash } from 'node:crypto';
import { realpathSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { LogError } from './errors.js';

/**
 * The directory lock is a listening Unix domain socket: the kernel closes it when its process
 * dies, however it dies, so the lock never outlives its owner (a PID file does, and a reused PID
 * keeps it "alive"). A live owner answers a connection with its pid; a socket file nobody listens
 * on (connect: ECONNREFUSED) is what a dead owner leaves behind, and is taken over.
 */

/** The longest path a Unix socket address holds (sun_path is 108 bytes with its NUL). */
const SUN_PATH_MAX = 107;
/** How long a connected owner has to answer with its pid (a busy event loop answers late). */
const ANSWER_TIMEOUT_MS = 2000;

/** DirLock is a held directory lock. */
export interface DirLock {
  /** The socket path, or an abstract address (starting with NUL) when the path is too long. */
  readonly address: string;
  /** release stops listening (which removes the socket file). */
  release(): Promise<void>;
}

/** lockAddress is where the lock of `dir` listens: `<dir>/LOCK`, or an abstract socket named by the directory's real path. */
export function lockAddress(dir: string): string {
  const path = join(dir, 'LOCK');
  if (Buffer.byteLength(path) <= SUN_PATH_MAX) return path;
  // Linux's abstract namespace: no file, released with the socket; one name per real directory.
  return `\0tapwire-log-${createHash('sha256').update(realpathSync(dir)).digest('hex').slice(0, 32)}`;
}

function listen(server: Server, address: string): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const onError = (err: NodeJS.ErrnoException) => resolve(err);
    server.once('error', onError);
    server.listen(address, () => {
      server.off('error', onError);
      resolve(null);
    });
  });
}

type Owner = { alive: true; pid: string | null; reason?: string } | { alive: false };

/** askOwner connects to the lock: a listener is a live owner (its answer is its pid); refused or missing is a dead one. */
function askOwner(address: string): Promise<Owner> {
  return new Promise((resolve) => {
    const socket = connect(address);
    let answer = '';
    let connected = false;
    const timer = setTimeout(() => socket.destroy(), ANSWER_TIMEOUT_MS);
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      connected = true;
    });
    socket.on('data', (d: string) => {
      answer += d;
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (connected) return;
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') resolve({ alive: false });
      else resolve({ alive: true, pid: null, reason: err.code ?? err.message });
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const pid = answer.trim();
      // After an error this resolves nothing more: the first resolve wins.
      resolve({
        alive: true,
        pid: /^\d+$/.test(pid) ? pid : null,
        ...(connected ? {} : { reason: 'no answer' }),
      });
    });
  });
}

/** takeDirLock locks `dir` for this process, refusing (TAPWIRE_LOG_LOCKED, naming the owner's pid) when a live process holds it. */
export async function takeDirLock(dir: string): Promise<DirLock> {
  const address = lockAddress(dir);
  for (let attempt = 0; ; attempt++) {
    const server = createServer((socket) => {
      socket.on('error', () => {});
      socket.end(`${process.pid}\n`);
    });
    const err = await listen(server, address);
    if (!err) {
      server.on('error', () => {});
      // The lock alone does not keep a process running.
      server.unref();
      return {
        address,
        release: () => new Promise<void>((resolve) => server.close(() => resolve())),
      };
    }
    if (err.code !== 'EADDRINUSE')
      throw new LogError('TAPWIRE_LOG_WRITE_FAILED', `cannot create the lock of ${dir}: ${err.message}`, {
        cause: err,
      });
    const owner = await askOwner(address);
    if (owner.alive) {
      const who = owner.pid
        ? `process ${owner.pid}`
        : `a process that did not answer (${owner.reason ?? 'no pid'})`;
      throw new LogError(
        'TAPWIRE_LOG_LOCKED',
        `${dir} is in use by ${who}; one process owns a log directory (give each process its own directory, or run the services together with \`tapwire start\`)`,
      );
    }
    if (attempt > 0)
      throw new LogError(
        'TAPWIRE_LOG_LOCKED',
        `${dir}: another process is taking its lock ${address} right now`,
      );
    // The owner died and left its socket file (an abstract address goes with its socket).
    if (!address.startsWith('\0')) rmSync(address, { force: true });
  }
}
