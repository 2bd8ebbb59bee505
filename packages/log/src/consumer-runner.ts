import type {
  ConsumerHandlers,
  ConsumerRunner,
  ConsumerRunnerConfig,
  PartitionOffset,
  TopicOffsets,
} from '@tapwire/stream';
import type { FileLog } from './file-log.js';

/**
 * createLogConsumerRunner reads the embedded log as a consumer group: the same handler contract
 * as the Kafka runner (onAssigned with committed offsets, then batches in offset order, commits
 * only when the caller says its data is stored, pause/resume for backpressure). The log has one
 * partition per topic and one process, so the group has one member that owns every topic.
 */
export function createLogConsumerRunner(
  log: FileLog,
  config: ConsumerRunnerConfig & { readonly maxBatchBytes?: number; readonly pollMs?: number },
  handlers: ConsumerHandlers,
): ConsumerRunner {
  const positions = new Map<string, bigint>();
  const stop = new AbortController();
  let paused = false;
  let wake: (() => void) | undefined;
  let loop: Promise<void> | undefined;

  async function consume(): Promise<void> {
    const committed = log.committed(config.groupId);
    const assignment = config.topics.map((topic) => {
      const c = committed.get(topic);
      const start = c ?? (config.fromBeginning ? log.lowWatermark(topic) : log.highWatermark(topic));
      positions.set(topic, start);
      // Like Kafka, a group with nothing committed reports -1 to the handler.
      return { topic, partition: 0, offset: c === undefined ? '-1' : c.toString() };
    });
    await handlers.onAssigned?.(assignment);
    while (!stop.signal.aborted) {
      if (paused) {
        // Woken by resume() or close(); the abort listener goes with each pause, or every pause
        // under backpressure would leave one behind.
        await new Promise<void>((resolve) => {
          const done = () => {
            stop.signal.removeEventListener('abort', done);
            resolve();
          };
          wake = done;
          stop.signal.addEventListener('abort', done, { once: true });
        });
        continue;
      }
      let any = false;
      for (const topic of config.topics) {
        if (stop.signal.aborted || paused) break;
        const from = positions.get(topic) ?? 0n;
        const records = await log.read(topic, from, config.maxBatchBytes ?? 1024 * 1024);
        if (records.length === 0) continue;
        any = true;
        const high = log.highWatermark(topic);
        await handlers.onBatch({
          topic,
          partition: 0,
          highWatermark: high.toString(),
          messages: records.map((r) => ({ offset: r.offset.toString(), key: r.key, value: r.value })),
        });
        const next = records.at(-1)!.offset + 1n;
        positions.set(topic, next);
      }
      if (!any) await log.waitForAppend(config.topics, config.pollMs ?? 500, stop.signal);
    }
  }

  return {
    groupId: config.groupId,
    get paused() {
      return paused;
    },
    async start() {
      loop = consume();
      loop.catch(() => {});
    },
    async commit(offsets) {
      if (offsets.length === 0) return;
      await log.commit(config.groupId, new Map(offsets.map((o) => [o.topic, BigInt(o.offset)])));
    },
    pause() {
      paused = true;
    },
    resume() {
      if (!paused) return;
      paused = false;
      wake?.();
      wake = undefined;
    },
    lag: () =>
      config.topics.map((topic) => {
        const high = log.highWatermark(topic);
        const consumed = positions.get(topic) ?? 0n;
        return {
          topic,
          partition: 0,
          highWatermark: high.toString(),
          consumed: consumed.toString(),
          lag: Number(high - consumed),
        };
      }),
    async close() {
      stop.abort();
      wake?.();
      await loop?.catch(() => {});
    },
  };
}

/** createLogTopicOffsets answers replay's offset questions from the embedded log. */
export function createLogTopicOffsets(log: FileLog): TopicOffsets {
  const one = (offset: bigint): PartitionOffset[] => [{ partition: 0, offset: offset.toString() }];
  return {
    offsetsAt: async (topic, ms) => one(await log.offsetForTime(topic, ms)),
    highWatermarks: async (topic) => one(log.highWatermark(topic)),
    presetGroup: (groupId, topic, offsets) =>
      log.commit(groupId, new Map([[topic, BigInt(offsets.find((o) => o.partition === 0)?.offset ?? '0')]])),
    deleteGroup: (groupId) => log.deleteGroup(groupId),
    close: async () => {},
  };
}
