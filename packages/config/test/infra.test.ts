import { ConfigError, DEFAULT_KAFKA_VERSION, infraConfigSchema, loadConfig } from '@tapwire/config';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

const schema = z.strictObject({ infra: infraConfigSchema });
const kafkaVersion = (env: Record<string, string>) => loadConfig(schema, { env }).infra.kafkaVersion;

describe('infra.kafkaVersion', () => {
  it('runs Kafka 4.4.0 when nothing is set', () => {
    expect(DEFAULT_KAFKA_VERSION).toBe('4.4.0');
    expect(kafkaVersion({})).toBe('4.4.0');
  });

  it('accepts any 4.x release and the 3.9.x line', () => {
    for (const v of ['4.0.1', '4.1.1', '4.4.0', '4.10.2', '3.9.0', '3.9.1'])
      expect(kafkaVersion({ TAPWIRE_INFRA_KAFKA_VERSION: v })).toBe(v);
  });

  it('refuses other versions, naming the field, where it came from and what is accepted', () => {
    for (const v of ['3.8.1', '2.8.2', '5.0.0', '4.0', '4.1.1-rc0', 'latest']) {
      let error: unknown;
      try {
        kafkaVersion({ TAPWIRE_INFRA_KAFKA_VERSION: v });
      } catch (err) {
        error = err;
      }
      expect(error, v).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues, v).toEqual([
        {
          path: 'infra.kafkaVersion',
          source: 'env TAPWIRE_INFRA_KAFKA_VERSION',
          message:
            'must be an Apache Kafka 4.x or 3.9.x release, such as 4.4.0 or 3.9.1 (older lines are not tested with Tapwire)',
        },
      ]);
    }
  });
});
