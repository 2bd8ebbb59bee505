import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { envWarnings } from '@tapwire/config';
import { describe, expect, it } from 'vitest';
import { tapwireConfigSchema } from '../src/cli-config.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const inDir = (dir: string) => readdirSync(join(ROOT, dir)).map((f) => join(dir, f));

// Where a user copies environment variables from; TAPWIRE_* names there are set as NAME=value
// (shell, Dockerfile) or, in YAML, NAME: value (compose). Error codes share the prefix but are
// never set (in prose, "TAPWIRE_LOG_LOCKED: …" is a message, so only YAML counts the colon form).
const SOURCES = [
  'README.md',
  'Dockerfile',
  'docker-compose.yml',
  'package.json',
  '.ci/run',
  ...inDir('docs'),
  ...inDir('deploy'),
  ...inDir('examples'),
];

describe('environment variables in the docs, compose, deploy and CI', () => {
  it('are all Tapwire settings (a renamed setting leaves no stale name behind)', () => {
    const env: Record<string, string> = {};
    for (const file of SOURCES) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      const set = /\.ya?ml$/.test(file) ? /\b(TAPWIRE_[A-Z0-9_]+)(?:=|: )/g : /\b(TAPWIRE_[A-Z0-9_]+)=/g;
      for (const m of text.matchAll(set)) env[m[1]!] = file;
    }
    expect(Object.keys(env).length).toBeGreaterThan(10);
    expect(envWarnings(tapwireConfigSchema, { env })).toEqual([]);
  });
});
