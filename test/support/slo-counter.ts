import type { SloCounter, SloCountsQuery } from '@tapwire/alerting';

/** FakeRequest is one request (or `count` identical ones) the fake SloCounter counts. */
export interface FakeRequest {
  /** tsS is when the request started, epoch seconds. */
  readonly tsS: number;
  readonly status: number;
  readonly durationMs?: number;
  readonly count?: number;
  readonly tenant?: string;
  readonly service?: string;
  readonly route?: string;
  readonly method?: string;
  readonly consumer?: string;
}

/**
 * createFakeSloCounter counts good and total requests from an in-memory list, as the Store's
 * sloCounts does: half-open windows, whole minutes (so code that asks for anything else fails
 * here as it would against a store that requires alignment), 1..512 windows per call.
 */
export function createFakeSloCounter(requests: FakeRequest[] = []): SloCounter & {
  readonly requests: FakeRequest[];
  readonly calls: SloCountsQuery[];
  failWith: Error | undefined;
} {
  const calls: SloCountsQuery[] = [];
  const fake = {
    requests,
    calls,
    failWith: undefined as Error | undefined,
    async sloCounts(_scope: { tenant: string | null }, query: SloCountsQuery) {
      calls.push(query);
      if (fake.failWith) throw fake.failWith;
      if (query.windows.length < 1 || query.windows.length > 512) throw new Error('1..512 windows');
      for (const w of query.windows)
        if (w.from % 60 !== 0 || w.to % 60 !== 0 || w.from >= w.to)
          throw new Error(`window not whole minutes: ${w.from}-${w.to}`);
      const sli = query.sli;
      const picked = requests.filter((r) =>
        Object.entries(query.selector).every(([k, v]) => v === undefined || r[k as keyof FakeRequest] === v),
      );
      const isBad = (status: number) =>
        sli.kind === 'availability' &&
        sli.badStatuses.some((b) =>
          typeof b === 'number' ? b === status : `${Math.floor(status / 100)}xx` === b,
        );
      return {
        windows: query.windows.map((w) => {
          let good = 0;
          let total = 0;
          for (const r of picked) {
            if (r.tsS < w.from || r.tsS >= w.to) continue;
            if (sli.kind === 'availability' && sli.ignoredStatuses.includes(r.status)) continue;
            const n = r.count ?? 1;
            total += n;
            const ok =
              sli.kind === 'availability' ? !isBad(r.status) : (r.durationMs ?? 0) <= sli.thresholdMs;
            if (ok) good += n;
          }
          return { from: w.from, to: w.to, good, total };
        }),
        ...(sli.kind === 'latency' ? { thresholdMs: sli.thresholdMs } : {}),
      };
    },
    async sloCountsMany(scope: { tenant: string | null }, queries: readonly SloCountsQuery[]) {
      return Promise.all(queries.map((q) => fake.sloCounts(scope, q)));
    },
  };
  return fake;
}

/**
 * steadyTraffic writes `perMinute` requests in each minute of [fromS, toS) (epoch seconds, whole
 * minutes), `badPerMinute(minuteStart)` of them answered 500 and the rest 200.
 */
export function steadyTraffic(
  fromS: number,
  toS: number,
  perMinute: number,
  badPerMinute: (minuteStartS: number) => number,
  fields: Partial<FakeRequest> = {},
): FakeRequest[] {
  const out: FakeRequest[] = [];
  for (let t = fromS; t < toS; t += 60) {
    const bad = badPerMinute(t);
    if (bad > 0) out.push({ ...fields, tsS: t + 30, status: 500, count: bad });
    if (perMinute - bad > 0) out.push({ ...fields, tsS: t + 30, status: 200, count: perMinute - bad });
  }
  return out;
}
