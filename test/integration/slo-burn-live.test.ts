import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alerterServiceConfigSchema, type RunningAlerter, runAlerterService } from '@tapwire/alerter';
import { burnRate } from '@tapwire/alerting';
import { createClickHouseStore, createDuckDbStore } from '@tapwire/analytics';
import { type ClickHouse, createClickHouse, identifier, migrate, sql } from '@tapwire/clickhouse';
import { type DuckDb, openDuckDb } from '@tapwire/duckdb';
import { type FileLog, fileLogSource, openFileLog } from '@tapwire/log';
import { createLogger } from '@tapwire/telemetry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertmanagerV4Schema } from '../support/alert-formats.js';
import { accessLogRow } from '../support/analytics-seed.js';
import { silentLogger, testClickHouseConfig, testKafkaConfig, uniqueName } from '../support/infra.js';
import { startReceiver, type TestReceiver } from '../support/receiver.js';
import { freePort } from '../support/upstream.js';

/**
 * Live burn-rate alerting: the real alerter service (its own timers, on DuckDB and on ClickHouse)
 * evaluates one SLO per service every 2 s with a page at 14.4 over 2m and 1m, while traffic is
 * written second by second through the stores' insert path. `fast` starts failing every request
 * 20 s before a minute boundary M: at M its 1m window burns 100·20/60 ≈ 33 and its 2m window
 * 100·20/120 ≈ 16.7, both above 14.4, so it must page at M (plus the query offset) within one
 * evaluation interval; it stops failing 5 s after M, so at M + 1m its 1m window burns 8.3 and the
 * page resolves (the 2m window still burns 20.8). `slow` fails over the same seconds but starts
 * 15 s before M: its 2m window burns 12.5 at M and 16.7 at M + 1m, when its 1m window burns 8.3,
 * so it never pages.
 */

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const logger = createLogger({ name: 'slo-burn-live-it', level: 'silent' });
const FACTOR = 14.4;
const INTERVAL_MS = 2000;
// Windows end this long before the evaluation: a second's rows are written within ~0.3 s of its end.
const OFFSET_MS = 2000;
const PER_SECOND = 10;
// Evaluation ticks are timers: allow them this much lateness on a busy machine.
const JITTER_MS = 1500;

type StoreName = 'duckdb' | 'clickhouse';

/** Burn is the seconds [from, to) in which every request of a service fails. */
interface Burn {
  readonly from: number;
  readonly to: number;
}

let dir: string;
let database: string;
let ch: ClickHouse;
let duck: DuckDb;
let fileLog: FileLog;
let hook: TestReceiver;
const running: RunningAlerter[] = [];
const burns: Record<string, Burn> = {};
/** The first second of traffic; every second from it on holds PER_SECOND requests per service. */
let firstSecond = 0;
let writtenUpTo = 0;
let writer: NodeJS.Timeout | undefined;
let writing: Promise<void> = Promise.resolve();
let offset = 0;

/** badAt is how many of a service's requests in one second fail. */
function badAt(service: string, second: number): number {
  const b = burns[service];
  return b && second >= b.from && second < b.to ? PER_SECOND : 0;
}

function rowsOf(second: number): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (const service of ['fast', 'slow']) {
    const bad = badAt(service, second);
    for (let i = 0; i < PER_SECOND; i++) {
      const row = accessLogRow(
        {
          tenant: 'default',
          tsUs: second * 1_000_000 + i * 100_000,
          id: `${service}-${second}-${i}`,
          traceId: `${second.toString(16)}${i}`.padStart(32, 'a'),
          service,
          route: '/live',
          method: 'GET',
          status: i < bad ? 500 : 200,
          durationMs: 12,
          consumer: '',
          bytesIn: 0,
          bytesOut: 10,
          errorKind: i < bad ? 'upstream_error' : 'none',
        },
        offset++,
      );
      rows.push({ ...row, ts: second });
    }
  }
  return rows;
}

/** writeUpTo writes every whole second before `end` (epoch seconds) not yet written, to both stores. */
async function writeUpTo(end: number): Promise<void> {
  if (end <= writtenUpTo) return;
  const rows: Record<string, unknown>[] = [];
  for (let s = writtenUpTo; s < end; s++) rows.push(...rowsOf(s));
  writtenUpTo = end;
  await Promise.all([
    ch.insert('access_logs', rows),
    duck.insertJsonLines(
      'access_logs',
      rows.map((r) => JSON.stringify(r)),
    ),
  ]);
}

