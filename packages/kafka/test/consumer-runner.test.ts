import { EventEmitter } from 'node:events';
import { createConsumerRunner } from '@tapwire/kafka';
import type { ConsumerHandlers, PartitionBatch } from '@tapwire/stream';
import type { Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';

const GROUP_JOIN = 'consumer.group_join';

type EachBatch = (payload: Record<string, unknown>) => Promise<void>;

/**
 * fakeKafka stands in for the kafkajs client at the boundary the runner uses: it records the
 * consumer's options (where kafkajs reads restartOnFailure), the eachBatch callback, and disconnects;
 * `leave` decides how a disconnect ends (a broker that is down never lets it finish).
 */
function fakeKafka(leave: () => Promise<void> = async () => {}) {
  const emitter = new EventEmitter();
  const state = {
    options: undefined as
      | { retry?: { retries?: number; restartOnFailure?: (e: Error) => Promise<boolean> } }
      | undefined,
    eachBatch: undefined as EachBatch | undefined,
    disconnects: 0,
    /** Whether kafkajs has a consumer group now (not between a crash and its restart). */
    group: true,
    pausedNow: false,
    join: (memberAssignment: Record<string, number[]>) =>
      emitter.emit(GROUP_JOIN, { payload: { memberAssignment } }),
  };
  const kafka = {
    consumer(options: typeof state.options) {
      state.options = options;
      return {
        events: { GROUP_JOIN },
        on: (event: string, listener: (e: unknown) => void) => emitter.on(event, listener),
        connect: async () => {},
        subscribe: async () => {},
        run: async (config: { eachBatch: EachBatch }) => {
          state.eachBatch = config.eachBatch;
        },
        disconnect: () => {
          state.disconnects++;
          return leave();
        },
        commitOffsets: async () => {},
        // kafkajs's own check: no group, no pause or resume.
        pause() {
          if (!state.group)
            throw new Error('Consumer group was not initialized, consumer#run must be called first');
          state.pausedNow = true;
        },
        resume() {
          if (!state.group)
            throw new Error('Consumer group was not initialized, consumer#run must be called first');
          state.pausedNow = false;
        },
      };
    },
    admin: () => ({
      connect: async () => {},
      disconnect: async () => {},
      fetchOffsets: async () => [{ topic: 't', partitions: [{ partition: 0, offset: '0' }] }],
    }),
  } as unknown as Kafka;
  return { kafka, state };
}

function recordingHandlers() {
  const seen = { assigned: 0, batches: [] as PartitionBatch[] };
  const handlers: ConsumerHandlers = {
    onAssigned: async () => {
      seen.assigned++;
    },
    onBatch: async (batch) => {
      seen.batches.push(batch);
    },
  };
  return { seen, handlers };
}

const warnings: string[] = [];
const logger = {
  error() {},
  warn: (_: object, msg: string) => warnings.push(msg),
  info() {},
  debug() {},
};
const config = { groupId: 'g', topics: ['t'], fromBeginning: true };

function batchPayload() {
  return {
    batch: {
      topic: 't',
      partition: 0,
      highWatermark: '1',
      messages: [{ offset: '0', key: null, value: Buffer.from('{}') }],
      lastOffset: () => '0',
    },
    resolveOffset() {},
    heartbeat: async () => {},
    isRunning: () => true,
    isStale: () => false,
  };
}

describe('consumer runner after close (issue #17: a stopped ingest came back as a zombie consumer)', () => {
  it('lets kafkajs restart a crashed consumer while running, and refuses once close has begun', async () => {
    const { kafka, state } = fakeKafka();
    const runner = createConsumerRunner({ kafka, logger }, config, recordingHandlers().handlers);
    await runner.start();
    const restartOnFailure = state.options?.retry?.restartOnFailure;
    expect(state.options?.retry?.retries).toBe(5);
    expect(await restartOnFailure?.(new Error('broker down'))).toBe(true);
    await runner.close();
    expect(await restartOnFailure?.(new Error('broker down'))).toBe(false);
  });

  it('a group join that lands after close assigns nothing, consumes nothing and leaves again', async () => {
    const { kafka, state } = fakeKafka();
    const { seen, handlers } = recordingHandlers();
    const runner = createConsumerRunner({ kafka, logger }, config, handlers);
    await runner.start();
    await runner.close();
    expect(state.disconnects).toBe(1);
    // A restart that was already connecting when close() ran joins once the broker is back.
    state.join({ t: [0] });
    await state.eachBatch?.(batchPayload());
    await new Promise((r) => setImmediate(r));
    expect(state.disconnects).toBe(2);
    expect(seen).toEqual({ assigned: 0, batches: [] });
  });

  it('close returns after closeTimeoutMs when leaving the group never finishes (broker down)', async () => {
    const { kafka, state } = fakeKafka(() => new Promise(() => {}));
    const runner = createConsumerRunner(
      { kafka, logger },
      { ...config, closeTimeoutMs: 50 },
      recordingHandlers().handlers,
    );
    await runner.start();
    warnings.length = 0;
    await runner.close();
    expect(state.disconnects).toBe(1);
    expect(warnings).toEqual([
      'consumer did not leave its group in time; the broker expires it after the session timeout',
    ]);
  });

  it('hands batches to the handler while running', async () => {
    const { kafka, state } = fakeKafka();
    const { seen, handlers } = recordingHandlers();
    const runner = createConsumerRunner({ kafka, logger }, config, handlers);
    await runner.start();
    state.join({ t: [0] });
    await state.eachBatch?.(batchPayload());
    expect(seen.assigned).toBe(1);
    expect(seen.batches.map((b) => [b.topic, b.partition, b.messages.length])).toEqual([['t', 0, 1]]);
    await runner.close();
  });
});

describe('pause and resume between a crash and its restart', () => {
  it('never throw (ingest stops cleanly with the broker down), and a pause holds once the group is back', async () => {
    const { kafka, state } = fakeKafka();
    const { handlers } = recordingHandlers();
    const runner = createConsumerRunner({ kafka, logger }, config, handlers);
    await runner.start();
    // kafkajs crashed the consumer (broker gone) and has not restarted it yet.
    state.group = false;
    expect(() => runner.pause()).not.toThrow();
    expect(runner.paused).toBe(true);
    // The restarted group starts unpaused; the runner pauses it as it joins.
    state.group = true;
    state.join({ t: [0] });
    expect(state.pausedNow).toBe(true);
    state.group = false;
    expect(() => runner.resume()).not.toThrow();
    expect(runner.paused).toBe(false);
    state.group = true;
    state.pausedNow = false;
    state.join({ t: [0] });
    expect(state.pausedNow).toBe(false);
    await runner.close();
  });
});
