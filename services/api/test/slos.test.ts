import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { SloCountsQuery, Store } from '@tapwire/analytics';
import { hashToken } from '@tapwire/config';
import { createLogger } from '@tapwire/telemetry';
import { afterEach, describe, expect, it } from 'vitest';
import { type Api, apiConfigSchema, buildApi } from '../src/index.js';

const NOW = Date.UTC(2026, 10, 20, 12, 0, 0);
const HEAD = `route: { receiver: hook }
receivers:
  - name: hook
    webhook: { url: "http://127.0.0.1:9/x" }
`;
const slo = (name: string, extra = '') =>
  `  - name: ${name}\n    sli: { kind: availability }\n    objective: 99\n${extra}`;

/**
 * fakeStore answers SLO counts with 1000 requests and 1 bad per minute of every window (a 0.1 %
 * bad share: burn rate 0.1 against 99 %), recording each call and the SLOs it asked for.
 */
function fakeStore() {
  const calls: { method: string; scope: unknown; queries: SloCountsQuery[] }[] = [];
  const answer = (query: SloCountsQuery) => ({
    windows: query.windows.map((w) => {
      const minutes = (w.to - w.from) / 60;
      return { ...w, good: 999 * minutes, total: 1000 * minutes };
    }),
  });
  const store = {
    kind: 'duckdb',
    async sloCounts(scope: unknown, query: SloCountsQuery) {
      calls.push({ method: 'sloCounts', scope, queries: [query] });
      return answer(query);
    },
    async sloCountsMany(scope: unknown, queries: SloCountsQuery[]) {
      calls.push({ method: 'sloCountsMany', scope, queries });
      return queries.map(answer);
    },
    alerts: async () => ({ alerts: [] }),
    ping: async () => true,
    close: async () => {},
  } as unknown as Store;
  return { store, calls };
}

