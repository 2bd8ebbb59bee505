import { Worker } from 'node:worker_threads';
import type { KafkaConfig } from '@tapwire/config';
import { createEventEncoder, type EventSink, emptySinkStats, type SinkStats } from '@tapwire/stream';
import type { KafkaLogger } from './client.js';
import type { RecordSinkConfig } from './record-sink.js';
import type { SpoolConfig } from './spool.js';

/** ThreadedSinkConfig configures a sink whose Kafka producer runs on a worker thread. */
export interface ThreadedSinkConfig {
  readonly kafka: KafkaConfig;
  readonly clientIdSuffix: string;
  readonly sink: Omit<RecordSinkConfig, 'spool'>;
  readonly spool?: SpoolConfig;
  readonly topicPrefix?: string;
  readonly validate?: boolean;
  /** Events encoded but not yet taken by the worker; beyond it new events are dropped and counted. */
  readonly maxInTransitEvents?: number;
  /**
   * Added to the nice value of the worker thread on Linux (0–19, default 0). Above 0 the thread that
   * sends yields the CPU to the threads serving requests when both want it; events wait in memory.
   */
  readonly threadNice?: number;
}

/** WorkerInit is what the worker thread is started with (structured-clonable). */
export interface WorkerInit {
  kafka: KafkaConfig;
  clientIdSuffix: string;
  sink: Omit<RecordSinkConfig, 'spool'>;
  spool?: SpoolConfig;
  threadNice?: number;
}

/** ToWorker are the messages the main thread sends. */
export type ToWorker =
  | { type: 'records'; lines: string; count: number }
  | { type: 'flush'; id: number }
  | { type: 'close'; id: number; deadlineMs: number };

/** FromWorker are the messages the worker sends back. */
export type FromWorker =
  | { type: 'taken'; count: number; stats: SinkStats }
  | { type: 'stats'; stats: SinkStats }
  | { type: 'done'; id: number; stats: SinkStats }
  | { type: 'log'; level: 'error' | 'warn' | 'info' | 'debug'; obj: object; msg: string }
  | { type: 'fatal'; message: string };

function startWorker(workerData: WorkerInit): Worker {
  // A small young generation keeps the worker's heap (and the process's RSS) bounded; the worker
  // allocates short-lived batches, so GC runs more often but each run is cheap.
  const resourceLimits = { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 256 };
  if (!import.meta.url.endsWith('.ts')) {
    return new Worker(new URL('./sink-worker.js', import.meta.url), { workerData, resourceLimits });
  }
  // Running from source (tests, tsx): the worker registers the tsx loader, then loads the TypeScript.
  const source = new URL('./sink-worker.ts', import.meta.url).href;
  return new Worker(
    `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(source)}); });`,
    { eval: true, workerData, resourceLimits },
  );
}

/**
 * createThreadedKafkaEventSink encodes events on the calling thread and hands them, a batch per
 * linger interval, to a worker thread that owns the kafkajs producer and the disk spool. The
 * producer's encoding and socket work (a third of the proxy's CPU in the benchmark profile) then
 * runs beside the request path instead of on it.
 */
export function createThreadedKafkaEventSink(
  deps: { logger: KafkaLogger },
  config: ThreadedSinkConfig,
): EventSink {
  const encode = createEventEncoder({ validate: config.validate, topicPrefix: config.topicPrefix });
  const maxInTransit = config.maxInTransitEvents ?? Math.max(10_000, config.sink.maxBufferedEvents);
  const init: WorkerInit = {
    kafka: config.kafka,
    clientIdSuffix: config.clientIdSuffix,
    sink: config.sink,
    ...(config.spool ? { spool: config.spool } : {}),
    ...(config.threadNice ? { threadNice: config.threadNice } : {}),
  };
  const worker = startWorker(init);
  let pending: string[] = [];
  let inTransit = 0;
  let local = { accepted: 0, invalid: 0, dropped: 0 };
  let remote: SinkStats = { ...emptySinkStats(), bufferCapacity: config.sink.maxBufferedEvents };
  let timer: NodeJS.Timeout | undefined;
  let closed: Promise<void> | undefined;
  let dead = false;
  let nextId = 1;
  const waiting = new Map<number, () => void>();

  worker.on('message', (m: FromWorker) => {
    switch (m.type) {
      case 'taken':
        inTransit -= m.count;
        remote = m.stats;
        break;
      case 'stats':
        remote = m.stats;
        break;
      case 'done':
        remote = m.stats;
        waiting.get(m.id)?.();
        waiting.delete(m.id);
        break;
      case 'log':
        deps.logger[m.level](m.obj, m.msg);
        break;
      case 'fatal':
        deps.logger.error({ err: m.message }, 'event sink worker failed');
        break;
    }
  });
  worker.on('error', (err) => {
    deps.logger.error({ err: err.message }, 'event sink worker crashed');
  });
  worker.on('exit', () => {
    dead = true;
    local = { ...local, dropped: local.dropped + inTransit + pending.length };
    inTransit = 0;
    pending = [];
    for (const resolve of waiting.values()) resolve();
    waiting.clear();
  });
  worker.unref();

  function post(): void {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (pending.length === 0 || dead) return;
    const count = pending.length;
    const message: ToWorker = { type: 'records', lines: pending.join(''), count };
    pending = [];
    inTransit += count;
    worker.postMessage(message);
  }

  function request(type: 'flush' | 'close', deadlineMs = 0): Promise<void> {
    post();
    if (dead) return Promise.resolve();
    const id = nextId++;
    return new Promise<void>((resolve) => {
      waiting.set(id, resolve);
      worker.postMessage(type === 'flush' ? { type, id } : { type, id, deadlineMs });
    });
  }

  return {
    emit(topic, event) {
      if (closed || dead) {
        local.dropped++;
        return false;
      }
      const record = encode(topic, event);
      if (typeof record === 'string') {
        local.invalid++;
        deps.logger.warn({ topic, err: record }, 'refused an invalid event');
        return false;
      }
      if (inTransit + pending.length >= maxInTransit) {
        local.dropped++;
        return false;
      }
      // Same line format as the disk spool: topic, key and JSON value separated by tabs.
      pending.push(`${record.topic}\t${record.key}\t${record.value}\n`);
      local.accepted++;
      if (pending.length >= config.sink.maxBatchEvents) post();
      else if (!timer) {
        timer = setTimeout(post, Math.max(1, Math.min(config.sink.lingerMs, 10)));
        timer.unref();
      }
      return true;
    },
    flush: () => request('flush'),
    close(deadlineMs = 10_000) {
      closed ??= (async () => {
        await request('close', deadlineMs);
        await worker.terminate();
      })();
      return closed;
    },
    stats(): SinkStats {
      return {
        ...remote,
        accepted: local.accepted,
        invalid: local.invalid + remote.invalid,
        dropped: local.dropped + remote.dropped,
        buffered: remote.buffered + inTransit + pending.length,
      };
    },
  };
}
