import { fileURLToPath } from 'node:url';
import { loadConfig } from '@tapwire/config';
import { describe, expect, it } from 'vitest';
import { tapwireConfigSchema } from '../src/cli-config.js';

describe('examples/tapwire.yaml', () => {
  it('is a valid configuration (the README points newcomers at it)', () => {
    const file = fileURLToPath(new URL('../../../examples/tapwire.yaml', import.meta.url));
    const config = loadConfig(tapwireConfigSchema, { file, env: {} });
    expect(config.proxy.upstreams.map((u) => u.name)).toEqual(['my-api']);
    expect(config.proxy.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(config.ingest.admin.port).toBe(9465);
  });
});
