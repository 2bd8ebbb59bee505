import { createEventCodec } from '@tapwire/schema';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

// A two-version event defined here exercises the upgrade chain the real events will use.
const v1 = z.object({ v: z.literal(1), id: z.string(), latency: z.number() });
const v2 = z.object({ v: z.literal(2), id: z.string(), latency_ms: z.number(), unit: z.literal('ms') });
const v3 = z.object({ v: z.literal(3), id: z.string(), latency_ms: z.number(), tags: z.array(z.string()) });
type V3 = z.infer<typeof v3>;

const codec = createEventCodec<V3>({
  kind: 'demo',
  topic: 'demo.v1',
  currentVersion: 3,
  versions: { 1: v1, 2: v2, 3: v3 },
  upgrades: {
    1: (e) => ({ v: 2, id: e.id, latency_ms: e.latency, unit: 'ms' }),
    2: (e) => ({ v: 3, id: e.id, latency_ms: e.latency_ms, tags: [] }),
  },
});

describe('createEventCodec', () => {
  it('upgrades every older version to the current one', () => {
    expect(codec.decode('{"v":1,"id":"a","latency":5}')).toEqual({
      ok: true,
      event: { v: 3, id: 'a', latency_ms: 5, tags: [] },
    });
    expect(codec.decode('{"v":2,"id":"b","latency_ms":7,"unit":"ms"}')).toEqual({
      ok: true,
      event: { v: 3, id: 'b', latency_ms: 7, tags: [] },
    });
  });
  it('validates an old event against its own version before upgrading', () => {
    expect(codec.decode('{"v":1,"id":"a","latency":"slow"}')).toMatchObject({ ok: false, code: 'invalid' });
  });
  it('refuses a definition whose upgrade chain has a gap', () => {
    expect(() =>
      createEventCodec({
        kind: 'gap',
        topic: 't',
        currentVersion: 3,
        versions: { 1: v1, 3: v3 },
        upgrades: { 1: (e) => e },
      }),
    ).toThrow('event gap: no upgrade from version 2 to 3');
  });
});
