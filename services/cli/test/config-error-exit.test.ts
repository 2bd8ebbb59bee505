import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/program.js';

const dir = mkdtempSync(join(tmpdir(), 'tapwire-config-exit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a configuration problem found while a service is built', () => {
  it('exits 2 naming the field, as a file that does not validate does', async () => {
    const config = join(dir, 'tapwire.yaml');
    writeFileSync(
      config,
      `kafka: { brokers: ['127.0.0.1:1'] }
proxy:
  listen: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
  emit: { logDir: ${join(dir, 'log')} }
  consumers: { jwt: { jwksFile: ${join(dir, 'absent.json')} } }
  upstreams: [{ name: a, url: 'http://127.0.0.1:1' }]
`,
    );
    let err = '';
    const code = await runCli(['-c', config, 'proxy'], { out: () => undefined, err: (t) => (err += t) });
    expect(code).toBe(2);
    expect(err).toMatch(
      /^tapwire: invalid configuration:\n {2}- proxy\.consumers\.jwt\.jwksFile: cannot load the JWKS file: ENOENT/,
    );
  });
});
