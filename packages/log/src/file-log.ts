import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  closeSync,
  constants,
  existsSync,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { type LocalRecord, type LocalSegment, type ShipperLog, SOURCE_ID } from '@tapwire/stream';
import { takeDirLock } from './dir-lock.js';
import { LogError } from './errors.js';

/**
 * The embedded log: one append-only log per topic (one partition), stored as segment files named
 * by their first offset. Each record is a frame
 *
 *   u32 length of what follows the CRC · u32 CRC-32 of it · u64 offset · f64 append time (ms)
 *   · u32 key length (0xFFFFFFFF = no key) · key · value
 *
 * Appends are synchronous: one write(2) per append, from the caller's thread, so the proxy's
 * request thread can write its events first (an event exists once the write returns; a killed
 * process keeps it in the page cache, fsync covers power loss). A failed write is cut back off
 * the segment, so the file never holds a torn frame before later ones.
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
  /** 'always': fdatasync after each append (on the appending thread); 'interval' (default): in the background; 'never'. */
  readonly fsync?: FsyncPolicy;
  /** With fsync `interval`: how often written bytes are forced to disk (default 1000 ms). */
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

/** LogRecord is a stored record (the local log's record, which a shipper reads). */
export type LogRecord = LocalRecord;

interface Segment {
  base: bigint;
  path: string;
  size: number;
  /** Sparse index: [offset, byte position] pairs in offset order, built when first needed. */
  index: [bigint, number][] | null;
}

/** An open segment file. It is closed only once no background fdatasync uses it (its fd number could be reused). */
interface Handle {
  readonly fd: number;
  /** Written since the last fdatasync started. */
  dirty: boolean;
  /** A background fdatasync is running on it. */
  syncing: boolean;
  /** No longer written: closed when its sync (if any) is done. */
  retired: boolean;
}

interface Partition {
  topic: string;
  dir: string;
  segments: Segment[];
  next: bigint;
  handle: Handle | null;
}

