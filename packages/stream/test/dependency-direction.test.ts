import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const PACKAGES = fileURLToPath(new URL('../../', import.meta.url));

/** importsOf lists the non-relative modules a package's sources import (static and dynamic). */
function importsOf(pkg: string): string[] {
  const dir = join(PACKAGES, pkg, 'src');
  const found = new Set<string>();
  for (const file of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.ts')) continue;
    const text = readFileSync(join(dir, file), 'utf8');
    for (const m of text.matchAll(/(?<![.\w])(?:from|import)\s*\(?\s*'([^'.][^']*)'/g))
      if (m[1]) found.add(m[1]);
  }
  return [...found].sort();
}

function dependenciesOf(pkg: string): string[] {
  const manifest = JSON.parse(readFileSync(join(PACKAGES, pkg, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  return Object.keys(manifest.dependencies ?? {}).sort();
}

// The seam is only a seam while neither log reaches into the other: issue #18 moved it out of
// packages/kafka so the embedded log and the coming local log build on it without kafkajs.
describe('dependency direction of the event-log seam', () => {
  it('packages/stream imports only @tapwire/schema and node built-ins', () => {
    expect(importsOf('stream').filter((m) => !m.startsWith('node:'))).toEqual(['@tapwire/schema']);
    expect(dependenciesOf('stream')).toEqual(['@tapwire/schema']);
  });

  it('packages/log implements the seam without @tapwire/kafka or kafkajs', () => {
    const imports = importsOf('log');
    expect(imports).toContain('@tapwire/stream');
    expect(imports.filter((m) => m.includes('kafka'))).toEqual([]);
    expect(dependenciesOf('log').filter((m) => m.includes('kafka'))).toEqual([]);
  });
});
