import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const PACKAGES: Record<string, string> = {
  schema: 'packages/schema',
  stream: 'packages/stream',
  config: 'packages/config',
  telemetry: 'packages/telemetry',
  otlp: 'packages/otlp',
  kafka: 'packages/kafka',
  log: 'packages/log',
  emission: 'packages/emission',
  duckdb: 'packages/duckdb',
  clickhouse: 'packages/clickhouse',
  analytics: 'packages/analytics',
  alerting: 'packages/alerting',
  infra: 'test/infra',
  proxy: 'services/proxy',
  'otlp-service': 'services/otlp',
  ingest: 'services/ingest',
  api: 'services/api',
  alerter: 'services/alerter',
};

// Tests import workspace packages from source, so `npm test` needs no build step.
/** alias maps each workspace package to its source; vitest.kafka-compat.config.ts uses it too. */
export const alias = {
  '@tapwire/proxy/config': here('./services/proxy/src/config.ts'),
  '@tapwire/otlp-service/config': here('./services/otlp/src/config.ts'),
  '@tapwire/ingest/config': here('./services/ingest/src/config.ts'),
  '@tapwire/api/config': here('./services/api/src/config.ts'),
  '@tapwire/alerter/config': here('./services/alerter/src/config.ts'),
  ...Object.fromEntries(
    Object.entries(PACKAGES).map(([name, dir]) => [`@tapwire/${name}`, here(`./${dir}/src/index.ts`)]),
  ),
};

/** integrationTest is how integration files run, here and in vitest.kafka-compat.config.ts. */
export const integrationTest = {
  globalSetup: ['test/integration/global-setup.ts'],
  testTimeout: 120_000,
  hookTimeout: 120_000,
  // Integration suites share one Kafka and one ClickHouse; running files one at a time keeps
  // a 2-core machine from timing out on broker rebalances.
  fileParallelism: false,
};

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: 'unit',
          include: ['packages/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'test/docs/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          ...integrationTest,
        },
      },
    ],
  },
});
