import { describe, expect, it } from 'vitest';
import { latencyEdge, planSloRead, SLO_FACETS, sloCountsQuerySchema, sloSource } from '../src/index.js';

const H = 1_795_600_800; // a whole hour (2026-11-26 08:00 UTC)
const availability = { kind: 'availability' as const };

describe('planSloRead', () => {
  it('cuts a window into raw seconds, whole minutes and whole hours, each piece once', () => {
    const q = sloCountsQuerySchema.parse({
      selector: {},
      sli: availability,
      windows: [{ from: H - 3600 + 17, to: H + 3600 + 125 }],
    });
    const plan = planSloRead(q);
    expect(plan.facet).toBe(SLO_FACETS.status);
    expect(plan.pieces).toEqual([
      [
        { level: 'raw', from: H - 3600 + 17, to: H - 3600 + 60 },
        { level: 'rollup_1m', from: H - 3600 + 60, to: H },
        { level: 'rollup_1h', from: H, to: H + 3600 },
        { level: 'rollup_1m', from: H + 3600, to: H + 3600 + 120 },
        { level: 'raw', from: H + 3600 + 120, to: H + 3600 + 125 },
      ],
    ]);
  });

  it('reads each level once over the union of the pieces the windows need from it', () => {
    const now = H + 6 * 3600 + 61;
    const q = sloCountsQuerySchema.parse({
      selector: { service: 'shop' },
      sli: availability,
      windows: [300, 1800, 3600, 6 * 3600].map((s) => ({ from: now - s, to: now })),
    });
    const plan = planSloRead(q);
    const at = (level: string, from: number, to: number) => ({ level, from: H + from, to: H + to });
    const range = (from: number, to: number) => ({ from: H + from, to: H + to });
    // now is H + 21661: every window ends one second into a minute.
    expect(plan.reads).toEqual([
      { level: 'rollup_1h', ranges: [range(3600, 21600)] },
      { level: 'rollup_1m', ranges: [range(120, 3600), range(18120, 21660)] },
      {
        level: 'raw',
        ranges: [
          range(61, 120),
          range(18061, 18120),
          range(19861, 19920),
          range(21361, 21420),
          range(21660, 21661),
        ],
      },
    ]);
    expect(plan.pieces).toEqual([
      [at('raw', 21361, 21420), at('rollup_1m', 21420, 21660), at('raw', 21660, 21661)],
      [at('raw', 19861, 19920), at('rollup_1m', 19920, 21660), at('raw', 21660, 21661)],
      [at('raw', 18061, 18120), at('rollup_1m', 18120, 21660), at('raw', 21660, 21661)],
      [
        at('raw', 61, 120),
        at('rollup_1m', 120, 3600),
        at('rollup_1h', 3600, 21600),
        at('rollup_1m', 21600, 21660),
        at('raw', 21660, 21661),
      ],
    ]);
  });

  it('a window shorter than a minute is raw rows only; whole hours are the hourly rollup only', () => {
    const q = sloCountsQuerySchema.parse({
      selector: {},
      sli: availability,
      windows: [
        { from: H + 10, to: H + 50 },
        { from: H, to: H + 7200 },
      ],
    });
    expect(planSloRead(q).pieces).toEqual([
      [{ level: 'raw', from: H + 10, to: H + 50 }],
      [{ level: 'rollup_1h', from: H, to: H + 7200 }],
    ]);
  });

  it('a latency SLI over all consumers reads the route histograms; availability and per-consumer SLIs the SLO counts', () => {
    const windows = [{ from: H, to: H + 60 }];
    const latency = planSloRead(
      sloCountsQuerySchema.parse({ selector: {}, sli: { kind: 'latency', thresholdMs: 300 }, windows }),
    );
    expect(latency.facet).toBeUndefined();
    expect(sloSource('rollup_1m', latency)).toEqual({
      table: 'route_histogram_1m',
      time: 'minute',
      value: 'bucket',
    });
    expect(sloSource('rollup_1h', latency)).toEqual({
      table: 'route_histogram_1h',
      time: 'hour',
      value: 'bucket',
    });
    expect(sloSource('raw', latency)).toEqual({ table: 'access_logs', time: 'ts' });
    const byConsumer = planSloRead(
      sloCountsQuerySchema.parse({ selector: { consumer: 'k' }, sli: availability, windows }),
    );
    expect(sloSource('rollup_1m', byConsumer)).toEqual({
      table: 'slo_counts_1m',
      time: 'minute',
      value: 'value',
      facet: SLO_FACETS.consumerStatus,
    });
  });

  it('a per-consumer latency SLI has no minute level: whole hours, then raw seconds', () => {
    const q = sloCountsQuerySchema.parse({
      selector: { consumer: 'key-a' },
      sli: { kind: 'latency', thresholdMs: 300 },
      windows: [{ from: H - 120, to: H + 3660 }],
    });
    const plan = planSloRead(q);
    expect(plan.facet).toBe(SLO_FACETS.consumerLatency);
    expect(plan.pieces[0]).toEqual([
      { level: 'raw', from: H - 120, to: H },
      { level: 'rollup_1h', from: H, to: H + 3600 },
      { level: 'raw', from: H + 3600, to: H + 3660 },
    ]);
    const status = planSloRead({
      ...q,
      sli: { kind: 'availability', badStatuses: ['5xx'], ignoredStatuses: [] },
    });
    expect(status.facet).toBe(SLO_FACETS.consumerStatus);
    expect(status.pieces[0]?.map((p) => p.level)).toEqual(['rollup_1m', 'rollup_1h', 'rollup_1m']);
  });
});

describe('latencyEdge', () => {
  it('rounds a threshold down to the bucket edge 1.01^k at or below it, keeping edges', () => {
    expect(latencyEdge(300)).toEqual({ maxBucket: 573, thresholdMs: 1.01 ** 573 });
    expect(1.01 ** 573).toBeLessThanOrEqual(300);
    expect(1.01 ** 574).toBeGreaterThan(300);
    expect(latencyEdge(1.01 ** 200)).toEqual({ maxBucket: 200, thresholdMs: 1.01 ** 200 });
    expect(latencyEdge(1)).toEqual({ maxBucket: 0, thresholdMs: 1 });
    expect(latencyEdge(0.5).maxBucket).toBe(-70);
  });
});

describe('sloCountsQuerySchema', () => {
  it('defaults availability to 5xx bad, nothing ignored; rejects empty windows and bad thresholds naming the field', () => {
    const q = sloCountsQuerySchema.parse({ selector: {}, sli: availability, windows: [{ from: 0, to: 60 }] });
    expect(q.sli).toEqual({ kind: 'availability', badStatuses: ['5xx'], ignoredStatuses: [] });
    const bad = sloCountsQuerySchema.safeParse({
      selector: {},
      sli: { kind: 'latency', thresholdMs: 0 },
      windows: [{ from: 60, to: 60 }],
    });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues.map((i) => i.path.join('.')).sort()).toEqual([
      'sli.thresholdMs',
      'windows.0.to',
    ]);
  });
});
