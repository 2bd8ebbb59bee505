import { isatty } from 'node:tty';

/** CliIo is where commands write and how they end, injectable so tests can run commands in-process. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** readStdin returns all of standard input (tests pass their own). */
  readStdin?(): Promise<string>;
  /** terminal says whether `out` is a terminal (then output may use ANSI emphasis). */
  terminal?(): boolean;
}

/** readProcessStdin reads the process's standard input to its end. */
export async function readProcessStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** processIo writes to the real stdout and stderr. */
export const processIo: CliIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  terminal: () => isatty(1),
};

/** CommandFailure ends a command with a message and exit code 1. */
export class CommandFailure extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CommandFailure';
    this.exitCode = exitCode;
  }
}

/** describeError renders an error with its code, for one line of CLI output. */
export function describeError(err: unknown): string {
  const e = err as { code?: unknown; message?: string };
  return typeof e?.code === 'string' && e.code.startsWith('TAPWIRE_') && !e.message?.startsWith(e.code)
    ? `${e.code}: ${e.message}`
    : String(e?.message ?? err);
}
