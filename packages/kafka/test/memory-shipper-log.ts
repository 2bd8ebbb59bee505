import { EventEmitter } from 'node:events';
import type { LocalRecord, LocalSegment, ShipperLog } from '@tapwire/stream';

/** Bytes a record takes in a segment beyond its key and value (FileLog's frame header). */
export const FRAME_BYTES = 28;

interface MemorySegment {
  base: bigint;
  bytes: number;
  records: LocalRecord[];
}

/** MemoryShipperLog is an in-memory ShipperLog for tests, with FileLog's segment and offset rules and a few fault hooks. */
export interface MemoryShipperLog extends ShipperLog {
  /** append stores values at the next offsets (append time `timestamp`, default now) and returns the first offset. */
  append(topic: string, values: readonly (string | Buffer)[], timestamp?: number): bigint;
  /** failCommits makes the next `n` commits throw after changing nothing. */
  failCommits(n: number): void;
  /** Every commit that succeeded, in order. */
  readonly commits: Map<string, bigint>[];
  /** How many reads were made. */
  reads: number;
  /** durableEnd is the offset below which a topic's records were synced to "disk" (sync()). */
  durableEnd(topic: string): bigint;
}

/** createMemoryShipperLog opens an empty log whose segments close past `segmentBytes`. */
export function createMemoryShipperLog(
  options: { id?: string; segmentBytes?: number } = {},
): MemoryShipperLog {
  const segmentBytes = options.segmentBytes ?? 1024 * 1024;
  const topics = new Map<string, { segments: MemorySegment[]; next: bigint }>();
  const groups = new Map<string, Map<string, bigint>>();
  const appends = new EventEmitter();
  let commitFaults = 0;
  const durable = new Map<string, bigint>();

  const log: MemoryShipperLog = {
    id: options.id ?? 'memory-log',
    commits: [],
    reads: 0,
    durableEnd: (topic) => durable.get(topic) ?? 0n,
    async sync() {
      for (const [topic, t] of topics) durable.set(topic, t.next);
    },

    append(topic, values, timestamp = Date.now()) {
      let t = topics.get(topic);
      if (!t) {
        t = { segments: [], next: 0n };
        topics.set(topic, t);
      }
      const first = t.next;
      for (const v of values) {
        const value = typeof v === 'string' ? Buffer.from(v) : v;
        const size = FRAME_BYTES + value.length;
        let seg = t.segments.at(-1);
        if (!seg || (seg.bytes > 0 && seg.bytes + size > segmentBytes)) {
          seg = { base: t.next, bytes: 0, records: [] };
          t.segments.push(seg);
        }
        seg.records.push({ offset: t.next, timestamp, key: null, value });
        seg.bytes += size;
        t.next++;
      }
      appends.emit('append', topic);
      return first;
    },

    failCommits(n) {
      commitFaults = n;
    },

    topics: () => [...topics.keys()].sort(),

    async read(topic, offset, maxBytes = 1024 * 1024) {
      log.reads++;
      const t = topics.get(topic);
      const out: LocalRecord[] = [];
      if (!t) return out;
      let budget = maxBytes;
      for (const seg of t.segments) {
        const end = seg.base + BigInt(seg.records.length);
        if (end <= offset) continue;
        // Offsets are dense within a segment.
        for (let i = offset > seg.base ? Number(offset - seg.base) : 0; i < seg.records.length; i++) {
          const r = seg.records[i]!;
          const cost = FRAME_BYTES + r.value.length;
          if (out.length > 0 && cost > budget) return out;
          out.push(r);
          budget -= cost;
        }
      }
      return out;
    },

    highWatermark: (topic) => topics.get(topic)?.next ?? 0n,
    lowWatermark(topic) {
      const t = topics.get(topic);
      return t?.segments[0]?.base ?? t?.next ?? 0n;
    },
    segments: (topic): LocalSegment[] =>
      (topics.get(topic)?.segments ?? []).map((s) => ({ base: s.base, bytes: s.bytes })),

    async deleteBelow(topic, offset) {
      const t = topics.get(topic);
      let freed = 0;
      // Closed segments only: the last one is being written.
      while (t && t.segments.length > 1 && t.segments[1]!.base <= offset) {
        freed += t.segments.shift()!.bytes;
      }
      return freed;
    },

    committed: (group) => new Map(groups.get(group) ?? []),

    async commit(group, offsets) {
      await Promise.resolve();
      if (commitFaults > 0) {
        commitFaults--;
        throw new Error('fault injection: position not saved');
      }
      const current = new Map(groups.get(group) ?? []);
      for (const [t, o] of offsets) current.set(t, o);
      groups.set(group, current);
      log.commits.push(new Map(offsets));
    },

    waitForAppend(waitTopics, ms, signal) {
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          appends.off('append', onAppend);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const onAppend = (topic: string) => {
          if (waitTopics.includes(topic)) done();
        };
        const timer = setTimeout(done, ms);
        appends.on('append', onAppend);
        signal?.addEventListener('abort', done);
      });
    },
  };
  return log;
}
