import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  clickhouseConfigSchema,
  configLeaves,
  envVarName,
  givenSections,
  kafkaConfigSchema,
  loadConfig,
  loadConfigOrExit,
  telemetryConfigSchema,
} from '@tapwire/config';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

const schema = z.strictObject({
  telemetry: telemetryConfigSchema,
  kafka: kafkaConfigSchema,
  clickhouse: clickhouseConfigSchema,
});

function tmpFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-config-'));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function issuesOf(fn: () => unknown): ConfigError['issues'] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('gives every default when nothing is set', () => {
    const cfg = loadConfig(schema, { env: {} });
    expect(cfg.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(cfg.kafka.topics).toEqual({
      partitions: 6,
      replicationFactor: 1,
      retentionMs: 604_800_000,
      dlqRetentionMs: 2_592_000_000,
    });
    expect(cfg.clickhouse).toEqual({
      url: 'http://127.0.0.1:8123',
      database: 'tapwire',
      username: 'default',
      password: '',
      requestTimeoutMs: 30_000,
      maxOpenConnections: 10,
    });
    expect(cfg.telemetry.logLevel).toBe('info');
    expect(cfg.telemetry.otlpEndpoint).toBe('');
  });

  it('reads a YAML file, then lets env vars override it, then overrides', () => {
    const file = tmpFile(
      'tapwire.yaml',
      'kafka:\n  brokers: [a:1, b:2]\n  topics:\n    partitions: 12\nclickhouse:\n  database: prod\n',
    );
    const cfg = loadConfig(schema, {
      file,
      env: { TAPWIRE_KAFKA_TOPICS_PARTITIONS: '3', TAPWIRE_CLICKHOUSE_URL: 'http://ch:8123' },
      overrides: { telemetry: { logLevel: 'debug' } },
    });
    expect(cfg.kafka.brokers).toEqual(['a:1', 'b:2']);
    expect(cfg.kafka.topics.partitions).toBe(3);
    expect(cfg.kafka.topics.replicationFactor).toBe(1);
    expect(cfg.clickhouse.database).toBe('prod');
    expect(cfg.clickhouse.url).toBe('http://ch:8123');
    expect(cfg.telemetry.logLevel).toBe('debug');
  });

  it('finds the file through TAPWIRE_CONFIG and reads JSON too', () => {
    const file = tmpFile('tapwire.json', JSON.stringify({ clickhouse: { database: 'fromjson' } }));
    expect(loadConfig(schema, { env: { TAPWIRE_CONFIG: file } }).clickhouse.database).toBe('fromjson');
  });

  it('splits comma-separated lists and coerces numbers and booleans from env', () => {
    const cfg = loadConfig(schema, {
      env: {
        TAPWIRE_KAFKA_BROKERS: 'k1:9092, k2:9092',
        TAPWIRE_KAFKA_SSL: 'true',
        TAPWIRE_CLICKHOUSE_MAX_OPEN_CONNECTIONS: '4',
      },
    });
    expect(cfg.kafka.brokers).toEqual(['k1:9092', 'k2:9092']);
    expect(cfg.kafka.ssl).toBe(true);
    expect(cfg.clickhouse.maxOpenConnections).toBe(4);
  });

  it('reports every bad field at once, naming the key, the reason and the source', () => {
    const file = tmpFile(
      'bad.yaml',
      'kafka:\n  topics:\n    partitions: 0\n  brokerz: [x]\nclickhouse:\n  database: "1bad"\n',
    );
    const issues = issuesOf(() =>
      loadConfig(schema, {
        file,
        env: { TAPWIRE_KAFKA_BROKERS: 'nohostport', TAPWIRE_CLICKHOUSE_REQUEST_TIMEOUT_MS: 'soon' },
      }),
    );
    const byPath = Object.fromEntries(issues.map((i) => [i.path, i]));
    expect(Object.keys(byPath).sort()).toEqual([
      'clickhouse.database',
      'clickhouse.requestTimeoutMs',
      'kafka',
      'kafka.brokers.0',
      'kafka.topics.partitions',
    ]);
    expect(byPath['kafka.brokers.0']).toEqual({
      path: 'kafka.brokers.0',
      message: 'must be host:port',
      source: 'env TAPWIRE_KAFKA_BROKERS',
    });
    expect(byPath['clickhouse.requestTimeoutMs']?.source).toBe('env TAPWIRE_CLICKHOUSE_REQUEST_TIMEOUT_MS');
    expect(byPath.kafka?.message).toBe('unknown key brokerz (did you mean brokers?)');
    expect(byPath['clickhouse.database']?.message).toBe(
      'must be letters, digits or "_", not starting with a digit',
    );
    expect(byPath['kafka.topics.partitions']?.source).toBe(file);
  });

  it('suggests the key an unknown one most likely meant, at any depth, and lists keys it cannot place', () => {
    const file = tmpFile(
      'typos.yaml',
      'kafka:\n  topics:\n    partitons: 3\n    replication_factor: 2\n  colour: blue\nclickhous:\n  url: http://ch:8123\n',
    );
    const issues = issuesOf(() => loadConfig(schema, { file, env: {} }));
    expect(issues).toEqual([
      {
        path: 'kafka.topics',
        message:
          'unknown keys partitons (did you mean partitions?), replication_factor (did you mean replicationFactor?)',
        source: file,
      },
      { path: 'kafka', message: 'unknown key colour', source: file },
      { path: '(root)', message: 'unknown key clickhous (did you mean clickhouse?)', source: file },
    ]);
  });

  it('names an unreadable or unparsable file', () => {
    expect(
      issuesOf(() => loadConfig(schema, { file: '/nonexistent/tapwire.yaml', env: {} }))[0]?.message,
    ).toMatch(/^cannot read \/nonexistent\/tapwire.yaml: /);
    const file = tmpFile('broken.yaml', 'kafka: [unclosed\n');
    expect(issuesOf(() => loadConfig(schema, { file, env: {} }))[0]?.message).toMatch(/^cannot parse /);
    const list = tmpFile('list.yaml', '- a\n- b\n');
    expect(issuesOf(() => loadConfig(schema, { file: list, env: {} }))[0]?.message).toBe(
      `${list} must hold a mapping at the top level`,
    );
  });
});

