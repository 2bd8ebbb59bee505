import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli } from '../src/program.js';

describe('tapwire --version', () => {
  it('prints the version of the tapwire command and exits 0', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    for (const flag of ['--version', '-V']) {
      let out = '';
      const code = await runCli([flag], { out: (t) => (out += t), err: () => undefined });
      expect(code).toBe(0);
      expect(out).toBe(`${version}\n`);
    }
  });
});
