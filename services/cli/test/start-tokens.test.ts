import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashToken } from '@tapwire/config';
import { afterAll, describe, expect, it } from 'vitest';
import { startTokens } from '../src/start-tokens.js';

const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

function fresh(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-start-tokens-'));
  made.push(dir);
  return join(dir, 'data');
}

const API_TOKEN = {
  name: 'ops',
  sha256: hashToken('tw_ops'),
  tenant: '*' as const,
  scopes: ['read' as const],
};
const OTLP_TOKEN = { name: 'orders-api', sha256: hashToken('tw_orders'), tenant: 'shop' };

describe('the tokens tapwire start runs the API and the OTLP receiver with', () => {
  it('with api.tokens and otlp.tokens empty (the quick start): two local tokens, the API one only for the API, the OTLP one only for the receiver', () => {
    const dir = fresh();
    const t = startTokens({ api: { tokens: [] }, otlp: { tokens: [] } }, dir, false);
    const api = readFileSync(join(dir, 'api-token'), 'utf8').trim();
    const otlp = readFileSync(join(dir, 'otlp-token'), 'utf8').trim();
    expect(api).not.toBe(otlp);
    expect(t.localApi).toEqual({ token: api, file: join(dir, 'api-token'), created: true });
    expect(t.localOtlp).toEqual({ token: otlp, file: join(dir, 'otlp-token'), created: true });
    expect(t.api).toEqual([
      { name: 'local', sha256: hashToken(api), tenant: '*', scopes: ['read', 'admin'] },
    ]);
    expect(t.otlp).toEqual([{ name: 'local', sha256: hashToken(otlp), tenant: 'default' }]);
  });

  it('configured tokens are the only ones, each side on its own; the demo adds both local tokens to them', () => {
    const dir = fresh();
    const apiOnly = startTokens({ api: { tokens: [API_TOKEN] }, otlp: { tokens: [] } }, dir, false);
    expect(apiOnly.localApi).toBeUndefined();
    expect(apiOnly.api).toEqual([API_TOKEN]);
    expect(apiOnly.otlp).toEqual([
      { name: 'local', sha256: hashToken(apiOnly.localOtlp!.token), tenant: 'default' },
    ]);
    const otlpOnly = startTokens({ api: { tokens: [] }, otlp: { tokens: [OTLP_TOKEN] } }, dir, false);
    expect(otlpOnly.localOtlp).toBeUndefined();
    expect(otlpOnly.otlp).toEqual([OTLP_TOKEN]);
    const demo = startTokens({ api: { tokens: [API_TOKEN] }, otlp: { tokens: [OTLP_TOKEN] } }, dir, true);
    expect(demo.api.map((x) => x.name)).toEqual(['ops', 'local']);
    expect(demo.otlp.map((x) => x.name)).toEqual(['orders-api', 'local']);
    expect(demo.localApi?.token).toBe(otlpOnly.localApi?.token);
    expect(demo.localOtlp?.token).toBe(apiOnly.localOtlp?.token);
  });
});
