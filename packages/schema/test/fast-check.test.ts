import { isDeepStrictEqual } from 'node:util';
import {
  accessLogCodec,
  alertStateCodec,
  dlqCodec,
  type EventCodec,
  LIMITS,
  saturationCodec,
  spanCodec,
} from '@tapwire/schema';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  exampleAccessLog,
  exampleAlertState,
  exampleDlq,
  exampleSaturation,
  exampleSpan,
} from '../../../test/support/events.js';
import { compileAccepts } from '../src/fast-check.js';

// Values every field is replaced with: wrong types, bounds of every limit, patterns' near misses.
const lengths = [0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 249, 250, 256, 257, 512, 513];
const PROBES: unknown[] = [
  undefined,
  null,
  true,
  0,
  -0,
  -1,
  1,
  1.5,
  -1.5,
  999,
  1000,
  1024,
  1025,
  3_600_000,
  3_600_001,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 2,
  Number.POSITIVE_INFINITY,
  Number.NaN,
  '',
  ' ',
  '0'.repeat(16),
  '0'.repeat(32),
  'abcdef0123456789',
  'ABCDEF0123456789',
  'abcdef0123456789abcdef0123456789',
  'abcdef0123456789abcdef012345678g',
  '12345678901234567890',
  '123456789012345678901',
  'a-b_c.d',
  '.abc',
  'dGFwd2lyZQ==',
  'not base64!',
  'GET',
  'SERVER',
  'firing',
  ...lengths.map((n) => 'a'.repeat(n)),
  'a'.repeat(LIMITS.reasonChars),
  'a'.repeat(LIMITS.reasonChars + 1),
  [],
  ['a'],
  {},
  { a: 'b' },
  { '': 'b' },
  { a: 1 },
  Object.fromEntries(Array.from({ length: LIMITS.attributeKeys }, (_, i) => [`k${i}`, 'v'])),
  Object.fromEntries(Array.from({ length: LIMITS.attributeKeys + 1 }, (_, i) => [`k${i}`, 'v'])),
];

/** variants returns `value` with each field (at any depth) replaced by each probe, deleted, or joined by an unknown key. */
function variants(value: unknown): unknown[] {
  const out: unknown[] = [];
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      for (const v of variants(item)) out.push(value.map((x, j) => (j === i ? v : x)));
    });
    out.push([...value, ...value]);
  } else if (typeof value === 'object' && value !== null) {
    const obj = value as Record<string, unknown>;
    for (const key of Object.keys(obj)) {
      for (const probe of PROBES) out.push({ ...obj, [key]: probe });
      const { [key]: _, ...without } = obj;
      out.push(without);
      for (const v of variants(obj[key])) out.push({ ...obj, [key]: v });
    }
    out.push({ ...obj, unknown_field: 'x' });
  }
  return out;
}

function disagreements(codec: EventCodec<unknown>, example: unknown) {
  const schema = codec.definition.versions[codec.definition.currentVersion]! as z.ZodType;
  const accepts = compileAccepts(schema);
  if (!accepts) throw new Error('no fast path');
  const wrong: { value: unknown; fast: boolean; zod: string }[] = [];
  let accepted = 0;
  const all = [example, ...variants(example)];
  for (const value of all) {
    const result = schema.safeParse(value);
    const unchanged = result.success && isDeepStrictEqual(result.data, value);
    const fast = accepts(value);
    if (fast) accepted++;
    if (fast !== unchanged)
      wrong.push({ value, fast, zod: result.success ? 'changed it' : z.prettifyError(result.error) });
  }
  return { wrong, accepted, total: all.length };
}

describe('compileAccepts: the fast path in front of zod', () => {
  const cases = [
    ['span', spanCodec, exampleSpan({ parent_span_id: '0123456789abcdef' })],
    [
      'span with resource, events and links',
      spanCodec,
      exampleSpan({
        resource: { 'host.name': 'web-1' },
        scope_name: 'io.opentelemetry.http',
        events: [{ time: 5, name: 'retry', attributes: { attempt: '2' } }],
        links: [{ trace_id: 'ab'.repeat(16), span_id: 'cd'.repeat(8), attributes: {} }],
      }),
    ],
    ['access log', accessLogCodec, exampleAccessLog()],
    ['saturation', saturationCodec, exampleSaturation()],
    ['dlq', dlqCodec, exampleDlq()],
    ['alert state', alertStateCodec, exampleAlertState({ active_at: 1, fired_at: null, receiver: 'pager' })],
  ] as const;

  it.each(cases)('accepts exactly what zod passes unchanged: %s', (_name, codec, example) => {
    const { wrong, accepted, total } = disagreements(codec as EventCodec<unknown>, example);
    expect(wrong).toEqual([]);
    // The example and the variants that stay valid take the fast path; the rest do not.
    expect(accepted).toBeGreaterThan(1);
    expect(accepted).toBeLessThan(total);
  });

  it('sends a value zod would change to zod: a missing default, an unknown key', () => {
    const { status_message: _, ...noMessage } = exampleSpan();
    expect(spanCodec.decode(JSON.stringify(noMessage))).toMatchObject({
      ok: true,
      event: { status_message: '' },
    });
    const extra = spanCodec.decode(JSON.stringify({ ...exampleSpan(), extra: 1 }));
    expect(extra.ok && 'extra' in extra.event).toBe(false);
  });

  it('leaves the wording of errors to zod', () => {
    const bad = spanCodec.decode(JSON.stringify(exampleSpan({ trace_id: '0'.repeat(32) })));
    expect(bad).toEqual({ ok: false, code: 'invalid', reason: 'trace_id: must not be all zeros' });
  });

  it('declines schemas with features it does not know', () => {
    expect(compileAccepts(z.string().email())).toBeUndefined();
    expect(compileAccepts(z.object({ a: z.string() }).catchall(z.number()))).toBeUndefined();
    expect(compileAccepts(z.string().transform((s) => s.length))).toBeUndefined();
    expect(compileAccepts(z.number().int().max(3))?.(3)).toBe(true);
  });
});
