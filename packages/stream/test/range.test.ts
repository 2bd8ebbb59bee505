import {
  type ConsumerHandlers,
  type LogSource,
  type PartitionBatch,
  type PartitionOffset,
  planRange,
  readRange,
  type TopicPartitionOffset,
} from '@tapwire/stream';
import { describe, expect, it } from 'vitest';

/**
 * memorySource is a one-partition-per-topic LogSource in memory: record i of a topic has offset i
 * and the append time given; a runner delivers from the group's committed offset in batches of
 * `batchSize` until it is closed. It records what the range reader asks of it.
 */
function memorySource(topics: Record<string, number[]>, batchSize = 2) {
  const groups = new Map<string, Map<string, number>>();
  const seen = { presets: [] as string[], deleted: [] as string[], offsetsClosed: 0, runnersClosed: 0 };
  const one = (offset: number): PartitionOffset[] => [{ partition: 0, offset: String(offset) }];
  const source: LogSource = {
    kind: 'embedded',
    async offsets() {
      return {
        offsetsAt: async (topic, ms) => {
          const times = topics[topic] ?? [];
          const i = times.findIndex((t) => t >= ms);
          return one(i === -1 ? times.length : i);
        },
        highWatermarks: async (topic) => one(topics[topic]?.length ?? 0),
        async presetGroup(groupId, topic, offsets) {
          seen.presets.push(
            `${groupId} ${topic} ${offsets.map((o) => `${o.partition}:${o.offset}`).join(',')}`,
          );
          const group = groups.get(groupId) ?? new Map<string, number>();
          group.set(topic, Number(offsets[0]?.offset ?? 0));
          groups.set(groupId, group);
        },
        async deleteGroup(groupId) {
          seen.deleted.push(groupId);
          groups.delete(groupId);
        },
        async close() {
          seen.offsetsClosed++;
        },
      };
    },
    runner(config, handlers: ConsumerHandlers) {
      let closed = false;
      let loop: Promise<void> = Promise.resolve();
      return {
        groupId: config.groupId,
        paused: false,
        async start() {
          const committed = groups.get(config.groupId) ?? new Map<string, number>();
          const assignment: TopicPartitionOffset[] = config.topics.map((topic) => ({
            topic,
            partition: 0,
            offset: String(committed.get(topic) ?? -1),
          }));
          await handlers.onAssigned?.(assignment);
          loop = (async () => {
            for (const topic of config.topics) {
              const times = topics[topic] ?? [];
              for (let from = committed.get(topic) ?? 0; from < times.length && !closed; from += batchSize) {
                const batch: PartitionBatch = {
                  topic,
                  partition: 0,
                  highWatermark: String(times.length),
                  messages: times.slice(from, from + batchSize).map((_, i) => ({
                    offset: String(from + i),
                    key: Buffer.from('k'),
                    value: Buffer.from(`${topic}#${from + i}`),
                  })),
                };
                await handlers.onBatch(batch);
              }
            }
          })();
        },
        commit: async () => {},
        pause() {},
        resume() {},
        lag: () => [],
        async close() {
          closed = true;
          await loop;
          seen.runnersClosed++;
        },
      };
    },
  };
  return { source, seen };
}

describe('planRange', () => {
  it('counts the events between two times per topic and presets a fresh group at the start', async () => {
    const { source, seen } = memorySource({ a: [100, 200, 300, 400, 500], b: [100, 200, 300] });
    const plan = await planRange(source, ['a', 'b'], {
      fromMs: 200,
      toMs: 450,
      groupPrefix: 'tapwire-export',
    });
    expect(plan.groupId).toMatch(/^tapwire-export-[0-9a-f]{8}$/);
    expect(plan.topics).toEqual([
      { topic: 'a', events: 3 },
      { topic: 'b', events: 2 },
    ]);
    expect(plan.total).toBe(5);
    expect(seen.presets).toEqual([`${plan.groupId} a 0:1`, `${plan.groupId} b 0:1`]);
    expect(seen.offsetsClosed).toBe(1);
  });

  it('runs to the current end of each topic without a `toMs`', async () => {
    const { source } = memorySource({ a: [100, 200, 300, 400, 500] });
    const plan = await planRange(source, ['a'], { fromMs: 0, groupPrefix: 'g' });
    expect(plan.topics).toEqual([{ topic: 'a', events: 5 }]);
    expect(plan.total).toBe(5);
  });
});

describe('readRange', () => {
  it('hands over exactly the planned records, cutting the batch that crosses the end, then deletes the group', async () => {
    const { source, seen } = memorySource({ a: [100, 200, 300, 400, 500], b: [100, 200, 300] });
    const plan = await planRange(source, ['a', 'b'], { fromMs: 200, toMs: 450, groupPrefix: 'g' });
    const read: string[] = [];
    const progress: string[] = [];
    let drained = 0;
    await readRange(source, plan, {
      async onBatch(batch) {
        for (const m of batch.messages) read.push(m.value?.toString() ?? '');
      },
      onProgress: (done, total) => progress.push(`${done}/${total}`),
      drained: async () => {
        drained++;
      },
    });
    expect(read).toEqual(['a#1', 'a#2', 'a#3', 'b#1', 'b#2']);
    expect(progress).toEqual(['2/5', '3/5', '5/5']);
    expect(drained).toBe(1);
    expect(seen.runnersClosed).toBe(1);
    expect(seen.deleted).toEqual([plan.groupId]);
  });

  it('finishes at once on an empty range, still deleting the group', async () => {
    const { source, seen } = memorySource({ a: [100, 200] });
    const plan = await planRange(source, ['a'], { fromMs: 1000, groupPrefix: 'g' });
    expect(plan.total).toBe(0);
    const batches: PartitionBatch[] = [];
    await readRange(source, plan, { onBatch: async (b) => void batches.push(b) });
    expect(batches).toEqual([]);
    expect(seen.deleted).toEqual([plan.groupId]);
  });
});
