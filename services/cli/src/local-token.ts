import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CommandFailure } from './io.js';

/** LOCAL_TOKEN_FILE is the file, in the data directory, that keeps `tapwire start`'s own API token. */
export const LOCAL_TOKEN_FILE = 'api-token';

/**
 * LOCAL_OTLP_TOKEN_FILE is the file, in the data directory, that keeps `tapwire start`'s own OTLP
 * token: apps put it in their exporter headers, so it is not the API token (read and admin on every
 * tenant).
 */
export const LOCAL_OTLP_TOKEN_FILE = 'otlp-token';

/** LocalTokenKind is what a local token admits: the API, or the OTLP receiver. */
export type LocalTokenKind = 'API' | 'OTLP';

const FILES: Record<LocalTokenKind, string> = { API: LOCAL_TOKEN_FILE, OTLP: LOCAL_OTLP_TOKEN_FILE };

const TOKEN = /^tw_[A-Za-z0-9_-]{32}$/;

/** LocalToken is an API or OTLP token of one data directory and the file that keeps it. */
export interface LocalToken {
  readonly token: string;
  readonly file: string;
  /** True when this call made the token (a new data directory). */
  readonly created: boolean;
}

/**
 * localToken reads the `kind` token (default API) kept in `dir`, or makes one and keeps it there (mode 0600): the
 * same data directory gets the same token on every start, a new one a new token. A file that does
 * not hold a token is refused, naming it, rather than silently replaced.
 */
export function localToken(dir: string, kind: LocalTokenKind = 'API'): LocalToken {
  const file = join(dir, FILES[kind]);
  mkdirSync(dir, { recursive: true });
  const token = `tw_${randomBytes(24).toString('base64url')}`;
  try {
    writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
    return { token, file, created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
      throw new CommandFailure(`cannot keep the ${kind} token in ${file}: ${(err as Error).message}`, 1, {
        cause: err,
      });
  }
  const kept = readFileSync(file, 'utf8').trim();
  if (!TOKEN.test(kept))
    throw new CommandFailure(
      `${file} does not hold an ${kind} token; remove it and start again for a new one`,
      2,
    );
  // Whoever widened it, the token admits reading every tenant or writing spans: keep it to its owner.
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  return { token: kept, file, created: false };
}
