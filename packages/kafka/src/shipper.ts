import { encodeBatch, type LocalRecord, type ShipperLog, SOURCE_ID } from '@tapwire/stream';
import type { Kafka } from 'kafkajs';
import { type BatchProducer, createKafkaBatchProducer, type OutgoingRecord } from './batch-producer.js';
import type { KafkaLogger } from './client.js';
import { TapwireKafkaError } from './errors.js';

/** SHIPPER_GROUP is the consumer group of the local log whose committed offsets are the shipped position. */
export const SHIPPER_GROUP = 'shipper';

/** Longest the loop sleeps: new topics and the size cap are looked at least this often. */
const MAX_SLEEP_MS = 1000;
/** Dropped events are logged at most once per this interval (the count covers the interval). */
const DROP_WARN_INTERVAL_MS = 10_000;
/** Bytes a local log read charges per record beyond its value (FileLog's frame header). */
const READ_FRAME_BYTES = 28;
const MIN_READ_BYTES = 64 * 1024;

/** ShipperConfig bounds the shipper's batches, retries and local disk; every field has a default (SHIPPER_DEFAULTS). */
export interface ShipperConfig {
  /** Most events in one Kafka record. */
  readonly maxBatchEvents?: number;
  /** Most bytes of events (newlines included) in one Kafka record; one larger event goes alone. */
  readonly maxBatchBytes?: number;
  /** How long a batch may wait to fill before it is sent partly full, in ms, counted from its first event's append. */
  readonly lingerMs?: number;
  /** Local log size cap, in bytes (all topics): beyond it the oldest segments are deleted, shipped or not, and their unshipped events counted as dropped. */
  readonly maxBytes?: number;
  /** Kafka compression of produce requests. */
  readonly compression?: 'gzip' | 'none';
  /** First delay before resending after a failure, in ms; doubles (with jitter) up to maxRetryBackoffMs. */
  readonly retryBackoffMs?: number;
  readonly maxRetryBackoffMs?: number;
  /** Prefix prepended to a local topic's name to name its Kafka topic. */
  readonly topicPrefix?: string;
  /**
   * Shortest time between two saves of the shipped position, in ms (0: after every acknowledged
   * send). A position saved late only makes a restart resend what Kafka already has, which ingest
   * stores once; each save is a small file write and fsync.
   */
  readonly savePositionEveryMs?: number;
}

/** SHIPPER_DEFAULTS are the values of fields a ShipperConfig leaves out. */
export const SHIPPER_DEFAULTS = {
  maxBatchEvents: 2000,
  // Under Kafka's default 1 MB message.max.bytes, with room for headers and batch framing.
  maxBatchBytes: 900_000,
  lingerMs: 50,
  maxBytes: 1024 ** 3,
  compression: 'none',
  retryBackoffMs: 200,
  maxRetryBackoffMs: 30_000,
  topicPrefix: '',
  savePositionEveryMs: 1000,
} as const satisfies Required<ShipperConfig>;

/** ShipperStats is what the shipper has done and what waits. */
export interface ShipperStats {
  /** Events acknowledged by Kafka (a resend after a lost position save counts again). */
  readonly shippedEvents: number;
  /** Kafka records (batches) acknowledged. */
  readonly shippedBatches: number;
  /** Value bytes of the acknowledged records, before compression. */
  readonly shippedBytes: number;
  /** Events in the local log beyond the shipped position, over all topics. */
  readonly unshippedEvents: number;
  /** Local log bytes (frames included) beyond the shipped position: each segment's bytes, pro rata to its unshipped offsets. */
  readonly unshippedBytes: number;
  /** Age of the oldest unshipped event the shipper has read, in seconds; 0 when none waits. */
  readonly lagSeconds: number;
  /** Unshipped events deleted to keep the local log under its size cap (or found deleted). */
  readonly droppedEvents: number;
  /** Failed sends (each is retried with the same batch). */
  readonly sendErrors: number;
  /** Failed position saves (each rewinds to the saved position and ships again). */
  readonly commitErrors: number;
  /** Whether the last send reached Kafka. */
  readonly connected: boolean;
  /** The last failure's message, until the next successful send. */
  readonly lastError: string | undefined;
}

