import { hostname } from 'node:os';
import { DEFAULT_TENANT, type DlqEvent, TOPICS } from '@tapwire/schema';
import {
  type ConsumerRunner,
  decodeBatch,
  type EventBatch,
  type EventSink,
  type PartitionBatch,
  type TopicPartitionOffset,
} from '@tapwire/stream';
import type { Logger } from '@tapwire/telemetry';
import type { IngestConfig } from './config.js';
import { reportAudit } from './day-audit.js';
import { JsonLines } from './json-lines.js';
import type { IngestMetrics } from './metrics.js';
import type { StoredBatch } from './rollup-repair.js';
import { dayOf, type Row, STREAMS, type Stream, singleSource } from './rows.js';
import { SeqRanges } from './seq-ranges.js';
import type { Warehouse } from './warehouse.js';

/** IngestStats are the pipeline's counters (also on /metrics). */
export interface IngestStats {
  inserted: number;
  deadLettered: number;
  skippedDuplicates: number;
  insertFailures: number;
  /** Rollups that had missed a stored insert and were given it again. */
  rollupRepairs: number;
  /** Rollups that still disagreed with the raw table after a stored insert (logged). */
  rollupMismatches: number;
  /** Days found holding more than the ledger when ClickHouse came back after an outage (logged). */
  ledgerMismatches: number;
  commits: number;
  bufferedRows: number;
  clickhouseUp: boolean;
}

interface Snapshot {
  groups: { stream: Stream; day: number; rows: JsonLines; done: boolean }[];
  offsets: TopicPartitionOffset[];
  deadLettered: number;
  /** Parts of failed inserts that were stored anyway, whose rollups are still to be checked. */
  stored: StoredBatch[];
  /** Sequence numbers of the batched events among the rows, per table and source (ledgerKey). */
  seqs: Map<string, SeqRanges>;
}

/** SourceState is what the pipeline knows of one source's batched events in one table since the assignment. */
interface SourceState {
  /** The highest sequence number seen, or found stored when the source was first seen. */
  highest: bigint;
  /** Events dead-lettered (bounded), so a resend does not dead-letter them again. */
  deadLettered: Set<bigint>;
}

// A DLQ record must itself fit the event size limit: raw bytes beyond this are cut, and the reason says so.
const DLQ_RAW_BYTES = 256 * 1024;

// Dead-lettered sequence numbers remembered per source and table; beyond, the set starts over.
const DEAD_LETTERS_REMEMBERED = 10_000;

const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;
const ledgerKey = (table: string, source: string) => `${table}\u0000${source}`;
// Every row line ends with its ledger identity (rows.ts sets these two fields last).
const ROW_IDENTITY = /"source_id":"([^"\\]*)","source_seq":"(\d+)"\}$/;

/**
 * createIngestPipeline turns consumed records into rows: single-event records and batched records
 * (@tapwire/stream event-batch.ts) alike. Valid events are buffered per table and day, invalid ones
 * go to the DLQ with their reason, and offsets are committed only after every row up to them is
 * inserted. Every row carries its ledger identity (source_id, source_seq), and events already
 * stored under theirs are skipped, so the warehouse is the ledger and nothing is inserted twice:
 * not after a crash or rebalance, nor when a shipper sends a batch again. Each insert holds one
 * table and one day, so ClickHouse writes it as one part.
 */
