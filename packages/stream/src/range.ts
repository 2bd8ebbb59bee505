import { randomBytes } from 'node:crypto';
import type { ConsumerHandlers, ConsumerRunner, PartitionBatch } from './consumer-runner.js';
import type { LogSource } from './event-log.js';

/** RangePlan is what a bounded read will cover: per topic, the events between two points in time. */
export interface RangePlan {
  readonly groupId: string;
  readonly topics: { topic: string; events: number }[];
  readonly total: number;
  /** Per topic-partition, the offset the read stops before. */
  readonly ends: Map<string, bigint>;
}

const tp = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/**
 * planRange sets a fresh consumer group to the first offsets at or after `fromMs` on each topic
 * and records where the read ends: the offsets at `toMs`, or the topics' current ends.
 */
export async function planRange(
  source: LogSource,
  topics: readonly string[],
  range: { fromMs: number; toMs?: number | undefined; groupPrefix: string },
): Promise<RangePlan> {
  const offsets = await source.offsets();
  const groupId = `${range.groupPrefix}-${randomBytes(4).toString('hex')}`;
  const ends = new Map<string, bigint>();
  const planned: RangePlan['topics'] = [];
  let total = 0;
  try {
    for (const topic of topics) {
      const start = await offsets.offsetsAt(topic, range.fromMs);
      const end =
        range.toMs === undefined
          ? await offsets.highWatermarks(topic)
          : await offsets.offsetsAt(topic, range.toMs);
      let events = 0;
      for (const p of start) {
        const e = BigInt(end.find((x) => x.partition === p.partition)?.offset ?? p.offset);
        const n = e - BigInt(p.offset);
        if (n > 0n) {
          ends.set(tp(topic, p.partition), e);
          events += Number(n);
        }
      }
      await offsets.presetGroup(groupId, topic, start);
      planned.push({ topic, events });
      total += events;
    }
  } finally {
    await offsets.close();
  }
  return { groupId, topics: planned, total, ends };
}

/**
 * readRange consumes a planned range: every batch is cut at its partition's end and handed to
 * `onBatch`; it resolves once every partition reached its end and `drained` has run, then deletes
 * the group. `started` sees the runner before the first batch (to attach a pipeline to it).
 */
export async function readRange(
  source: LogSource,
  plan: RangePlan,
  handlers: ConsumerHandlers & {
    started?(runner: ConsumerRunner): void;
    drained?(): Promise<void>;
    onProgress?(done: number, total: number): void;
  },
): Promise<void> {
  const ends = new Map(plan.ends);
  let done = 0;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  if (ends.size === 0) finish();
  const runner = source.runner(
    { groupId: plan.groupId, topics: plan.topics.map((t) => t.topic), fromBeginning: false },
    {
      ...(handlers.onAssigned ? { onAssigned: handlers.onAssigned } : {}),
      async onBatch(batch: PartitionBatch) {
        const k = tp(batch.topic, batch.partition);
        const end = ends.get(k);
        if (end === undefined) return;
        const messages = batch.messages.filter((m) => BigInt(m.offset) < end);
        if (messages.length > 0) await handlers.onBatch({ ...batch, messages });
        done += messages.length;
        handlers.onProgress?.(done, plan.total);
        const last = batch.messages[batch.messages.length - 1];
        if (last && BigInt(last.offset) + 1n >= end) {
          ends.delete(k);
          if (ends.size === 0) finish();
        }
      },
    },
  );
  handlers.started?.(runner);
  try {
    await runner.start();
    await finished;
    await handlers.drained?.();
  } finally {
    await runner.close();
    const cleanup = await source.offsets();
    await cleanup.deleteGroup(plan.groupId);
    await cleanup.close();
  }
}
