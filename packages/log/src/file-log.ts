import { EventEmitter } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { type FileHandle, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

/**
 * The embedded log: one append-only log per topic (one partition), stored as segment files named
 * by their first offset. Each record is a frame
 *
 *   u32 length of what follows the CRC · u32 CRC-32 of it · u64 offset · f64 append time (ms)
 *   · u32 key length (0xFFFFFFFF = no key) · key · value
 *
 * On open, the active segment is scanned and cut at the first torn or corrupt frame, so a crash
 * in the middle of a write loses only that unacknowledged write. Offsets are dense and start at 0,
 * like a Kafka partition's; consumer groups keep their committed offsets in small JSON files.
 */

const HEADER = 4 + 4 + 8 + 8 + 4;
const NO_KEY = 0xffff_ffff;
const SEGMENT_SUFFIX = '.log';
/** One sparse index entry per this many bytes of a segment. */
const INDEX_EVERY_BYTES = 64 * 1024;

/** FsyncPolicy says when appended bytes are forced to disk (a killed process never loses a write; power loss may). */
export type FsyncPolicy = 'always' | 'interval' | 'never';

/** FileLogOptions configures the embedded log. */
export interface FileLogOptions {
  readonly dir: string;
  /** A segment is closed and a new one started past this size. */
  readonly segmentBytes?: number;
  readonly fsync?: FsyncPolicy;
  /** With fsync `interval`: how often written bytes are forced to disk. */
  readonly fsyncIntervalMs?: number;
  /** Closed segments whose newest record is older than this are deleted (0 keeps them). */
  readonly retentionMs?: number;
  /** Oldest closed segments are deleted while a topic holds more than this (0: no limit). */
  readonly retentionBytes?: number;
  /** How often retention runs. */
  readonly retentionCheckMs?: number;
  /** Topics retention never deletes from (state kept as a log: alert state, silences). */
  readonly keep?: (topic: string) => boolean;
}

/** AppendRecord is what a producer appends. */
export interface AppendRecord {
  readonly key: string | null;
  readonly value: string | Buffer;
}

/** LogRecord is a stored record. */
export interface LogRecord {
  readonly offset: bigint;
  readonly timestamp: number;
  readonly key: Buffer | null;
  readonly value: Buffer;
}

interface Segment {
  base: bigint;
  path: string;
  size: number;
  /** Sparse index: [offset, byte position] pairs in offset order, built when first needed. */
  index: [bigint, number][] | null;
}

interface Partition {
  topic: string;
  dir: string;
  segments: Segment[];
  next: bigint;
  handle: FileHandle | null;
  /** Appends run one after another. */
  tail: Promise<unknown>;
  dirty: boolean;
}

/** FileLog is the embedded log. */
export interface FileLog {
  readonly dir: string;
  /** append stores records in order and resolves with the first offset once they are written. */
  append(topic: string, records: readonly AppendRecord[]): Promise<bigint>;
  /** read returns records from `offset` (or the oldest kept one): at least one, then as many as fit in `maxBytes`. */
  read(topic: string, offset: bigint, maxBytes?: number): Promise<LogRecord[]>;
  /** highWatermark is the offset the next record of the topic will get. */
  highWatermark(topic: string): bigint;
  /** lowWatermark is the oldest offset still kept. */
  lowWatermark(topic: string): bigint;
  /** offsetForTime is the first offset appended at or after `ms` (the high watermark if none). */
  offsetForTime(topic: string, ms: number): Promise<bigint>;
  topics(): string[];
  /** committed returns a consumer group's committed offsets by topic. */
  committed(group: string): Map<string, bigint>;
  commit(group: string, offsets: ReadonlyMap<string, bigint>): Promise<void>;
  deleteGroup(group: string): Promise<void>;
  /** waitForAppend resolves at the next append to any of `topics`, or after `ms`. */
  waitForAppend(topics: readonly string[], ms: number, signal?: AbortSignal): Promise<void>;
  /** enforceRetention deletes closed segments past the retention limits; returns what it deleted. */
  enforceRetention(now?: number): Promise<string[]>;
  sizeBytes(topic: string): number;
  close(): Promise<void>;
}

/** LogError is a refusal or failure of the embedded log, with a code to act on. */
export class LogError extends Error {
  constructor(
    readonly code: 'TAPWIRE_LOG_LOCKED' | 'TAPWIRE_LOG_BAD_TOPIC' | 'TAPWIRE_LOG_CLOSED',
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'LogError';
  }
}

const TOPIC_NAME = /^[A-Za-z0-9._-]{1,200}$/;

function segmentName(base: bigint): string {
  return `${base.toString().padStart(20, '0')}${SEGMENT_SUFFIX}`;
}

/** encodeFrames writes records as consecutive frames into one buffer; `starts` are their positions in it. */
function encodeFrames(
  records: readonly AppendRecord[],
  first: bigint,
  now: number,
): { buf: Buffer; starts: number[] } {
  let total = 0;
  for (const r of records)
    total +=
      HEADER +
      (r.key === null ? 0 : Buffer.byteLength(r.key)) +
      (typeof r.value === 'string' ? Buffer.byteLength(r.value) : r.value.length);
  const buf = Buffer.allocUnsafe(total);
  const starts: number[] = [];
  let pos = 0;
  let offset = first;
  for (const r of records) {
    starts.push(pos);
    const body = pos + 8;
    buf.writeBigUInt64LE(offset, body);
    buf.writeDoubleLE(now, body + 8);
    let end = body + 20;
    if (r.key === null) buf.writeUInt32LE(NO_KEY, body + 16);
    else {
      const n = buf.write(r.key, end);
      buf.writeUInt32LE(n, body + 16);
      end += n;
    }
    end += typeof r.value === 'string' ? buf.write(r.value, end) : r.value.copy(buf, end);
    buf.writeUInt32LE(end - body, pos);
    buf.writeUInt32LE(crc32(buf.subarray(body, end)), pos + 4);
    pos = end;
    offset++;
  }
  return { buf, starts };
}

function decodeFrames(buf: Buffer): { records: (LogRecord & { end: number })[] } {
  const records: (LogRecord & { end: number })[] = [];
  let pos = 0;
  while (pos + 8 <= buf.length) {
    const len = buf.readUInt32LE(pos);
    if (len < HEADER - 8 || pos + 8 + len > buf.length) break;
    const body = buf.subarray(pos + 8, pos + 8 + len);
    if (crc32(body) !== buf.readUInt32LE(pos + 4)) break;
    const keyLen = body.readUInt32LE(16);
    const keyBytes = keyLen === NO_KEY ? 0 : keyLen;
    if (20 + keyBytes > body.length) break;
    pos += 8 + len;
    records.push({
      offset: body.readBigUInt64LE(0),
      timestamp: body.readDoubleLE(8),
      // Views into the freshly read buffer (never reused): no copy per record.
      key: keyLen === NO_KEY ? null : body.subarray(20, 20 + keyLen),
      value: body.subarray(20 + keyBytes),
      end: pos,
    });
  }
  return { records };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** takeLock claims the directory for this process, refusing when another live process holds it. */
function takeLock(dir: string): string {
  const path = join(dir, 'LOCK');
  if (existsSync(path)) {
    const pid = Number(readFileSync(path, 'utf8').trim());
    if (pid && pid !== process.pid && processAlive(pid)) {
      throw new LogError(
        'TAPWIRE_LOG_LOCKED',
        `${dir} is in use by process ${pid}; one process owns an embedded log (run the services with \`tapwire start\`, or move to Kafka)`,
      );
    }
  }
  writeFileSync(path, String(process.pid));
  return path;
}

/** openFileLog opens (creating if needed) the log in `options.dir`, recovering from a crash. */
export async function openFileLog(options: FileLogOptions): Promise<FileLog> {
  const dir = options.dir;
  const segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024;
  const fsync = options.fsync ?? 'interval';
  const topicsDir = join(dir, 'topics');
  const groupsDir = join(dir, 'groups');
  mkdirSync(topicsDir, { recursive: true });
  mkdirSync(groupsDir, { recursive: true });
  const lockPath = takeLock(dir);
  const partitions = new Map<string, Partition>();
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const groups = new Map<string, Map<string, bigint>>();
  let closed = false;

  async function load(topic: string): Promise<Partition> {
    const pdir = join(topicsDir, topic);
    mkdirSync(pdir, { recursive: true });
    const names = (await readdir(pdir)).filter((n) => n.endsWith(SEGMENT_SUFFIX)).sort();
    const segments: Segment[] = [];
    for (const name of names) {
      const path = join(pdir, name);
      segments.push({
        base: BigInt(name.slice(0, -SEGMENT_SUFFIX.length)),
        path,
        size: (await stat(path)).size,
        index: null,
      });
    }
    let next = 0n;
    const last = segments.at(-1);
    if (last) {
      // Recovery: keep the longest valid prefix of the active segment.
      const buf = await readFile(last.path);
      const { records } = decodeFrames(buf);
      let end = 0;
      let expected = last.base;
      for (const r of records) {
        if (r.offset !== expected) break;
        expected++;
        end = r.end;
      }
      if (end < buf.length) {
        const h = await open(last.path, 'r+');
        await h.truncate(end);
        await h.sync();
        await h.close();
        last.size = end;
      }
      next = expected;
    }
    return { topic, dir: pdir, segments, next, handle: null, tail: Promise.resolve(), dirty: false };
  }

  for (const topic of await readdir(topicsDir)) partitions.set(topic, await load(topic));
  for (const file of await readdir(groupsDir)) {
    if (!file.endsWith('.json')) continue;
    const raw = JSON.parse(await readFile(join(groupsDir, file), 'utf8')) as Record<string, string>;
    groups.set(
      decodeURIComponent(file.slice(0, -5)),
      new Map(Object.entries(raw).map(([t, o]) => [t, BigInt(o)])),
    );
  }

  async function partitionOf(topic: string): Promise<Partition> {
    if (!TOPIC_NAME.test(topic))
      throw new LogError('TAPWIRE_LOG_BAD_TOPIC', `not a topic name: ${JSON.stringify(topic)}`);
    const known = partitions.get(topic);
    if (known) return known;
    const loaded = await load(topic);
    // Two first appends to a new topic may both load it: the first to finish is the one kept.
    if (!partitions.has(topic)) partitions.set(topic, loaded);
    return partitions.get(topic)!;
  }

  async function activeHandle(p: Partition, incoming: number): Promise<FileHandle> {
    let seg = p.segments.at(-1);
    if (!seg || (seg.size > 0 && seg.size + incoming > segmentBytes)) {
      if (p.handle) {
        if (fsync !== 'never') await p.handle.sync();
        await p.handle.close();
        p.handle = null;
      }
      seg = { base: p.next, path: join(p.dir, segmentName(p.next)), size: 0, index: [] };
      p.segments.push(seg);
    }
    if (!p.handle) p.handle = await open(seg.path, 'a');
    return p.handle;
  }

  const syncTimer =
    fsync === 'interval'
      ? setInterval(() => {
          for (const p of partitions.values()) {
            if (!p.dirty || !p.handle) continue;
            p.dirty = false;
            const h = p.handle;
            p.tail = p.tail.then(() => h.datasync().catch(() => {}));
          }
        }, options.fsyncIntervalMs ?? 1000)
      : undefined;
  syncTimer?.unref();

  async function segmentIndex(seg: Segment): Promise<[bigint, number][]> {
    if (seg.index) return seg.index;
    const buf = await readFile(seg.path);
    const index: [bigint, number][] = [];
    let lastIndexed = -INDEX_EVERY_BYTES;
    let start = 0;
    for (const r of decodeFrames(buf).records) {
      if (start - lastIndexed >= INDEX_EVERY_BYTES) {
        index.push([r.offset, start]);
        lastIndexed = start;
      }
      start = r.end;
    }
    seg.index = index;
    return index;
  }

  function segmentFor(p: Partition, offset: bigint): number {
    let i = p.segments.length - 1;
    while (i > 0 && p.segments[i]!.base > offset) i--;
    return i;
  }

  function readRange(path: string, position: number, length: number): Buffer {
    const fd = openSync(path, 'r');
    try {
      const buf = Buffer.allocUnsafe(length);
      const n = readSync(fd, buf, 0, length, position);
      return buf.subarray(0, n);
    } finally {
      closeSync(fd);
    }
  }

  const log: FileLog = {
    dir,
    async append(topic, records) {
      if (closed) throw new LogError('TAPWIRE_LOG_CLOSED', 'the log is closed');
      const p = await partitionOf(topic);
      const run = p.tail.then(async () => {
        const first = p.next;
        if (records.length === 0) return first;
        const { buf, starts } = encodeFrames(records, first, Date.now());
        const h = await activeHandle(p, buf.length);
        const seg = p.segments.at(-1)!;
        const position = seg.size;
        await h.write(buf, 0, buf.length);
        if (fsync === 'always') await h.datasync();
        else p.dirty = true;
        // Index entries inside a large batch too, so a read starts near its offset, never a batch away.
        if (seg.index) {
          let last = seg.index.at(-1)?.[1] ?? -INDEX_EVERY_BYTES;
          starts.forEach((start, i) => {
            if (position + start - last < INDEX_EVERY_BYTES) return;
            last = position + start;
            seg.index?.push([first + BigInt(i), last]);
          });
        }
        seg.size += buf.length;
        p.next = first + BigInt(records.length);
        events.emit('append', topic);
        return first;
      });
      p.tail = run.catch(() => {});
      return run;
    },

    async read(topic, offset, maxBytes = 1024 * 1024) {
      const p = await partitionOf(topic);
      await p.tail;
      const out: LogRecord[] = [];
      if (p.segments.length === 0 || offset >= p.next) return out;
      // biome-ignore lint/complexity/useMathMinMax: offsets are bigints, which Math.max does not take
      let from = offset < p.segments[0]!.base ? p.segments[0]!.base : offset;
      let budget = maxBytes;
      while (budget > 0 && from < p.next) {
        const seg = p.segments[segmentFor(p, from)]!;
        let position = 0;
        for (const [o, pos] of await segmentIndex(seg)) {
          if (o > from) break;
          position = pos;
        }
        // Whole frames from the nearest index entry: at least one, about the byte budget.
        const want = Math.min(seg.size - position, Math.max(budget, 64 * 1024) + INDEX_EVERY_BYTES);
        let { records } = decodeFrames(readRange(seg.path, position, want));
        if (!records.some((r) => r.offset >= from))
          records = decodeFrames(readRange(seg.path, position, seg.size - position)).records;
        let progressed = false;
        for (const r of records) {
          if (r.offset < from) continue;
          const cost = r.value.length + (r.key?.length ?? 0) + HEADER;
          // At least one record; after that, none that would go over the budget.
          if (out.length > 0 && cost > budget) {
            budget = 0;
            break;
          }
          out.push({ offset: r.offset, timestamp: r.timestamp, key: r.key, value: r.value });
          budget -= cost;
          from = r.offset + 1n;
          progressed = true;
        }
        if (!progressed) break;
      }
      return out;
    },

    highWatermark: (topic) => partitions.get(topic)?.next ?? 0n,
    lowWatermark(topic) {
      const p = partitions.get(topic);
      return p?.segments[0]?.base ?? p?.next ?? 0n;
    },

    async offsetForTime(topic, ms) {
      const p = await partitionOf(topic);
      await p.tail;
      for (const seg of p.segments) {
        // A segment's file time is its newest append: older segments cannot hold the answer.
        if (seg !== p.segments.at(-1) && (await stat(seg.path)).mtimeMs < ms) continue;
        const found = decodeFrames(readRange(seg.path, 0, seg.size)).records.find((r) => r.timestamp >= ms);
        if (found) return found.offset;
      }
      return p.next;
    },

    topics: () => [...partitions.keys()].sort(),

    committed: (group) => new Map(groups.get(group) ?? []),

    async commit(group, offsets) {
      const current = new Map(groups.get(group) ?? []);
      for (const [t, o] of offsets) current.set(t, o);
      groups.set(group, current);
      const path = join(groupsDir, `${encodeURIComponent(group)}.json`);
      const tmp = `${path}.${process.pid}.tmp`;
      const h = await open(tmp, 'w');
      await h.writeFile(JSON.stringify(Object.fromEntries([...current].map(([t, o]) => [t, o.toString()]))));
      if (fsync !== 'never') await h.sync();
      await h.close();
      await rename(tmp, path);
    },

    async deleteGroup(group) {
      groups.delete(group);
      await rm(join(groupsDir, `${encodeURIComponent(group)}.json`), { force: true });
    },

    waitForAppend(topics, ms, signal) {
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          events.off('append', onAppend);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const onAppend = (topic: string) => {
          if (topics.includes(topic)) done();
        };
        const timer = setTimeout(done, ms);
        events.on('append', onAppend);
        signal?.addEventListener('abort', done);
      });
    },

    async enforceRetention(now = Date.now()) {
      const deleted: string[] = [];
      for (const p of partitions.values()) {
        if (options.keep?.(p.topic)) continue;
        await p.tail;
        let total = p.segments.reduce((n, s) => n + s.size, 0);
        while (p.segments.length > 1) {
          const oldest = p.segments[0]!;
          const tooOld =
            (options.retentionMs ?? 0) > 0 && (await stat(oldest.path)).mtimeMs < now - options.retentionMs!;
          const tooBig = (options.retentionBytes ?? 0) > 0 && total > options.retentionBytes!;
          if (!tooOld && !tooBig) break;
          await rm(oldest.path, { force: true });
          p.segments.shift();
          total -= oldest.size;
          deleted.push(`${p.topic}/${segmentName(oldest.base)}`);
        }
      }
      return deleted;
    },

    sizeBytes: (topic) => partitions.get(topic)?.segments.reduce((n, s) => n + s.size, 0) ?? 0,

    async close() {
      if (closed) return;
      closed = true;
      if (syncTimer) clearInterval(syncTimer);
      if (retentionTimer) clearInterval(retentionTimer);
      for (const p of partitions.values()) {
        await p.tail;
        if (p.handle) {
          if (fsync !== 'never') await p.handle.sync().catch(() => {});
          await p.handle.close();
          p.handle = null;
        }
      }
      await rm(lockPath, { force: true });
    },
  };

  const retentionTimer =
    (options.retentionMs ?? 0) > 0 || (options.retentionBytes ?? 0) > 0
      ? setInterval(() => void log.enforceRetention().catch(() => {}), options.retentionCheckMs ?? 60_000)
      : undefined;
  retentionTimer?.unref();
  return log;
}