describe('loadConfigOrExit', () => {
  it('exits with code 2 and prints every bad field', () => {
    let printed = '';
    let code: number | undefined;
    const exit = ((c: number) => {
      code = c;
      throw new Error('exited');
    }) as (c: number) => never;
    expect(() =>
      loadConfigOrExit(
        schema,
        { env: { TAPWIRE_TELEMETRY_LOG_LEVEL: 'loud', TAPWIRE_KAFKA_TOPICS_REPLICATION_FACTOR: '0' } },
        exit,
        (t) => {
          printed += t;
        },
      ),
    ).toThrow('exited');
    expect(code).toBe(2);
    expect(printed).toContain('tapwire: invalid configuration:\n');
    expect(printed).toContain('  - telemetry.logLevel (from env TAPWIRE_TELEMETRY_LOG_LEVEL): ');
    expect(printed).toContain(
      '  - kafka.topics.replicationFactor (from env TAPWIRE_KAFKA_TOPICS_REPLICATION_FACTOR): ',
    );
  });
});

describe('configLeaves', () => {
  it('lists every key with its env var, default and description', () => {
    const leaves = configLeaves(schema);
    const partitions = leaves.find((l) => l.path.join('.') === 'kafka.topics.partitions');
    expect(partitions).toMatchObject({
      envVar: 'TAPWIRE_KAFKA_TOPICS_PARTITIONS',
      kind: 'number',
      defaultValue: 6,
    });
    expect(partitions?.description).toMatch(/^Partitions of each event topic/);
    for (const leaf of leaves) expect(leaf.description, leaf.path.join('.')).toBeTruthy();
    expect(envVarName('TAPWIRE', ['clickhouse', 'maxOpenConnections'])).toBe(
      'TAPWIRE_CLICKHOUSE_MAX_OPEN_CONNECTIONS',
    );
  });
});

describe('givenSections', () => {
  it('names the sections a file, the environment or overrides set, not the ones left at defaults', () => {
    const file = tmpFile('t.yaml', 'telemetry:\n  logLevel: warn\n');
    expect([...givenSections(schema, { env: {}, file })]).toEqual(['telemetry']);
    expect([...givenSections(schema, { env: { TAPWIRE_KAFKA_BROKERS: 'k:9092' } })]).toEqual(['kafka']);
    expect([...givenSections(schema, { env: {}, overrides: { clickhouse: { database: 'x' } } })]).toEqual([
      'clickhouse',
    ]);
    expect([...givenSections(schema, { env: { UNRELATED: '1' } })]).toEqual([]);
  });
});
