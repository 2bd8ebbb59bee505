import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadAlertingFile } from '@tapwire/alerting';
import { loadConfig } from '@tapwire/config';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { tapwireConfigSchema } from '../src/cli-config.js';

const root = (p: string) => fileURLToPath(new URL(`../../../${p}`, import.meta.url));

interface ComposeService {
  image?: string;
  build?: string;
  command?: string[];
  entrypoint?: string[];
  profiles?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  environment?: Record<string, string>;
}

describe('deployment files', () => {
  const compose = parse(readFileSync(root('docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, ComposeService>;
  };
  const tapwire = ['proxy', 'ingest', 'api', 'alerter', 'demo'];

  it('docker-compose: every Tapwire service runs from the one image, after topics and migrations ran once', () => {
    for (const name of [...tapwire, 'setup']) {
      const s = compose.services[name];
      expect(s?.image, name).toBe('tapwire:local');
      expect(s?.build, name).toBe('.');
    }
    for (const name of tapwire)
      expect(compose.services[name]?.depends_on?.setup?.condition, name).toBe(
        'service_completed_successfully',
      );
    expect(compose.services.setup?.entrypoint?.join(' ')).toContain(
      'topics && node services/cli/dist/main.js migrate',
    );
    expect(compose.services.demo?.profiles).toEqual(['demo']);
    expect(compose.services.kafka?.image).toMatch(/^apache\/kafka:3\.9\./);
    expect(compose.services.clickhouse?.image).toMatch(/^clickhouse\/clickhouse-server:24\.8/);
    expect(compose.services.grafana?.environment?.GF_INSTALL_PLUGINS).toBe('grafana-clickhouse-datasource');
    // Each service's admin port is what the image's health check asks.
    expect(tapwire.slice(0, 4).map((n) => compose.services[n]?.environment?.HEALTH_PORT)).toEqual([
      '9464',
      '9465',
      '9466',
      '9467',
    ]);
  });

  it('the deployment configuration and alert rules are valid', () => {
    const config = loadConfig(tapwireConfigSchema, { file: root('deploy/tapwire.yaml'), env: {} });
    expect([
      config.proxy.admin.port,
      config.ingest.admin.port,
      config.api.admin.port,
      config.alerter.admin.port,
    ]).toEqual([9464, 9465, 9466, 9467]);
    expect(config.kafka.brokers).toEqual(['kafka:9092']);
    expect(loadAlertingFile(root('deploy/alerting.yaml')).groups[0]?.rules).toHaveLength(2);
  });

  it('Dockerfile: multi-stage, production dependencies only, non-root, with a health check', () => {
    const dockerfile = readFileSync(root('Dockerfile'), 'utf8');
    expect(dockerfile.match(/^FROM /gm)).toHaveLength(3);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK /m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "services\/cli\/dist\/main.js"\]$/m);
  });
});