/** Shipper moves a local log to Kafka in the background. */
export interface Shipper {
  /** start begins shipping; idempotent. */
  start(): void;
  /** stop ships what the log holds until the deadline, then stops and disconnects; idempotent. What is not shipped stays in the log. */
  stop(deadlineMs?: number): Promise<void>;
  stats(): ShipperStats;
}

interface TopicState {
  readonly topic: string;
  readonly kafkaTopic: string;
  /** Every offset below is shipped (acknowledged) or dropped. */
  position: bigint;
  /** Read cursor: `buffer` holds what was read and not yet cut into a batch, up to here. */
  next: bigint;
  buffer: LocalRecord[];
  /** When the buffer's first record started waiting for its batch to fill (ms). */
  headSince: number | undefined;
}

interface Batch {
  readonly state: TopicState;
  readonly firstSeq: bigint;
  readonly end: bigint;
  readonly events: number;
  readonly firstTimestamp: number;
  readonly record: OutgoingRecord;
}

interface Cut {
  readonly count: number;
  /** No record can be added: the limits are reached or the next record is not consecutive. */
  readonly full: boolean;
}

function intAtLeast(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min)
    throw new TapwireKafkaError(
      'TAPWIRE_KAFKA_SHIPPER_CONFIG_INVALID',
      `${name} must be an integer ≥ ${min}, got ${value}`,
    );
  return value;
}

/**
 * createLogShipper is the shipper over any BatchProducer (createKafkaShipper gives it Kafka's).
 *
 * One loop, on the calling thread: per topic of the log, from the position saved in the log's
 * `shipper` group, it cuts a batch of consecutive records. Once one topic's batch is full, or its
 * first event has waited lingerMs, every topic's batch goes in one request (at most one batch per
 * topic, so a partition's record batch stays under maxBatchBytes). After Kafka acknowledged, it
 * saves the new positions and deletes fully shipped segments. A request that fails is resent
 * unchanged after a backoff: the idempotent producer recognises a resend only if it carries the
 * same records. A failed position save rewinds to the saved position and ships from there again,
 * as a restart would: the resent events keep their (source, seq), which ingest stores once.
 * Beyond maxBytes the oldest closed segments are deleted, shipped or not. Idle, it sleeps until
 * the next append (or a second, to find new topics).
 */
