import {
  envWarnings,
  kafkaConfigSchema,
  keysAt,
  loadConfigOrExit,
  strictEnvPrefixes,
  telemetryConfigSchema,
  unknownEnvVars,
} from '@tapwire/config';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

// The whole configuration (as `tapwire` reads it) is a strict object; a separately run service
// reads a few sections of a shared environment through a plain one.
const whole = z.strictObject({ telemetry: telemetryConfigSchema, kafka: kafkaConfigSchema });
const someSections = z.object({ kafka: kafkaConfigSchema });

describe('unknownEnvVars', () => {
  it('names every TAPWIRE_* variable that is no setting, with the one it most likely meant', () => {
    const env = {
      TAPWIRE_KAFKA_BROKERS: 'k:9092',
      TAPWIRE_KAFKA_BROKER: 'k:9092',
      TAPWIRE_TELEMETRY_LOGLEVEL: 'warn',
      TAPWIRE_WHATEVER: '1',
      TAPWIRE_CONFIG: 'tapwire.yaml',
      PATH: '/usr/bin',
      TAPWIREX: '1',
    };
    expect(unknownEnvVars(whole, env, 'TAPWIRE', ['TAPWIRE_CONFIG'])).toEqual([
      { name: 'TAPWIRE_KAFKA_BROKER', suggestion: 'TAPWIRE_KAFKA_BROKERS' },
      { name: 'TAPWIRE_TELEMETRY_LOGLEVEL', suggestion: 'TAPWIRE_TELEMETRY_LOG_LEVEL' },
      { name: 'TAPWIRE_WHATEVER' },
    ]);
  });

  it('knows the settings of nested and optional sections (kafka.sasl, kafka.topics)', () => {
    const env = { TAPWIRE_KAFKA_SASL_MECHANISM: 'plain', TAPWIRE_KAFKA_TOPICS_PARTITIONS: '3' };
    expect(unknownEnvVars(whole, env, 'TAPWIRE')).toEqual([]);
  });

  it('judges a lower-case variable too', () => {
    expect(unknownEnvVars(whole, { tapwire_kafka_brokers: 'k:9092' }, 'TAPWIRE')).toEqual([
      { name: 'tapwire_kafka_brokers', suggestion: 'TAPWIRE_KAFKA_BROKERS' },
    ]);
  });

  it('leaves the sections a service does not read to the services that do', () => {
    const env = { TAPWIRE_CLICKHOUSE_URL: 'http://ch:8123', TAPWIRE_KAFKA_BROKERZ: 'k:9092' };
    expect(unknownEnvVars(someSections, env, 'TAPWIRE')).toEqual([
      { name: 'TAPWIRE_KAFKA_BROKERZ', suggestion: 'TAPWIRE_KAFKA_BROKERS' },
    ]);
    expect(strictEnvPrefixes(someSections)).toEqual([
      'TAPWIRE_KAFKA_',
      'TAPWIRE_KAFKA_SASL_',
      'TAPWIRE_KAFKA_TOPICS_',
    ]);
    expect(strictEnvPrefixes(whole)[0]).toBe('TAPWIRE_');
  });
});

describe('envWarnings', () => {
  it('says which variable is not a setting and what it may have meant; TAPWIRE_CONFIG is known', () => {
    expect(
      envWarnings(whole, {
        env: { TAPWIRE_KAFKA_BROKERSS: 'k:9092', TAPWIRE_CONFIG: '/dev/null', TAPWIRE_NOPE: '' },
      }),
    ).toEqual([
      'TAPWIRE_KAFKA_BROKERSS is not a Tapwire setting; did you mean TAPWIRE_KAFKA_BROKERS?',
      'TAPWIRE_NOPE is not a Tapwire setting',
    ]);
  });
});

describe('loadConfigOrExit', () => {
  it('warns about a mistyped variable on stderr and starts on the default', () => {
    let printed = '';
    const cfg = loadConfigOrExit(
      whole,
      { env: { TAPWIRE_TELEMETRY_LOG_LEVELL: 'debug' } },
      () => {
        throw new Error('must not exit');
      },
      (t) => {
        printed += t;
      },
    );
    expect(cfg.telemetry.logLevel).toBe('info');
    expect(printed).toBe(
      'tapwire: warning: TAPWIRE_TELEMETRY_LOG_LEVELL is not a Tapwire setting; did you mean TAPWIRE_TELEMETRY_LOG_LEVEL?\n',
    );
  });

  it('prints nothing when every variable is a setting', () => {
    let printed = '';
    loadConfigOrExit(whole, { env: { TAPWIRE_TELEMETRY_LOG_LEVEL: 'debug' } }, process.exit, (t) => {
      printed += t;
    });
    expect(printed).toBe('');
  });
});

describe('keysAt', () => {
  it('lists the keys an object accepts, through defaults, optionals and list items', () => {
    expect(keysAt(whole, ['kafka', 'topics'])).toEqual([
      'partitions',
      'replicationFactor',
      'retentionMs',
      'dlqRetentionMs',
    ]);
    expect(keysAt(whole, ['kafka', 'sasl'])).toEqual(['mechanism', 'username', 'password']);
    const withList = z.strictObject({ items: z.array(z.strictObject({ name: z.string() })).default([]) });
    expect(keysAt(withList, ['items', 3])).toEqual(['name']);
    expect(keysAt(whole, ['kafka', 'brokers'])).toEqual([]);
    expect(keysAt(whole, ['nothing', 'here'])).toEqual([]);
  });
});
