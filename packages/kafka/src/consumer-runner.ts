import { setTimeout as delay } from 'node:timers/promises';
import type {
  ConsumedMessage,
  ConsumerHandlers,
  ConsumerRunner,
  ConsumerRunnerConfig,
  PartitionLag,
  TopicPartitionOffset,
} from '@tapwire/stream';
import type { Consumer, Kafka } from 'kafkajs';
import type { KafkaLogger } from './client.js';

/**
 * createConsumerRunner subscribes a consumer group with auto-commit off: batches go to the handler,
 * offsets are committed only when the caller says its data is stored.
 */
export function createConsumerRunner(
  deps: { kafka: Kafka; logger: KafkaLogger },
  config: ConsumerRunnerConfig,
  handlers: ConsumerHandlers,
): ConsumerRunner {
  const consumer: Consumer = deps.kafka.consumer({
    groupId: config.groupId,
    sessionTimeout: config.sessionTimeoutMs ?? 30_000,
    maxBytesPerPartition: config.maxBytesPerPartition ?? 1024 * 1024,
    maxBytes: 8 * 1024 * 1024,
    maxWaitTimeInMs: config.maxWaitTimeInMs ?? 250,
    allowAutoTopicCreation: false,
    retry: {
      retries: 5,
      // kafkajs restarts a crashed consumer on a timer of its own (a broker down crashes it every
      // few seconds), and a restart already under way when disconnect() runs is not cancelled by
      // it: a closed runner came back and rejoined the group when the broker returned (issue #17).
      restartOnFailure: async () => !closing,
    },
  });
  const admin = deps.kafka.admin();
  let assigned: Promise<void> = Promise.resolve();
  let paused = false;
  const lagByPartition = new Map<string, PartitionLag>();
  let closing = false;
  let closed: Promise<void> | undefined;

  // Between a crash and kafkajs's restart of the consumer there is no group: pause() and resume()
  // throw then ("consumer#run must be called first"), and a restarted group starts unpaused. So a
  // pause is best effort here and applied again each time the group joins.
  const topicList = config.topics.map((topic) => ({ topic }));
  const applyPause = (): void => {
    try {
      consumer.pause(topicList);
    } catch {
      // No group right now: GROUP_JOIN pauses it once it is back.
    }
  };

  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    if (paused) applyPause();
    if (closing) {
      // A start that was in flight when close() ran joined anyway; leave again once kafkajs has
      // marked it running (after this event), which is when its stop() takes effect.
      setImmediate(() => void consumer.disconnect().catch(() => {}));
      return;
    }
    const assignment = event.payload.memberAssignment;
    lagByPartition.clear();
    assigned = (async () => {
      if (!handlers.onAssigned) return;
      const topics = Object.keys(assignment);
      const committed =
        topics.length > 0 ? await admin.fetchOffsets({ groupId: config.groupId, topics }) : [];
      const list: TopicPartitionOffset[] = [];
      for (const t of committed) {
        for (const p of t.partitions) {
          if (assignment[t.topic]?.includes(p.partition))
            list.push({ topic: t.topic, partition: p.partition, offset: p.offset });
        }
      }
      await handlers.onAssigned(list);
    })();
    assigned.catch((err: Error) =>
      deps.logger.error({ err: err.message }, 'partition assignment handler failed'),
    );
  });

  return {
    groupId: config.groupId,
    get paused() {
      return paused;
    },
    async start() {
      await admin.connect();
      await consumer.connect();
      await consumer.subscribe({ topics: [...config.topics], fromBeginning: config.fromBeginning });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          await assigned;
          if (closing || !isRunning() || isStale() || batch.messages.length === 0) return;
          await handlers.onBatch({
            topic: batch.topic,
            partition: batch.partition,
            highWatermark: batch.highWatermark,
            // kafkajs's own message objects: a copy per message was a tenth of the objects that
            // outlive a scavenge while a fetch is processed (ingest benchmark GC trace). Their
            // `headers` are ConsumedMessage.headers, where a batched record names its format.
            messages: batch.messages satisfies ConsumedMessage[],
          });
          const last = batch.lastOffset();
          resolveOffset(last);
          lagByPartition.set(`${batch.topic}:${batch.partition}`, {
            topic: batch.topic,
            partition: batch.partition,
            highWatermark: batch.highWatermark,
            consumed: String(BigInt(last) + 1n),
            lag: Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(last) - 1n)),
          });
          await heartbeat();
        },
      });
    },
    async commit(offsets) {
      if (offsets.length === 0) return;
      await consumer.commitOffsets(
        offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset })),
      );
    },
    pause() {
      if (paused) return;
      paused = true;
      applyPause();
    },
    resume() {
      if (!paused) return;
      paused = false;
      try {
        consumer.resume(topicList);
      } catch {
        // No group right now: the restarted one starts unpaused.
      }
    },
    lag: () => [...lagByPartition.values()],
    close() {
      closing = true;
      closed ??= (async () => {
        const timeoutMs = config.closeTimeoutMs ?? 5000;
        // With the broker down, leaving the group retries for minutes; the broker expires the
        // member after its session timeout anyway, and nothing restarts it any more (closing).
        const left = await Promise.race([
          consumer.disconnect().then(
            () => true,
            () => true,
          ),
          delay(timeoutMs, false, { ref: false }),
        ]);
        if (!left)
          deps.logger.warn(
            { groupId: config.groupId, timeoutMs },
            'consumer did not leave its group in time; the broker expires it after the session timeout',
          );
        await admin.disconnect().catch(() => {});
      })();
      return closed;
    },
  };
}