/** burnAt is what the math says: the service's burn rate over [end − windowS, end) from the traffic's schedule. */
function burnAt(service: string, end: number, windowS: number): number {
  let bad = 0;
  let total = 0;
  for (let s = Math.max(end - windowS, firstSecond); s < end; s++) {
    total += PER_SECOND;
    bad += badAt(service, s);
  }
  return burnRate(total - bad, total, 99);
}

/** pages says whether the page fires for windows ending at `end`: both the 2m and 1m windows above the factor. */
const pages = (service: string, end: number) =>
  burnAt(service, end, 120) > FACTOR && burnAt(service, end, 60) > FACTOR;

const sleepUntil = async (ms: number) => {
  while (Date.now() < ms) await new Promise((r) => setTimeout(r, Math.min(200, ms - Date.now())));
};

/** alertingYaml is the alerting file of one store's alerter: two SLOs, a page at 14.4 over 2m and 1m. */
function alertingYaml(receiver: StoreName): string {
  const slo = (service: string) =>
    `  - name: ${service}\n    selector: { service: ${service} }\n    sli: { kind: availability }\n    objective: 99\n    window: 1h\n`;
  return `slo_defaults:
  interval: ${INTERVAL_MS / 1000}s
  query_offset: ${OFFSET_MS / 1000}s
  burn_rate_alerts:
    page: { windows: [ { long: 2m, short: 1m, factor: ${FACTOR} } ] }
    ticket: { windows: [] }
slos:
${slo('fast')}${slo('slow')}route: { receiver: ${receiver}, group_by: [alertname, slo], group_wait: 0s, group_interval: 1s, repeat_interval: 1h }
receivers:
  - name: ${receiver}
    webhook: { url: "${hook.url}/${receiver}" }
`;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tapwire-slo-live-'));
  database = uniqueName('tapwire_slo_live');
  await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, logger: silentLogger, lockSettleMs: 200 });
  ch = createClickHouse(testClickHouseConfig(database));
  duck = await openDuckDb({ path: join(dir, 'tapwire.duckdb') });
  fileLog = await openFileLog({ dir: join(dir, 'log') });
  hook = await startReceiver({ status: 200, body: '' });
}, 120_000);

