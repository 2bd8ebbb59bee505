import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GRAFANA_SQL } from '@tapwire/analytics';
import { type ClickHouse, createClickHouse, identifier, migrate, sql } from '@tapwire/clickhouse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARDS, renderDashboard } from '../../scripts/dashboards.js';
import {
  DASHBOARD_VARIABLE_SETTINGS,
  dashboardQueries,
  runDashboardQueries,
  seedDashboards,
} from '../support/dashboard-queries.js';
import { testClickHouseConfig, uniqueName } from '../support/infra.js';

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const NOW = Math.floor(Date.now() / 1000 / 60) * 60;
const WINDOW = { from: NOW - 3600, to: NOW };
let database: string;
let ch: ClickHouse;

beforeAll(async () => {
  database = uniqueName('tapwire_dash');
  await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, lockSettleMs: 200 });
  ch = createClickHouse(testClickHouseConfig(database));
  await seedDashboards(ch, WINDOW);
}, 120_000);

afterAll(async () => {
  await ch?.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
  await ch?.close();
});

describe('Grafana dashboards', () => {
  it('the committed JSON is what scripts/dashboards.ts generates (run `npm run dashboards`)', () => {
    for (const [file, d] of Object.entries(DASHBOARDS)) {
      const committed = readFileSync(
        fileURLToPath(new URL(`../../dashboards/${file}`, import.meta.url)),
        'utf8',
      );
      expect(committed, file).toBe(renderDashboard(d));
    }
  });

  it('every panel and variable query runs on ClickHouse with the macros expanded and returns rows', async () => {
    expect(dashboardQueries().length).toBeGreaterThanOrEqual(Object.keys(GRAFANA_SQL).length);
    const answers = await runDashboardQueries(ch, WINDOW);
    expect(answers).toHaveLength(dashboardQueries().length * DASHBOARD_VARIABLE_SETTINGS.length);
    for (const a of answers) expect(a.rows, `${a.where} with ${JSON.stringify(a.vars)}`).toBeGreaterThan(0);
  }, 120_000);
});