export function createLogShipper(
  deps: { producer: BatchProducer; logger: KafkaLogger },
  log: ShipperLog,
  config: ShipperConfig = {},
): Shipper {
  const maxBatchEvents = intAtLeast(
    'maxBatchEvents',
    config.maxBatchEvents ?? SHIPPER_DEFAULTS.maxBatchEvents,
    1,
  );
  const maxBatchBytes = intAtLeast(
    'maxBatchBytes',
    config.maxBatchBytes ?? SHIPPER_DEFAULTS.maxBatchBytes,
    1,
  );
  const lingerMs = intAtLeast('lingerMs', config.lingerMs ?? SHIPPER_DEFAULTS.lingerMs, 0);
  const maxBytes = intAtLeast('maxBytes', config.maxBytes ?? SHIPPER_DEFAULTS.maxBytes, 1);
  const retryBackoffMs = intAtLeast(
    'retryBackoffMs',
    config.retryBackoffMs ?? SHIPPER_DEFAULTS.retryBackoffMs,
    1,
  );
  const maxRetryBackoffMs = intAtLeast(
    'maxRetryBackoffMs',
    config.maxRetryBackoffMs ?? SHIPPER_DEFAULTS.maxRetryBackoffMs,
    retryBackoffMs,
  );
  const topicPrefix = config.topicPrefix ?? SHIPPER_DEFAULTS.topicPrefix;
  const savePositionEveryMs = intAtLeast(
    'savePositionEveryMs',
    config.savePositionEveryMs ?? SHIPPER_DEFAULTS.savePositionEveryMs,
    0,
  );
  /** When the position was last saved (performance.now()), and whether what was shipped since is saved. */
  let savedAt = Number.NEGATIVE_INFINITY;
  let unsaved = false;
  if (!SOURCE_ID.test(log.id))
    throw new TapwireKafkaError(
      'TAPWIRE_KAFKA_SHIPPER_CONFIG_INVALID',
      `the local log's id ${JSON.stringify(log.id)} is not a source id (${SOURCE_ID})`,
    );
  const source = log.id;
  const logger = deps.logger;

  const states = new Map<string, TopicState>();
  let topicNames: string[] = [];
  const counters = {
    shippedEvents: 0,
    shippedBatches: 0,
    shippedBytes: 0,
    droppedEvents: 0,
    sendErrors: 0,
    commitErrors: 0,
  };
  let connected = false;
  let lastError: string | undefined;
  // The round being sent: resent exactly as it was until Kafka acknowledges it.
  let pinned: Batch[] | undefined;
  let backoffMs = 0;
  let retryAt = 0;
  let dropsUnlogged = 0;
  let lastDropLogAt = Number.NEGATIVE_INFINITY;

  let loop: Promise<void> | undefined;
  let stopped: Promise<void> | undefined;
  let draining: Map<string, bigint> | undefined;
  let halted = false;
  let wake = new AbortController();

  function wakeUp(): void {
    wake.abort();
    wake = new AbortController();
  }

  function sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted || ms <= 0) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      signal.addEventListener('abort', done);
    });
  }

  function failed(err: unknown): number {
    lastError = (err as Error).message;
    backoffMs = backoffMs === 0 ? retryBackoffMs : Math.min(backoffMs * 2, maxRetryBackoffMs);
    // Equal jitter: shippers that failed together do not retry together.
    const delay = Math.round(backoffMs / 2 + (Math.random() * backoffMs) / 2);
    retryAt = Date.now() + delay;
    return delay;
  }

  /** savedPosition is where shipping of a topic resumes: the saved offset, or the oldest kept one. */
  function savedPosition(topic: string, saved: ReadonlyMap<string, bigint>): bigint {
    const low = log.lowWatermark(topic);
    const high = log.highWatermark(topic);
    const at = saved.get(topic);
    // Below the oldest kept offset: deleted by the cap after the last save (counted then).
    if (at === undefined || at < low) return low;
    if (at > high) {
      // Shipped events the log no longer holds (its unsynced tail lost to a power failure): new
      // events will reuse their offsets, so ingest may take them for resends of shipped ones.
      logger.error(
        { topic, shippedTo: at.toString(), highWatermark: high.toString() },
        'the local log ends before the shipped position: events written since may be taken for duplicates',
      );
      return high;
    }
    return at;
  }

  function discover(): void {
    let saved: Map<string, bigint> | undefined;
    for (const topic of log.topics()) {
      if (states.has(topic)) continue;
      saved ??= log.committed(SHIPPER_GROUP);
      const position = savedPosition(topic, saved);
      states.set(topic, {
        topic,
        kafkaTopic: topicPrefix + topic,
        position,
        next: position,
        buffer: [],
        headSince: undefined,
      });
    }
    if (saved) topicNames = [...states.keys()];
  }

  function pinnedBatch(s: TopicState): Batch | undefined {
    return pinned?.find((b) => b.state === s);
  }

  /** cutBatch reads until the topic's next batch is full or the log ends; undefined when nothing waits. */
  async function cutBatch(s: TopicState): Promise<Cut | undefined> {
    let count = 0;
    let bytes = 0;
    for (;;) {
      for (; count < s.buffer.length; count++) {
        const r = s.buffer[count]!;
        if (count > 0) {
          if (r.offset !== s.buffer[count - 1]!.offset + 1n) return { count, full: true };
          if (count >= maxBatchEvents || bytes + 1 + r.value.length > maxBatchBytes)
            return { count, full: true };
          bytes += 1 + r.value.length;
        } else {
          bytes = r.value.length;
        }
      }
      if (count >= maxBatchEvents) return { count, full: true };
      if (s.next >= log.highWatermark(s.topic)) break;
      const budget = Math.max(
        MIN_READ_BYTES,
        maxBatchBytes - bytes + READ_FRAME_BYTES * (maxBatchEvents - count),
      );
      const got = await log.read(s.topic, s.next, budget);
      const first = got[0];
      const last = got.at(-1);
      if (!first || !last || last.offset < s.next) break;
      if (first.offset > s.next) {
        // Deleted under the shipper (not by its cap, which moves `next` past what it deletes).
        dropped(Number(first.offset - s.next));
        if (s.buffer.length === 0 && !pinnedBatch(s)) s.position = first.offset;
      }
      for (const r of got) if (r.offset >= s.next) s.buffer.push(r);
      s.next = last.offset + 1n;
    }
    if (count === 0) return undefined;
    return { count, full: false };
  }

  function take(s: TopicState, count: number): Batch {
    const records = s.buffer.splice(0, count);
    s.headSince = undefined;
    const first = records[0]!;
    const encoded = encodeBatch({ source, firstSeq: first.offset, events: records.map((r) => r.value) });
    return {
      state: s,
      firstSeq: first.offset,
      end: records.at(-1)!.offset + 1n,
      events: records.length,
      firstTimestamp: first.timestamp,
      record: { topic: s.kafkaTopic, key: encoded.key, value: encoded.value, headers: encoded.headers },
    };
  }

  /** savePositions commits every topic's position; after a failure the shipper rewinds to what is saved. */
  async function savePositions(): Promise<boolean> {
    const positions = new Map<string, bigint>();
    for (const s of states.values()) positions.set(s.topic, s.position);
    try {
      await log.commit(SHIPPER_GROUP, positions);
      savedAt = performance.now();
      unsaved = false;
      return true;
    } catch (err) {
      counters.commitErrors++;
      const error = new TapwireKafkaError(
        'TAPWIRE_KAFKA_SHIPPER_POSITION_SAVE_FAILED',
        (err as Error).message,
        err,
      );
      const delay = failed(error);
      logger.warn(
        { code: error.code, err: error.message, retryInMs: delay },
        `${error.message}; shipping again from the last saved position`,
      );
      // What the log saved is all that is known: ship from there, as after a restart.
      const saved = log.committed(SHIPPER_GROUP);
      for (const s of states.values()) {
        if (pinnedBatch(s)) continue;
        s.position = savedPosition(s.topic, saved);
        s.next = s.position;
        s.buffer = [];
        s.headSince = undefined;
      }
      return false;
    }
  }

  async function deleteShipped(round: readonly Batch[]): Promise<void> {
    for (const { state: s } of round) {
      const second = log.segments(s.topic)[1];
      if (second === undefined || second.base > s.position) continue;
      try {
        await log.deleteBelow(s.topic, s.position);
      } catch (err) {
        logger.warn({ topic: s.topic, err: (err as Error).message }, 'could not delete shipped segments');
      }
    }
  }

  async function ship(round: Batch[]): Promise<void> {
    pinned = round;
    try {
      // Only what is on disk leaves: a power loss must never lose events Kafka already has,
      // or the log would give their sequence numbers to new events that ingest then skips.
      await log.sync?.();
      await deps.producer.send(round.map((b) => b.record));
    } catch (err) {
      // Stopped past its deadline: the send was cut short, not refused by Kafka.
      if (halted) return;
      counters.sendErrors++;
      connected = false;
      const delay = failed(err);
      const code = err instanceof TapwireKafkaError ? err.code : 'TAPWIRE_KAFKA_SEND_FAILED';
      logger.warn({ code, err: (err as Error).message, retryInMs: delay }, (err as Error).message);
      return;
    }
    pinned = undefined;
    connected = true;
    lastError = undefined;
    for (const b of round) {
      counters.shippedEvents += b.events;
      counters.shippedBatches++;
      counters.shippedBytes += b.record.value.length;
      if (b.end > b.state.position) b.state.position = b.end;
    }
    unsaved = true;
    if ((draining || performance.now() - savedAt >= savePositionEveryMs) && !(await savePositions())) return;
    backoffMs = 0;
    await deleteShipped(round);
  }

  function dropped(n: number): void {
    if (n <= 0) return;
    counters.droppedEvents += n;
    dropsUnlogged += n;
    const now = Date.now();
    if (now - lastDropLogAt < DROP_WARN_INTERVAL_MS) return;
    lastDropLogAt = now;
    const error = new TapwireKafkaError('TAPWIRE_KAFKA_SHIPPER_DROPPED');
    logger.warn(
      { code: error.code, dropped: dropsUnlogged, droppedTotal: counters.droppedEvents, maxBytes },
      `${error.message} (${dropsUnlogged} events since the last warning)`,
    );
    dropsUnlogged = 0;
  }

  function totalBytes(): number {
    let total = 0;
    for (const s of states.values()) for (const seg of log.segments(s.topic)) total += seg.bytes;
    return total;
  }

  async function oldestTimestamp(s: TopicState, base: bigint): Promise<number> {
    const batch = pinnedBatch(s);
    if (batch?.firstSeq === base) return batch.firstTimestamp;
    if (s.buffer[0]?.offset === base) return s.buffer[0].timestamp;
    const [first] = await log.read(s.topic, base, 1);
    return first?.timestamp ?? Number.POSITIVE_INFINITY;
  }

  /** enforceCap deletes the oldest closed segments (by first event's age, over all topics) while the log is over its cap. */
  async function enforceCap(): Promise<void> {
    let total = totalBytes();
    if (total <= maxBytes) return;
    let moved = false;
    let lost = 0;
    while (total > maxBytes) {
      let victim: TopicState | undefined;
      let victimAge = Number.POSITIVE_INFINITY;
      for (const s of states.values()) {
        const segs = log.segments(s.topic);
        if (segs.length < 2) continue;
        const ts = await oldestTimestamp(s, segs[0]!.base);
        if (victim === undefined || ts < victimAge) {
          victim = s;
          victimAge = ts;
        }
      }
      if (!victim) break;
      const [oldest, following] = log.segments(victim.topic);
      if (!oldest || !following) break;
      const freed = await log.deleteBelow(victim.topic, following.base);
      if (freed <= 0) break;
      total -= freed;
      const end = following.base;
      // Unshipped and not held by the round in flight (which is resent from memory).
      const shippedTo = pinnedBatch(victim)?.end ?? victim.position;
      // biome-ignore lint/complexity/useMathMinMax: offsets are bigints, which Math.max does not take
      const from = shippedTo > oldest.base ? shippedTo : oldest.base;
      if (end > from) lost += Number(end - from);
      if (victim.position < end) {
        victim.position = end;
        moved = true;
      }
      if (victim.next < end) victim.next = end;
      const keep = victim.buffer.findIndex((r) => r.offset >= end);
      if (keep !== 0) {
        victim.buffer = keep === -1 ? [] : victim.buffer.slice(keep);
        victim.headSince = undefined;
      }
    }
    dropped(lost);
    if (moved) await savePositions();
  }

  function drained(): boolean {
    if (!draining || pinned) return false;
    for (const [topic, target] of draining) {
      const s = states.get(topic);
      if (s && s.position < target) return false;
    }
    return true;
  }

  async function step(signal: AbortSignal): Promise<void> {
    discover();
    await enforceCap();
    if (halted) return;
    const wait = retryAt - Date.now();
    if (wait > 0) return sleep(Math.min(wait, MAX_SLEEP_MS), signal);
    if (pinned) return ship(pinned);
    const cuts: [TopicState, Cut][] = [];
    let ready = draining !== undefined;
    let lingerUntil = Number.POSITIVE_INFINITY;
    const now = Date.now();
    for (const s of states.values()) {
      const cut = await cutBatch(s);
      if (!cut) continue;
      cuts.push([s, cut]);
      s.headSince ??= Math.min(s.buffer[0]!.timestamp, now);
      if (cut.full || now - s.headSince >= lingerMs) ready = true;
      else lingerUntil = Math.min(lingerUntil, s.headSince + lingerMs);
    }
    // One ready batch takes every topic's along: each request has a fixed CPU cost (kafkajs's
    // encoding, the position save), and topics sent together stay together instead of taking turns.
    if (ready && cuts.length > 0) return ship(cuts.map(([s, cut]) => take(s, cut.count)));
    if (drained()) {
      // Caught up with what the log held at stop(): nothing more to do.
      halted = true;
      return;
    }
    if (lingerUntil !== Number.POSITIVE_INFINITY)
      return sleep(Math.min(lingerUntil - Date.now(), MAX_SLEEP_MS), signal);
    // Idle: save what was shipped since the last save once it is due.
    if (unsaved && performance.now() - savedAt >= savePositionEveryMs) {
      await savePositions();
      return;
    }
    if (!signal.aborted) await log.waitForAppend(topicNames, MAX_SLEEP_MS, signal);
  }

  async function run(): Promise<void> {
    while (!halted) {
      const signal = wake.signal;
      try {
        await step(signal);
      } catch (err) {
        // The local log failed (read, delete): wait and try again.
        const delay = failed(err);
        logger.warn(
          { err: (err as Error).message, retryInMs: delay },
          `shipping the local log failed: ${(err as Error).message}`,
        );
      }
    }
  }

  function headTimestamp(s: TopicState): number | undefined {
    return pinnedBatch(s)?.firstTimestamp ?? s.buffer[0]?.timestamp;
  }

  /** Approximate bytes of a topic's segments holding offsets ≥ its position (each segment pro rata). */
  function unshippedBytesOf(s: TopicState, high: bigint): number {
    const segs = log.segments(s.topic);
    let bytes = 0;
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i]!;
      const end = segs[i + 1]?.base ?? high;
      if (end <= s.position || end <= seg.base) continue;
      if (seg.base >= s.position) bytes += seg.bytes;
      else bytes += Math.round((seg.bytes * Number(end - s.position)) / Number(end - seg.base));
    }
    return bytes;
  }

  return {
    start() {
      if (stopped) return;
      loop ??= run();
    },

    stop(deadlineMs = 10_000) {
      stopped ??= (async () => {
        if (loop) {
          discover();
          draining = new Map([...states.keys()].map((t) => [t, log.highWatermark(t)]));
          retryAt = 0;
          wakeUp();
          let timer: NodeJS.Timeout | undefined;
          const expired = new Promise<void>((resolve) => {
            timer = setTimeout(resolve, deadlineMs);
          });
          await Promise.race([loop, expired]);
          clearTimeout(timer);
          halted = true;
          wakeUp();
        }
        // Closing fails a send still in flight, which ends the loop.
        const closing = deps.producer.close();
        await loop;
        await closing;
        if (unsaved) await savePositions();
        connected = false;
        if (dropsUnlogged > 0) {
          logger.warn(
            {
              code: 'TAPWIRE_KAFKA_SHIPPER_DROPPED',
              dropped: dropsUnlogged,
              droppedTotal: counters.droppedEvents,
            },
            `the local log exceeded its size cap: ${dropsUnlogged} oldest unshipped events deleted since the last warning`,
          );
          dropsUnlogged = 0;
        }
      })();
      return stopped;
    },

    stats() {
      discover();
      let unshippedEvents = 0;
      let unshippedBytes = 0;
      let oldest = Number.POSITIVE_INFINITY;
      for (const s of states.values()) {
        const high = log.highWatermark(s.topic);
        if (high <= s.position) continue;
        unshippedEvents += Number(high - s.position);
        unshippedBytes += unshippedBytesOf(s, high);
        const ts = headTimestamp(s);
        if (ts !== undefined && ts < oldest) oldest = ts;
      }
      return {
        ...counters,
        unshippedEvents,
        unshippedBytes,
        lagSeconds: oldest === Number.POSITIVE_INFINITY ? 0 : Math.max(0, (Date.now() - oldest) / 1000),
        connected,
        lastError,
      };
    },
  };
}

/**
 * createKafkaShipper ships a local log to Kafka: one record per batch of one topic's events
 * (encodeBatch: the log's id as source and key, the first event's offset as firstSeq), through an
 * idempotent producer, saving the shipped position only after Kafka acknowledged. See
 * createLogShipper for the loop.
 */
export function createKafkaShipper(
  deps: { kafka: Kafka; logger: KafkaLogger },
  log: ShipperLog,
  config: ShipperConfig = {},
): Shipper {
  const producer = createKafkaBatchProducer(deps, {
    compression: config.compression ?? SHIPPER_DEFAULTS.compression,
  });
  return createLogShipper({ producer, logger: deps.logger }, log, config);
}