const dirs: string[] = [];
const apis: Api[] = [];
afterEach(async () => {
  await Promise.all(apis.splice(0).map((a) => a.app.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function captureLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { logger: createLogger({ name: 'api-unit', level: 'info', destination }), lines };
}

async function apiWith(store: Store, over: Record<string, unknown> = {}, logger = captureLogger().logger) {
  const api = await buildApi(
    { store, logger, now: () => NOW },
    apiConfigSchema.parse({
      tokens: [
        { name: 'acme', sha256: hashToken('acme-token'), tenant: 'acme' },
        { name: 'ops', sha256: hashToken('ops-token'), tenant: '*' },
      ],
      ...over,
    }),
  );
  apis.push(api);
  return api;
}

function alertingFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-api-slos-'));
  dirs.push(dir);
  const file = join(dir, 'alerting.yaml');
  writeFileSync(file, text);
  return file;
}

const names = async (api: Api, token = 'ops-token') => {
  const res = await api.app.inject({
    method: 'GET',
    url: '/v1/slos',
    headers: { authorization: `Bearer ${token}` },
  });
  expect(res.statusCode).toBe(200);
  return (res.json().slos as { name: string }[]).map((s) => s.name);
};

describe('SLO definitions', () => {
  it('without an alerting file (or with none on disk) there are no SLOs nor rules, and the Store is not asked', async () => {
    const { store, calls } = fakeStore();
    expect(await names(await apiWith(store))).toEqual([]);
    const missing = await apiWith(store, { alertingFile: '/nonexistent/alerting.yaml' });
    expect(await names(missing)).toEqual([]);
    // `tapwire start` points the API at the alerter's file, which need not exist: no rules either.
    const rules = await missing.app.inject({
      method: 'GET',
      url: '/v1/rules',
      headers: { authorization: 'Bearer ops-token' },
    });
    expect(rules.json()).toEqual({ groups: [] });
    expect(calls).toEqual([]);
  });

  it('a file that does not validate keeps the SLOs in use and logs the field; a fixed one is taken', async () => {
    const file = alertingFile(`${HEAD}slos:\n${slo('a')}`);
    const { logger, lines } = captureLogger();
    const api = await apiWith(fakeStore().store, { alertingFile: file }, logger);
    expect(await names(api)).toEqual(['a']);
    writeFileSync(file, `${HEAD}slos:\n${slo('a').replace('99', '100')}`);
    expect(api.slos.reload()).toBe(false);
    expect(await names(api)).toEqual(['a']);
    const rejected = lines.find(
      (l) => l.msg === 'alerting file rejected; the API keeps the SLOs and rules in use',
    );
    expect(rejected?.file).toBe(file);
    expect(String(rejected?.problem)).toContain('slos.0.objective');
    writeFileSync(file, `${HEAD}slos:\n${slo('a')}${slo('b')}`);
    expect(api.slos.reload()).toBe(true);
    expect(await names(api)).toEqual(['a', 'b']);
  });

  it('re-reads the file when it changes, as the alerter does', async () => {
    const file = alertingFile(`${HEAD}slos:\n${slo('a')}`);
    const api = await apiWith(fakeStore().store, { alertingFile: file });
    writeFileSync(file, `${HEAD}slos:\n${slo('c')}`);
    for (let i = 0; i < 50 && api.slos.list()[0]?.name !== 'c'; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(await names(api)).toEqual(['c']);
  });
});

describe('GET /v1/slos', () => {
  it('counts every SLO in one store call, and answers repeats within the minute from the cache', async () => {
    const list = Array.from({ length: 50 }, (_, i) => slo(`s${i}`)).join('');
    const { store, calls } = fakeStore();
    const api = await apiWith(store, { alertingFile: alertingFile(`${HEAD}slos:\n${list}`) });
    expect(await names(api)).toHaveLength(50);
    expect(calls.map((c) => [c.method, c.queries.length])).toEqual([['sloCountsMany', 50]]);
    // Every window ends at the minute; each SLO asks its window and 5m … 3d at once.
    const windows = calls[0]?.queries[0]?.windows ?? [];
    expect(windows.every((w) => w.to === NOW / 1000)).toBe(true);
    expect(windows.map((w) => (w.to - w.from) / 60)).toEqual(
      expect.arrayContaining([5, 30, 60, 360, 1440, 4320, 28 * 1440]),
    );
    expect(await names(api)).toHaveLength(50);
    expect(calls).toHaveLength(1);
  });

  it('a tenant token sees its SLOs and those naming no tenant, and counts in its tenant only', async () => {
    const file = alertingFile(
      `${HEAD}slos:\n${slo('open')}${slo('mine', '    selector: { tenant: acme }\n')}${slo('theirs', '    selector: { tenant: globex }\n')}`,
    );
    const { store, calls } = fakeStore();
    const api = await apiWith(store, { alertingFile: file });
    expect(await names(api, 'acme-token')).toEqual(['open', 'mine']);
    expect(await names(api, 'ops-token')).toEqual(['open', 'mine', 'theirs']);
    expect(calls.map((c) => [c.scope, c.queries.map((q) => q.selector.tenant ?? '*')])).toEqual([
      [{ tenant: 'acme' }, ['*', 'acme']],
      [{ tenant: null }, ['*', 'acme', 'globex']],
    ]);
  });

  it('is in the OpenAPI document with its parameters', async () => {
    const api = await apiWith(fakeStore().store);
    const doc = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(Object.keys(doc.paths['/v1/slos'])).toEqual(['get']);
    const detail = doc.paths['/v1/slos/{name}'].get;
    expect(detail.parameters.map((p: { name: string }) => p.name).sort()).toEqual([
      'burn_window',
      'from',
      'name',
      'step',
      'tenant',
      'to',
    ]);
    expect(Object.keys(detail.responses)).toContain('404');
    const item = doc.paths['/v1/slos'].get.responses['200'].content['application/json'].schema;
    expect(Object.keys(item.properties.slos.items.properties)).toEqual(
      expect.arrayContaining(['sli', 'budget', 'burn_rates', 'alerts', 'objective', 'window']),
    );
  });
});
