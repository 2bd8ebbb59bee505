import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadAlertingFile } from '@tapwire/alerting';
import { DEFAULT_KAFKA_VERSION, loadConfig } from '@tapwire/config';
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
  volumes?: string[];
  ports?: string[];
}

describe('deployment files', () => {
  const compose = parse(readFileSync(root('docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, ComposeService>;
  };
  const tapwire = ['proxy', 'ingest', 'api', 'alerter', 'demo', 'otlp'];

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
    // Each service's admin port is what the image's health check asks.
    expect(tapwire.slice(0, 4).map((n) => compose.services[n]?.environment?.HEALTH_PORT)).toEqual([
      '9464',
      '9465',
      '9466',
      '9467',
    ]);
    expect(compose.services.otlp?.environment?.HEALTH_PORT).toBe('9468');
    expect(compose.services.otlp?.ports).toEqual(['4317:4317', '4318:4318']);
  });

  it('docker-compose: current images — Kafka as `tapwire infra` runs it, ClickHouse LTS, Grafana 12 with the ClickHouse plugin', () => {
    const { kafka, clickhouse, grafana } = compose.services;
    expect(kafka?.image).toBe(`apache/kafka:${DEFAULT_KAFKA_VERSION}`);
    // The broker's log dir is the one on the named volume, not the image's /tmp default.
    expect(kafka?.environment?.KAFKA_LOG_DIRS).toBe('/var/lib/kafka/data');
    expect(kafka?.volumes).toEqual(['kafka-data:/var/lib/kafka/data']);
    expect(clickhouse?.image).toBe('clickhouse/clickhouse-server:25.8');
    // Tapwire and Grafana connect as the passwordless default user, which the image otherwise
    // confines to the container; so the host sees the port on loopback only.
    expect(clickhouse?.environment?.CLICKHOUSE_SKIP_USER_SETUP).toBe('1');
    expect(clickhouse?.ports).toEqual(['127.0.0.1:8123:8123']);
    expect(grafana?.image).toMatch(/^grafana\/grafana:12\.\d+\.\d+$/);
    expect(grafana?.environment?.GF_INSTALL_PLUGINS).toBeUndefined();
    const datasources = parse(
      readFileSync(root('dashboards/provisioning/datasources/clickhouse.yaml'), 'utf8'),
    ) as { datasources: { type: string; uid: string }[] };
    // The provisioned datasource's plugin is installed before Grafana starts.
    expect(grafana?.environment?.GF_PLUGINS_PREINSTALL_SYNC).toBe(datasources.datasources[0]?.type);
    expect(datasources.datasources.map((d) => [d.type, d.uid])).toEqual([
      ['grafana-clickhouse-datasource', 'tapwire-clickhouse'],
    ]);
    expect(grafana?.volumes).toEqual([
      './dashboards/provisioning:/etc/grafana/provisioning:ro',
      './dashboards:/var/lib/grafana/dashboards/tapwire:ro',
    ]);
  });

  it('the deployment configuration and alert rules are valid', () => {
    const config = loadConfig(tapwireConfigSchema, { file: root('deploy/tapwire.yaml'), env: {} });
    expect([
      config.proxy.admin.port,
      config.ingest.admin.port,
      config.api.admin.port,
      config.alerter.admin.port,
      config.otlp.admin.port,
    ]).toEqual([9464, 9465, 9466, 9467, 9468]);
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
