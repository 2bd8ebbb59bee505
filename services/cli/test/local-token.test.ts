import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CommandFailure } from '../src/io.js';
import { LOCAL_OTLP_TOKEN_FILE, LOCAL_TOKEN_FILE, localToken } from '../src/local-token.js';

const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

function fresh(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-token-'));
  made.push(dir);
  return join(dir, 'data');
}

describe('the local API token of tapwire start', () => {
  it('is made once per data directory, kept there with mode 0600, and the same on every start', () => {
    const dir = fresh();
    const first = localToken(dir);
    expect(first).toMatchObject({ file: join(dir, LOCAL_TOKEN_FILE), created: true });
    expect(first.token).toMatch(/^tw_[A-Za-z0-9_-]{32}$/);
    expect(readFileSync(first.file, 'utf8')).toBe(`${first.token}\n`);
    expect(statSync(first.file).mode & 0o777).toBe(0o600);
    expect(localToken(dir)).toEqual({ token: first.token, file: first.file, created: false });
  });

  it('a new data directory gets a new token', () => {
    expect(localToken(fresh()).token).not.toBe(localToken(fresh()).token);
  });

  it('tightens a token file others could read, and refuses a file that holds no token', () => {
    const dir = fresh();
    const { file, token } = localToken(dir);
    chmodSync(file, 0o644);
    expect(localToken(dir).token).toBe(token);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    writeFileSync(file, 'not a token\n');
    expect(() => localToken(dir)).toThrow(CommandFailure);
    expect(() => localToken(dir)).toThrow(`${file} does not hold an API token; remove it and start again`);
  });
});

describe('the local OTLP token of tapwire start', () => {
  it('is its own token in its own file beside the API token, refused by name when the file holds none', () => {
    const dir = fresh();
    const api = localToken(dir, 'API');
    const otlp = localToken(dir, 'OTLP');
    expect(otlp).toMatchObject({ file: join(dir, LOCAL_OTLP_TOKEN_FILE), created: true });
    expect(otlp.file).toBe(join(dir, 'otlp-token'));
    expect(otlp.token).toMatch(/^tw_[A-Za-z0-9_-]{32}$/);
    expect(otlp.token).not.toBe(api.token);
    expect(statSync(otlp.file).mode & 0o777).toBe(0o600);
    expect(localToken(dir, 'OTLP')).toEqual({ token: otlp.token, file: otlp.file, created: false });
    writeFileSync(otlp.file, 'not a token\n');
    expect(() => localToken(dir, 'OTLP')).toThrow(
      `${otlp.file} does not hold an OTLP token; remove it and start again`,
    );
  });
});