/** FileLog is the embedded log; as the proxy's local log it is what a shipper reads (ShipperLog). */
export interface FileLog extends ShipperLog {
  readonly dir: string;
  /** id names this log as an event source (file `<dir>/ID`, created at first open). */
  readonly id: string;
  /**
   * appendSync stores records in order with one write and returns the first offset once they are
   * written (in the page cache; see FsyncPolicy). A failed write throws TAPWIRE_LOG_WRITE_FAILED
   * and leaves the log as it was: the next append retries.
   */
  appendSync(topic: string, records: readonly AppendRecord[]): bigint;
  /** append is appendSync as a promise (appends of one topic never interleave, whichever is used). */
  append(topic: string, records: readonly AppendRecord[]): Promise<bigint>;
  /** read returns records from `offset` (or the oldest kept one): at least one, then as many as fit in `maxBytes`. */
  read(topic: string, offset: bigint, maxBytes?: number): Promise<LogRecord[]>;
  /** highWatermark is the offset the next record of the topic will get. */
  highWatermark(topic: string): bigint;
  /** lowWatermark is the oldest offset still kept. */
  lowWatermark(topic: string): bigint;
  /** segments lists a topic's segments, oldest first (the last is the one being written). */
  segments(topic: string): LocalSegment[];
  /** deleteBelow deletes the topic's closed segments holding only offsets below `offset`; resolves with the bytes freed. */
  deleteBelow(topic: string, offset: bigint): Promise<number>;
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
  /** close syncs and closes the segments and releases the directory lock; calling it twice is harmless. */
  close(): Promise<void>;
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

/** readOrCreateId returns the log's source id from `<dir>/ID`, creating it (atomically, durably) at first open. */
function readOrCreateId(dir: string): string {
  const path = join(dir, 'ID');
  if (existsSync(path)) {
    const id = readFileSync(path, 'utf8').trim();
    if (!SOURCE_ID.test(id))
      throw new LogError(
        'TAPWIRE_LOG_BAD_ID',
        `${path} holds ${JSON.stringify(id.slice(0, 80))}, not a source id (1–64 of A–Z a–z 0–9 . _ -); restore it, or delete it to give the log a new identity`,
      );
    return id;
  }
  // 12 random bytes: 16 url-safe characters.
  const id = randomBytes(12).toString('base64url');
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, `${id}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
  return id;
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Nothing to do about a descriptor that will not close.
  }
}

/** fitTo makes the open file `fd` exactly `size` bytes: cuts what a failed write left; false when it is shorter (lost). */
function fitTo(fd: number, size: number): boolean {
  try {
    const actual = fstatSync(fd).size;
    if (actual < size) {
      closeSync(fd);
      return false;
    }
    if (actual > size) ftruncateSync(fd, size);
    return true;
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
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
  const lock = await takeDirLock(dir);
  try {
    return openLocked(options, { dir, segmentBytes, fsync, topicsDir, groupsDir }, lock.release);
  } catch (err) {
    await lock.release();
    throw err;
  }
}

/** openLocked loads the log of a directory this process has locked. */
function openLocked(
  options: FileLogOptions,
  cfg: { dir: string; segmentBytes: number; fsync: FsyncPolicy; topicsDir: string; groupsDir: string },
  releaseLock: () => Promise<void>,
): FileLog {
  const { dir, segmentBytes, fsync, topicsDir, groupsDir } = cfg;
  const id = readOrCreateId(dir);
  const partitions = new Map<string, Partition>();
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const groups = new Map<string, Map<string, bigint>>();
  /** Background fdatasyncs in flight; close waits for them. */
  const syncs = new Set<Promise<void>>();
  let closed = false;

  function load(topic: string): Partition {
    const pdir = join(topicsDir, topic);
    mkdirSync(pdir, { recursive: true });
    const names = readdirSync(pdir)
      .filter((n) => n.endsWith(SEGMENT_SUFFIX))
      .sort();
    const segments: Segment[] = names.map((name) => {
      const path = join(pdir, name);
      return {
        base: BigInt(name.slice(0, -SEGMENT_SUFFIX.length)),
        path,
        size: statSync(path).size,
        index: null,
      };
    });
    let next = 0n;
    const last = segments.at(-1);
    if (last) {
      // Recovery: keep the longest valid prefix of the active segment.
      const buf = readFileSync(last.path);
      const { records } = decodeFrames(buf);
      let end = 0;
      let expected = last.base;
      for (const r of records) {
        if (r.offset !== expected) break;
        expected++;
        end = r.end;
      }
      if (end < buf.length) {
        const fd = openSync(last.path, 'r+');
        try {
          ftruncateSync(fd, end);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        last.size = end;
      }
      next = expected;
    }
    return { topic, dir: pdir, segments, next, handle: null };
  }

  for (const topic of readdirSync(topicsDir)) partitions.set(topic, load(topic));
  for (const file of readdirSync(groupsDir)) {
    if (!file.endsWith('.json')) continue;
    const raw = JSON.parse(readFileSync(join(groupsDir, file), 'utf8')) as Record<string, string>;
    groups.set(
      decodeURIComponent(file.slice(0, -5)),
      new Map(Object.entries(raw).map(([t, o]) => [t, BigInt(o)])),
    );
  }

  function partitionOf(topic: string): Partition {
    const known = partitions.get(topic);
    if (known) return known;
    if (!TOPIC_NAME.test(topic))
      throw new LogError('TAPWIRE_LOG_BAD_TOPIC', `not a topic name: ${JSON.stringify(topic)}`);
    const loaded = load(topic);
    partitions.set(topic, loaded);
    return loaded;
  }

  /** startSync runs fdatasync off the calling thread; a retired handle is closed once it is done. */
  function startSync(h: Handle): void {
    h.dirty = false;
    h.syncing = true;
    const done = new Promise<void>((resolve) => {
      fdatasync(h.fd, () => {
        h.syncing = false;
        if (h.retired) {
          if (h.dirty) startSync(h);
          else closeQuietly(h.fd);
        }
        resolve();
      });
    });
    syncs.add(done);
    void done.then(() => syncs.delete(done));
  }

  /** retire stops writing a handle: synced first (in the background) when `sync` and it has unsynced bytes. */
  function retire(h: Handle, sync: boolean): void {
    h.retired = true;
    if (!sync) h.dirty = false;
    if (h.syncing) return;
    if (h.dirty) startSync(h);
    else closeQuietly(h.fd);
  }

  /**
   * activeHandle returns the handle of the segment the next `incoming` bytes go to, rolling to a new
   * segment past segmentBytes. A handle dropped after a failed write is reopened here: missing
   * directories are created again, and what a failed write left in the file is cut off.
   */
  function activeHandle(p: Partition, incoming: number): Handle {
    const last = p.segments.at(-1);
    const roll = last !== undefined && last.size > 0 && last.size + incoming > segmentBytes;
    if (p.handle && !roll) return p.handle;
    if (p.handle) {
      retire(p.handle, fsync !== 'never');
      p.handle = null;
    }
    mkdirSync(p.dir, { recursive: true });
    if (last && !roll) {
      let fd: number | undefined;
      try {
        // A segment holding records is reopened, never created: a missing one was lost.
        fd = openSync(last.path, last.size === 0 ? 'a' : constants.O_WRONLY | constants.O_APPEND);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      if (fd !== undefined && fitTo(fd, last.size)) {
        p.handle = { fd, dirty: false, syncing: false, retired: false };
        return p.handle;
      }
      // The active segment was deleted or cut short under us: its records are gone. The log
      // goes on in a new segment at the next offset, keeping what is still on disk.
      p.segments = p.segments.filter((s) => s !== last && existsSync(s.path));
    }
    const seg: Segment = { base: p.next, path: join(p.dir, segmentName(p.next)), size: 0, index: [] };
    const fd = openSync(seg.path, 'a');
    fitTo(fd, 0);
    p.segments.push(seg);
    p.handle = { fd, dirty: false, syncing: false, retired: false };
    return p.handle;
  }

  function writeFailed(what: string, err: unknown): LogError {
    return new LogError('TAPWIRE_LOG_WRITE_FAILED', `${what}: ${(err as Error).message}`, { cause: err });
  }

  function appendSync(topic: string, records: readonly AppendRecord[]): bigint {
    if (closed) throw new LogError('TAPWIRE_LOG_CLOSED', 'the log is closed');
    const p = partitionOf(topic);
    const first = p.next;
    if (records.length === 0) return first;
    const { buf, starts } = encodeFrames(records, first, Date.now());
    let h: Handle;
    try {
      h = activeHandle(p, buf.length);
    } catch (err) {
      throw writeFailed(`cannot open the active segment of ${p.dir}`, err);
    }
    const seg = p.segments.at(-1)!;
    const position = seg.size;
    try {
      // One write(2); a short write (a filling disk) is continued, and fails on the next call.
      let written = writeSync(h.fd, buf, 0, buf.length);
      while (written < buf.length) {
        const n = writeSync(h.fd, buf, written, buf.length - written);
        if (n === 0) throw new Error(`wrote ${written} of ${buf.length} bytes`);
        written += n;
      }
      if (fsync === 'always') fdatasyncSync(h.fd);
    } catch (err) {
      // No torn frame may stay before the frames of later appends. If this cut fails too, the
      // reopen cuts the file to the segment's size before anything else is written.
      try {
        ftruncateSync(h.fd, position);
      } catch {}
      p.handle = null;
      retire(h, false);
      throw writeFailed(`cannot write ${seg.path}`, err);
    }
    if (fsync === 'interval') h.dirty = true;
    // Index entries inside a large batch too, so a read starts near its offset, never a batch away.
    if (seg.index) {
      let last = seg.index.at(-1)?.[1] ?? -INDEX_EVERY_BYTES;
      for (let i = 0; i < starts.length; i++) {
        if (position + starts[i]! - last < INDEX_EVERY_BYTES) continue;
        last = position + starts[i]!;
        seg.index.push([first + BigInt(i), last]);
      }
    }
    seg.size += buf.length;
    p.next = first + BigInt(records.length);
    events.emit('append', topic);
    return first;
  }

  /** syncNow forces what was written before the call to disk, off the calling thread. */
  async function syncNow(): Promise<void> {
    // A handle written while a sync of it runs needs one more, after that one: two rounds at most.
    const again: Handle[] = [];
    for (const p of partitions.values()) {
      const h = p.handle;
      if (!h?.dirty) continue;
      if (h.syncing) again.push(h);
      else startSync(h);
    }
    await Promise.all([...syncs]);
    for (const h of again) if (h.dirty && !h.syncing && !h.retired) startSync(h);
    await Promise.all([...syncs]);
  }

  // Background fsync: fdatasync runs on libuv's pool, never on the appending thread.
  const syncTimer =
    fsync === 'interval'
      ? setInterval(() => {
          for (const p of partitions.values()) {
            const h = p.handle;
            if (h?.dirty && !h.syncing) startSync(h);
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

  const commitChains = new Map<string, Promise<unknown>>();
  const log: FileLog = {
    sync: syncNow,
    dir,
    id,
    appendSync,
    async append(topic, records) {
      return appendSync(topic, records);
    },

    async read(topic, offset, maxBytes = 1024 * 1024) {
      const p = partitionOf(topic);
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
        // Whole frames from the nearest index entry: at least one, about the byte budget. Only
        // up to the segment's size: bytes past it are a write in progress or a failed one.
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

    segments: (topic) => partitions.get(topic)?.segments.map((s) => ({ base: s.base, bytes: s.size })) ?? [],

    async deleteBelow(topic, offset) {
      const p = partitions.get(topic);
      let freed = 0;
      // A closed segment holds offsets up to the next one's base; the active segment stays.
      while (p && p.segments.length > 1 && p.segments[1]!.base <= offset) {
        const oldest = p.segments[0]!;
        await rm(oldest.path, { force: true });
        // Retention may have removed it meanwhile.
        if (p.segments[0] !== oldest) continue;
        p.segments.shift();
        freed += oldest.size;
      }
      return freed;
    },

    async offsetForTime(topic, ms) {
      const p = partitionOf(topic);
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

    commit(group, offsets) {
      // One save of a group at a time, in call order: each starts from what the previous saved.
      const run = (commitChains.get(group) ?? Promise.resolve()).then(async () => {
        const current = new Map(groups.get(group) ?? []);
        for (const [t, o] of offsets) current.set(t, o);
        const path = join(groupsDir, `${encodeURIComponent(group)}.json`);
        const tmp = `${path}.${process.pid}.tmp`;
        const h = await open(tmp, 'w');
        try {
          await h.writeFile(
            JSON.stringify(Object.fromEntries([...current].map(([t, o]) => [t, o.toString()]))),
          );
          if (fsync !== 'never') await h.sync();
        } finally {
          // A failed write (a full disk) must not leave the descriptor to the garbage collector.
          await h.close();
        }
        await rename(tmp, path);
        // Only what is saved is committed: after a failed save, committed() still says what is on disk.
        groups.set(group, current);
      });
      commitChains.set(
        group,
        run.catch(() => {}),
      );
      return run;
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
        while (p.segments.length > 1) {
          const oldest = p.segments[0]!;
          const total = p.segments.reduce((n, s) => n + s.size, 0);
          const tooOld =
            (options.retentionMs ?? 0) > 0 && (await stat(oldest.path)).mtimeMs < now - options.retentionMs!;
          const tooBig = (options.retentionBytes ?? 0) > 0 && total > options.retentionBytes!;
          if (!tooOld && !tooBig) break;
          await rm(oldest.path, { force: true });
          // deleteBelow may have removed it meanwhile.
          if (p.segments[0] !== oldest) continue;
          p.segments.shift();
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
        if (!p.handle) continue;
        const h = p.handle;
        p.handle = null;
        retire(h, fsync !== 'never');
      }
      while (syncs.size > 0) await Promise.all(syncs);
      await releaseLock();
    },
  };

  const retentionTimer =
    (options.retentionMs ?? 0) > 0 || (options.retentionBytes ?? 0) > 0
      ? setInterval(() => void log.enforceRetention().catch(() => {}), options.retentionCheckMs ?? 60_000)
      : undefined;
  retentionTimer?.unref();
  return log;
}