afterAll(async () => {
  clearInterval(writer);
  await writing.catch(() => {});
  for (const r of running) await r.stop().catch(() => {});
  await ch?.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`).catch(() => {});
  await ch?.close();
  await duck?.close();
  await fileLog?.close();
  await hook?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('burn-rate alerts, live', () => {
  it('page within one evaluation interval of the minute the windows cross, and resolve when the burn stops', async () => {
    // M: the first minute boundary at least 25 s away, so both burns start in the future.
    const start = Math.ceil(Date.now() / 1000);
    const m = Math.ceil((start + 25) / 60) * 60;
    burns.fast = { from: m - 20, to: m + 5 };
    burns.slow = { from: m - 15, to: m + 5 };
    // Three minutes of history before now, then the writer keeps up with the clock.
    firstSecond = m - 240;
    writtenUpTo = firstSecond;
    await writeUpTo(Math.floor(Date.now() / 1000));
    writer = setInterval(() => {
      writing = writing.then(() => writeUpTo(Math.floor(Date.now() / 1000)));
    }, 250);

    // Each store gets its own alerter service, receiver path and alert-state topics.
    const stores: Record<StoreName, () => ReturnType<typeof createDuckDbStore>> = {
      duckdb: () => createDuckDbStore(duck, { maxExecutionTimeS: 20, maxResultRows: 100_000 }),
      clickhouse: () =>
        createClickHouseStore(createClickHouse(testClickHouseConfig(database)), {
          maxExecutionTimeS: 20,
          maxResultRows: 100_000,
        }),
    };
    for (const name of ['duckdb', 'clickhouse'] as const) {
      const file = join(dir, `alerting-${name}.yaml`);
      writeFileSync(file, alertingYaml(name));
      running.push(
        await runAlerterService(
          alerterServiceConfigSchema.parse({
            alerter: {
              rulesFile: file,
              topicPrefix: `${name}.`,
              admin: { port: await freePort() },
              dispatchTickMs: 200,
              retry: { maxAttempts: 2, initialBackoffMs: 10, maxBackoffMs: 20 },
            },
            kafka: testKafkaConfig(),
            clickhouse: testClickHouseConfig(database),
            telemetry: { logLevel: 'silent' },
          }),
          { log: fileLogSource(fileLog, logger), store: stores[name]() },
        ),
      );
    }

    // The math, from the rows as scheduled: fast pages at M and not before, slow at no minute.
    const crossing = (service: string) => [m - 60, m, m + 60].find((end) => pages(service, end));
    const messages = (name: StoreName) =>
      hook.requests
        .filter((r) => r.path === `/${name}`)
        .map((r) => ({ at: r.at, body: alertmanagerV4Schema.parse(JSON.parse(r.body)) }));
    const firingOf = (name: StoreName, slo: string) =>
      messages(name).find((x) => x.body.status === 'firing' && x.body.groupLabels.slo === slo);
    const resolvedOf = (name: StoreName, slo: string) =>
      messages(name).find((x) => x.body.status === 'resolved' && x.body.groupLabels.slo === slo);

    // Wait for both fast pages (at most an interval, a dispatch tick and some lateness past M).
    const due = m * 1000 + OFFSET_MS;
    await sleepUntil(due + INTERVAL_MS + JITTER_MS + 1000);
    expect(crossing('fast')).toBe(m);
    expect(burnAt('fast', m, 60)).toBeCloseTo(100 / 3, 9);
    expect(burnAt('fast', m, 120)).toBeCloseTo(100 / 6, 9);
    expect(burnAt('slow', m, 120)).toBe(12.5);
    expect(crossing('slow')).toBeUndefined();
    expect(burnAt('fast', m - 60, 60)).toBe(0);
    for (const name of ['duckdb', 'clickhouse'] as const) {
      const fired = firingOf(name, 'fast');
      expect(fired, `${name}: fast paged`).toBeDefined();
      const startsAt = Date.parse(fired?.body.alerts[0]?.startsAt ?? '');
      // Fired at the first evaluation whose windows end at M: within one interval of M + offset.
      expect(startsAt, name).toBeGreaterThanOrEqual(due);
      expect(startsAt - due, name).toBeLessThan(INTERVAL_MS + JITTER_MS);
      expect(fired?.body.alerts[0]?.labels).toMatchObject({
        alertname: 'SLOBurnRatePage',
        slo: 'fast',
        long_window: '2m',
        short_window: '1m',
      });
      // Nothing reached the receiver before the windows crossed.
      expect(messages(name).filter((x) => x.at < due)).toEqual([]);
    }

    // Resolve: at M + 60 the 1m window holds only the 5 s fast failed after M.
    const resolveDue = (m + 60) * 1000 + OFFSET_MS;
    await sleepUntil(resolveDue + INTERVAL_MS + JITTER_MS + 1000);
    expect(pages('fast', m + 60)).toBe(false);
    expect(pages('slow', m + 60)).toBe(false);
    expect(burnAt('fast', m + 60, 120)).toBeGreaterThan(FACTOR);
    for (const name of ['duckdb', 'clickhouse'] as const) {
      const resolved = resolvedOf(name, 'fast');
      expect(resolved, `${name}: fast resolved`).toBeDefined();
      const endsAt = Date.parse(resolved?.body.alerts[0]?.endsAt ?? '');
      expect(endsAt, name).toBeGreaterThanOrEqual(resolveDue);
      expect(endsAt - resolveDue, name).toBeLessThan(INTERVAL_MS + JITTER_MS);
      // slow never paged: its 2m window stayed at or below 14.4 at every minute.
      expect(messages(name).filter((x) => x.body.groupLabels.slo === 'slow')).toEqual([]);
      expect(messages(name).map((x) => `${x.body.groupLabels.slo}:${x.body.status}`)).toEqual([
        'fast:firing',
        'fast:resolved',
      ]);
    }
  }, 240_000);
});