export function createIngestPipeline(
  deps: { warehouse: Warehouse; dlq: EventSink; logger: Logger; metrics: IngestMetrics },
  config: IngestConfig,
) {
  const prefix = config.topicPrefix;
  const streams = new Map(STREAMS.map((s) => [prefix + s.topic, s]));
  const dlqTopic = prefix + TOPICS.dlq;
  let runner: ConsumerRunner | undefined;
  // Rows wait as NDJSON bytes outside the heap: a fraction of the memory of an object per row,
  // and nothing for the garbage collector to copy (json-lines.ts).
  let buffers = new Map<Stream, Map<number, JsonLines>>();
  let buffered = 0;
  let pending = new Map<string, TopicPartitionOffset>();
  let deadLetteredSinceCommit = 0;
  // Single-event records: offsets per topic-partition already stored when it was assigned.
  let skip = new Map<string, Set<string>>();
  // Batched records: per table and source, what was seen since the assignment (ledgerKey).
  let sources = new Map<string, SourceState>();
  // Sequence numbers of buffered batched events, then of the snapshots being inserted: the events
  // on their way to the warehouse, which a lookup there would not find yet.
  let bufferedSeqs = new Map<string, SeqRanges>();
  let inserting: readonly Map<string, SeqRanges>[] = [];
  let flushing: Promise<void> | undefined;
  let flushAll = false;
  let timer: NodeJS.Timeout | undefined;
  let closing = false;
  let stopped = false;
  let auditing = Promise.resolve();
  const stats: IngestStats = {
    inserted: 0,
    deadLettered: 0,
    skippedDuplicates: 0,
    insertFailures: 0,
    rollupRepairs: 0,
    rollupMismatches: 0,
    ledgerMismatches: 0,
    commits: 0,
    bufferedRows: 0,
    clickhouseUp: true,
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  /**
   * deadLetter sends a rejected record, or one event of a batched record (`index`), to the DLQ
   * with its position. The id is deterministic: the same position always makes the same DLQ id.
   */
  function deadLetter(
    topic: string,
    partition: number,
    offset: string,
    raw: Buffer,
    reason: string,
    index?: number,
  ): void {
    let tenant = DEFAULT_TENANT;
    try {
      const t = (JSON.parse(raw.toString('utf8')) as { tenant?: unknown }).tenant;
      if (typeof t === 'string' && /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(t)) tenant = t;
    } catch {
      /* not JSON: default tenant */
    }
    const head = `dlq_${topic.replace(/[^A-Za-z0-9]/g, '_')}`;
    // A batched event's id keeps its whole position: the topic is cut, never the index.
    const tail = index === undefined ? '' : `_${partition}_${offset}_${index}`;
    const event: DlqEvent = {
      v: 1,
      id:
        index === undefined
          ? `${head}_${partition}_${offset}`.slice(0, 64)
          : head.slice(0, 64 - tail.length) + tail,
      ts: Date.now() * 1000,
      tenant,
      raw_base64: raw.subarray(0, DLQ_RAW_BYTES).toString('base64'),
      source_topic: topic.slice(0, 249),
      source_partition: partition,
      source_offset: offset,
      ...(index === undefined ? {} : { source_index: index }),
      reason: (raw.length > DLQ_RAW_BYTES
        ? `${reason.slice(0, 3900)} (raw bytes truncated to ${DLQ_RAW_BYTES} of ${raw.length})`
        : reason
      ).slice(0, 4096),
      consumer_group: config.groupId,
    };
    deps.dlq.emit(TOPICS.dlq, event);
    deadLetteredSinceCommit++;
    stats.deadLettered++;
    deps.metrics.event(topic, 'dead_lettered');
  }

  function add(stream: Stream, row: Row): void {
    let byDay = buffers.get(stream);
    if (!byDay) {
      byDay = new Map();
      buffers.set(stream, byDay);
    }
    const day = dayOf(row);
    let rows = byDay.get(day);
    if (!rows) {
      rows = new JsonLines();
      byDay.set(day, rows);
    }
    rows.push(JSON.stringify(row));
    buffered++;
  }

  /** reject dead-letters a record or a batched event, except on the DLQ topic itself. */
  function reject(
    topic: string,
    partition: number,
    offset: string,
    raw: Buffer,
    reason: string,
    index?: number,
  ): void {
    if (topic === dlqTopic) {
      // Never dead-letter the dead letters: count and move on.
      deps.logger.error({ offset, index, reason }, 'invalid record on the DLQ topic');
      deps.metrics.event(topic, 'dropped_invalid_dlq');
      return;
    }
    deadLetter(topic, partition, offset, raw, reason, index);
  }

  function skipped(topic: string): void {
    stats.skippedDuplicates++;
    deps.metrics.event(topic, 'skipped_duplicate');
  }

  /**
   * untilAnswered runs a ledger lookup until the warehouse answers (backoff with full jitter, as
   * inserts): an event cannot be judged new or stored without it. Consumption waits meanwhile.
   */
  async function untilAnswered<T>(lookup: () => Promise<T>): Promise<T> {
    let backoff = config.retryBackoffMs;
    for (;;) {
      try {
        return await lookup();
      } catch (err) {
        if (closing) throw err;
        const e = err as Error & { code?: string };
        if (stats.clickhouseUp)
          deps.logger.warn({ code: e.code, err: e.message }, 'ledger lookup failed; retrying with backoff');
        // Up again only once an insert went through, which then audits the days it wrote.
        stats.clickhouseUp = false;
        await sleep(backoff / 2 + Math.random() * (backoff / 2));
        backoff = Math.min(backoff * 2, config.maxRetryBackoffMs);
      }
    }
  }

  /**
   * onBatchRecord takes the events of one batched record. Per table and source the pipeline knows
   * the highest sequence number seen since the assignment: a batch above it is new (forward
   * progress, no lookup). When the source is first seen, or a batch starts at or below it (a
   * shipper resent after losing its position), the events of the batch's range that are stored
   * (warehouse), buffered or being inserted (memory) are skipped. On first sight the highest
   * stored sequence number from the batch on is looked up as well: events inserted before a crash
   * but not committed come back after the restart, and must be looked up too.
   */
  async function onBatchRecord(
    stream: Stream,
    topic: string,
    partition: number,
    offset: string,
    batch: EventBatch,
  ): Promise<void> {
    const n = batch.events.length;
    if (n === 0) return;
    const first = batch.firstSeq;
    const last = first + BigInt(n - 1);
    const ledger = ledgerKey(stream.table, batch.source);
    let state = sources.get(ledger);
    let stored: Set<string> | undefined;
    let inMemory: SeqRanges[] = [];
    if (!state || first <= state.highest) {
      // Captured before the lookup: an insert that completes meanwhile is found in one or the other.
      inMemory = [bufferedSeqs, ...inserting].flatMap((m) => m.get(ledger) ?? []);
      const to = state && state.highest < last ? state.highest : last;
      const [seqs, highest] = await untilAnswered(() =>
        Promise.all([
          deps.warehouse.storedSeqs(stream.table, batch.source, first, to),
          state ? undefined : deps.warehouse.highestSeq(stream.table, batch.source, first),
        ]),
      );
      stored = new Set(seqs);
      if (!state) {
        state = { highest: highest === undefined ? -1n : BigInt(highest), deadLettered: new Set() };
        sources.set(ledger, state);
      }
    }
    let ranges = bufferedSeqs.get(ledger);
    for (let i = 0; i < n; i++) {
      const seq = first + BigInt(i);
      if (
        stored &&
        (stored.has(seq.toString()) ||
          inMemory.some((r) => r.has(seq)) ||
          ranges?.has(seq) ||
          state.deadLettered.has(seq))
      ) {
        skipped(topic);
        continue;
      }
      const raw = batch.events[i]!;
      const decoded = stream.codec.decode(raw);
      if (decoded.ok) {
        add(stream, stream.toRow(decoded.event, partition, offset, batch.source, seq.toString()));
        if (!ranges) {
          ranges = new SeqRanges();
          bufferedSeqs.set(ledger, ranges);
        }
        ranges.add(seq);
      } else {
        reject(topic, partition, offset, raw, `${decoded.code}: ${decoded.reason}`, i);
        if (state.deadLettered.size >= DEAD_LETTERS_REMEMBERED) state.deadLettered.clear();
        state.deadLettered.add(seq);
      }
    }
    if (last > state.highest) state.highest = last;
  }

  async function onBatch(batch: PartitionBatch): Promise<void> {
    const stream = streams.get(batch.topic);
    if (!stream) return;
    const tp = key(batch.topic, batch.partition);
    const already = skip.get(tp);
    for (const m of batch.messages) {
      const raw = m.value ?? Buffer.alloc(0);
      const record = decodeBatch(m.headers, m.value);
      if (record.kind === 'batch') {
        await onBatchRecord(stream, batch.topic, batch.partition, m.offset, record.batch);
        continue;
      }
      if (record.kind === 'invalid') {
        reject(batch.topic, batch.partition, m.offset, raw, `invalid_batch: ${record.reason}`);
        continue;
      }
      if (already?.has(m.offset)) {
        already.delete(m.offset);
        skipped(batch.topic);
        continue;
      }
      const decoded = stream.codec.decode(raw);
      if (decoded.ok) add(stream, stream.toRow(decoded.event, batch.partition, m.offset));
      else reject(batch.topic, batch.partition, m.offset, raw, `${decoded.code}: ${decoded.reason}`);
    }
    const last = batch.messages[batch.messages.length - 1];
    if (last)
      pending.set(tp, {
        topic: batch.topic,
        partition: batch.partition,
        offset: String(BigInt(last.offset) + 1n),
      });
    stats.bufferedRows = buffered;
    if (buffered >= config.maxBufferedRows) runner?.pause();
    if (buffered >= config.maxBatchRows) void flush(false);
  }

  function take(): Snapshot {
    const groups: Snapshot['groups'] = [];
    for (const [stream, byDay] of buffers) {
      for (const day of [...byDay.keys()].sort((a, b) => a - b))
        groups.push({ stream, day, rows: byDay.get(day)!, done: false });
    }
    const snapshot = {
      groups,
      offsets: [...pending.values()],
      deadLettered: deadLetteredSinceCommit,
      stored: [],
      seqs: bufferedSeqs,
    };
    inserting = [...inserting, bufferedSeqs];
    buffers = new Map();
    pending = new Map();
    bufferedSeqs = new Map();
    buffered = 0;
    deadLetteredSinceCommit = 0;
    stats.bufferedRows = 0;
    return snapshot;
  }

  /** inserted forgets a snapshot's batched events as on their way: the warehouse holds them now. */
  function inserted(snapshot: Snapshot): void {
    inserting = inserting.filter((m) => m !== snapshot.seqs);
  }

  /**
   * dropStored removes from unfinished groups the rows a failed insert stored anyway: ClickHouse
   * can commit a part and then lose the connection before answering (a server shutting down), and
   * inserting those rows again would count them twice until a merge, and twice in the rollups.
   * The raw table is the ledger, as after a crash.
   */
  async function dropStored(snapshot: Snapshot): Promise<void> {
    for (const g of snapshot.groups) {
      if (g.done) continue;
      const ranges = new Map<string, { min: bigint; max: bigint }>();
      const lines = g.rows.lines();
      const identities = lines.map((line) => {
        const m = ROW_IDENTITY.exec(line);
        if (!m) return '';
        const [source, seq] = [m[1]!, BigInt(m[2]!)];
        const r = ranges.get(source);
        if (!r) ranges.set(source, { min: seq, max: seq });
        else {
          if (seq < r.min) r.min = seq;
          if (seq > r.max) r.max = seq;
        }
        return `${source}\u0000${m[2]}`;
      });
      const stored = new Set<string>();
      for (const [source, r] of ranges) {
        for (const s of await deps.warehouse.storedSeqs(g.stream.table, source, r.min, r.max))
          stored.add(`${source}\u0000${s}`);
      }
      if (stored.size === 0) continue;
      // Only this group's rows: the range may hold rows of the source that other inserts stored.
      const mine = new Map<string, string[]>();
      const kept: string[] = [];
      lines.forEach((line, i) => {
        const identity = identities[i]!;
        if (!stored.has(identity)) {
          kept.push(line);
          return;
        }
        const [source, seq] = identity.split('\u0000') as [string, string];
        const list = mine.get(source);
        if (list) list.push(seq);
        else mine.set(source, [seq]);
      });
      if (mine.size === 0) continue;
      if (g.stream.rollups.length > 0)
        snapshot.stored.push({ stream: g.stream, day: g.day, seqs: mine, pending: [...g.stream.rollups] });
      const before = g.rows.count;
      g.rows = JsonLines.from(kept);
      stats.skippedDuplicates += before - g.rows.count;
      deps.logger.info(
        { table: g.stream.table, rows: before - g.rows.count },
        'rows of a failed insert were stored after all; not inserting them again',
      );
      if (g.rows.count === 0) g.done = true;
    }
  }

  /** checkRollups makes every rollup of a stored batch agree with the raw table (see rollup-repair.ts). */
  async function checkRollups(batches: StoredBatch[]): Promise<void> {
    for (const b of batches) {
      while (b.pending.length > 0) {
        const rollup = b.pending[0]!;
        const outcome = await deps.warehouse.checkRollup(b, rollup, deps.logger);
        if (outcome === 'repaired') {
          stats.rollupRepairs++;
          deps.metrics.rollupChecked(rollup.table, 'repaired');
        }
        if (outcome === 'unresolved') {
          stats.rollupMismatches++;
          deps.metrics.rollupChecked(rollup.table, 'mismatch');
          deps.logger.error(
            { table: rollup.table, from: b.stream.table, day: b.day },
            'rollup disagrees with the raw table after a failed insert; rebuild it with `tapwire replay --clear`',
          );
        }
        b.pending.shift();
      }
    }
  }

  /**
   * auditDays checks the days just written against the ledger after an outage: a ClickHouse
   * restart can bring back parts deleted shortly before (18.16, see day-partition.ts in
   * @tapwire/clickhouse), which no insert of ours would notice. It runs beside the inserts, one
   * audit at a time, and only logs its own failures: it never holds ingest up.
   */
  function auditDays(snapshot: Snapshot): void {
    const days = new Map<string, { stream: Stream; day: number }>();
    for (const g of snapshot.groups) days.set(`${g.stream.table}/${g.day}`, { stream: g.stream, day: g.day });
    auditing = auditing.then(async () => {
      for (const { stream, day } of days.values()) {
        try {
          if (reportAudit(await deps.warehouse.auditDay(stream, day), deps.logger, deps.metrics))
            stats.ledgerMismatches++;
        } catch (err) {
          deps.logger.warn(
            { table: stream.table, err: (err as Error).message },
            'could not audit a day after an outage',
          );
        }
      }
    });
  }

  async function insertAll(snapshot: Snapshot): Promise<void> {
    let backoff = config.retryBackoffMs;
    for (let attempt = 0; ; attempt++) {
      const byTable = new Map<Stream, Snapshot['groups']>();
      for (const g of snapshot.groups)
        if (!g.done) byTable.set(g.stream, [...(byTable.get(g.stream) ?? []), g]);
      try {
        if (attempt > 0) {
          await dropStored(snapshot);
          await checkRollups(snapshot.stored);
        }
        // Tables in parallel, a table's days one after another; each group is one insert, one part.
        await Promise.all(
          [...byTable.values()].map(async (groups) => {
            for (const g of groups) {
              if (g.done) continue;
              const started = performance.now();
              await deps.warehouse.insert(g.stream.table, g.rows.body());
              g.done = true;
              stats.inserted += g.rows.count;
              deps.metrics.inserted(g.stream.topic, g.rows.count, (performance.now() - started) / 1000);
            }
          }),
        );
        if (!stats.clickhouseUp) {
          deps.logger.info({}, 'ClickHouse is back; inserts resumed');
          auditDays(snapshot);
        }
        stats.clickhouseUp = true;
        return;
      } catch (err) {
        const e = err as Error & { code?: string };
        stats.insertFailures++;
        deps.metrics.insertFailed();
        if (stats.clickhouseUp) {
          deps.logger.warn(
            { code: e.code, err: e.message },
            'insert failed; consumption paused, retrying with backoff',
          );
        }
        stats.clickhouseUp = false;
        runner?.pause();
        if (stopped) throw err;
        // Full jitter: spread retries of many instances over the backoff window.
        await sleep(backoff / 2 + Math.random() * (backoff / 2));
        backoff = Math.min(backoff * 2, config.maxRetryBackoffMs);
      }
    }
  }

  /**
   * flush inserts what is buffered, then commits the offsets it covers; one runs at a time. Rows
   * that arrive meanwhile wait for the next full batch or tick, so inserts stay large (ClickHouse
   * spends about 30% more CPU per row on inserts of 7,000 rows than on 30,000); with `all`
   * (shutdown, rebalance) it goes on until nothing is left.
   */
  function flush(all = true): Promise<void> {
    if (all) flushAll = true;
    if (flushing) return flushing;
    const run = (async () => {
      let first = true;
      while (buffered > 0 || pending.size > 0) {
        if (!first && !flushAll && buffered < config.maxBatchRows) break;
        first = false;
        const snapshot = take();
        await insertAll(snapshot);
        inserted(snapshot);
        if (snapshot.deadLettered > 0) await deps.dlq.flush();
        try {
          await runner?.commit(snapshot.offsets);
          stats.commits++;
        } catch (err) {
          // A rebalance took the partition: its new owner skips what is already in ClickHouse.
          deps.logger.warn({ err: (err as Error).message }, 'offset commit failed');
        }
      }
      flushAll = false;
      runner?.resume();
    })();
    // Cleared only by the run that set it: a run that finishes synchronously (nothing buffered)
    // must not leave a settled promise behind that every later flush() would return.
    flushing = run;
    void run
      .catch(() => {})
      .finally(() => {
        if (flushing === run) flushing = undefined;
      });
    return run;
  }

  /**
   * onAssigned flushes what is buffered, then loads, per new partition, the single-event records
   * from its committed offset on that the warehouse already holds (source `partition:<p>`), and
   * forgets the sources of batched records: each is looked up again when first seen.
   */
  async function onAssigned(assignment: TopicPartitionOffset[]): Promise<void> {
    await flush().catch(() => {});
    const next = new Map<string, Set<string>>();
    for (const a of assignment) {
      const stream = streams.get(a.topic);
      if (!stream) continue;
      const from = BigInt(a.offset) < 0n ? 0n : BigInt(a.offset);
      const stored = await deps.warehouse.storedSeqs(stream.table, singleSource(a.partition), from);
      if (stored.length > 0) next.set(key(a.topic, a.partition), new Set(stored));
    }
    skip = next;
    sources = new Map();
    const skipped = [...next.values()].reduce((n, s) => n + s.size, 0);
    deps.logger.info({ partitions: assignment.length, alreadyStored: skipped }, 'partitions assigned');
  }

  return {
    stats: () => ({ ...stats }),
    topics: () => [...streams.keys()],
    attach(r: ConsumerRunner) {
      runner = r;
    },
    onBatch,
    onAssigned,
    flush,
    start() {
      timer = setInterval(() => {
        if (buffered > 0 || pending.size > 0) void flush(false);
      }, config.flushIntervalMs);
      timer.unref();
    },
    async stop(): Promise<void> {
      closing = true;
      if (timer) clearInterval(timer);
      await flush();
      stopped = true;
    },
    instance: `${hostname()}:${process.pid}`,
  };
}

/** IngestPipeline is the pipeline built by createIngestPipeline. */
export type IngestPipeline = ReturnType<typeof createIngestPipeline>;
