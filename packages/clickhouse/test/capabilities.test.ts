import { capabilitiesOf, knownCapabilities, type ServerCapabilities } from '@tapwire/clickhouse';
import { describe, expect, it } from 'vitest';

describe('capabilitiesOf', () => {
  // [version() as the server reports it, queryParams, ttl]
  it.each([
    ['18.16.1', false, false],
    ['19.6.2.11', false, false], // TTL arrived here, but not what the job sets with it
    ['19.10.1.5', false, false],
    ['19.11.3.11', true, false], // prepared statements ({name:Type} parameters)
    ['20.5.2.7', true, false],
    ['21.9.6.24', true, false],
    ['21.10.2.15', true, true], // materialize_ttl_recalculate_only
    ['22.3.20.29', true, true],
    ['24.8.14.39', true, true],
    ['25.8.1.5101', true, true],
    ['26.9.2.1', true, true],
    ['24.3.12.76.altinitystable', true, true],
    ['100.1.1.1', true, true],
  ])('%s: queryParams %s, ttl %s', (version, queryParams, ttl) => {
    expect(capabilitiesOf(version)).toEqual({ version, queryParams, ttl });
  });

  it.each(['', ' ', 'garbage', 'v24.8.1', '24', '24.', '.24.8', 'ClickHouse 24.8', '24.x'])(
    'an unparsable version %j gets none',
    (version) => {
      expect(capabilitiesOf(version)).toEqual({ version, queryParams: false, ttl: false });
    },
  );
});

describe('knownCapabilities', () => {
  const logs = () => {
    const lines: { level: string; obj: object; msg: string }[] = [];
    return {
      lines,
      info: (obj: object, msg: string) => lines.push({ level: 'info', obj, msg }),
      warn: (obj: object, msg: string) => lines.push({ level: 'warn', obj, msg }),
    };
  };
  const flush = () => new Promise((r) => setImmediate(r));

  it('asks nothing until current(), then logs the capabilities once', async () => {
    let asked = 0;
    const caps = capabilitiesOf('26.9.2.1');
    const logger = logs();
    const known = knownCapabilities(
      {
        capabilities: async () => {
          asked++;
          return caps;
        },
      },
      logger,
    );
    await flush();
    expect(asked).toBe(0);
    expect(known.current()).toBeUndefined();
    await flush();
    expect(known.current()).toEqual(caps);
    expect(known.current()).toEqual(caps);
    expect(asked).toBe(1);
    expect(logger.lines).toEqual([
      { level: 'info', obj: { clickhouse: caps }, msg: 'ClickHouse server version and capabilities' },
    ]);
  });

  it('asks again after a failure, warning once, until the server answers', async () => {
    let asked = 0;
    const logger = logs();
    const known = knownCapabilities(
      {
        capabilities: async (): Promise<ServerCapabilities> => {
          asked++;
          if (asked < 3) throw new Error('ECONNREFUSED');
          return capabilitiesOf('18.16.1');
        },
      },
      logger,
    );
    for (let i = 0; i < 3; i++) {
      expect(known.current()).toBeUndefined();
      await flush();
    }
    expect(known.current()).toEqual({ version: '18.16.1', queryParams: false, ttl: false });
    expect(asked).toBe(3);
    expect(logger.lines.map((l) => l.level)).toEqual(['warn', 'info']);
  });

  it('settles on undefined for a store that is not ClickHouse', async () => {
    let asked = 0;
    const known = knownCapabilities(
      {
        capabilities: async () => {
          asked++;
          return undefined;
        },
      },
      logs(),
    );
    known.current();
    await flush();
    expect(known.current()).toBeUndefined();
    expect(asked).toBe(1);
  });
});
