import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { appendFile, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { SpoolRecord } from '@tapwire/stream';

/** SpoolConfig bounds the disk spool. */
export interface SpoolConfig {
  /** Folder holding the spool's segment files; created if missing. */
  readonly dir: string;
  /** Most bytes the spool may hold on disk; beyond it appends are refused (and counted by the caller). */
  readonly maxBytes: number;
  /** Size at which a segment is closed and a new one started, in bytes. */
  readonly segmentBytes?: number;
}

/** SpoolBatch is records read from the oldest segment; commit() marks them sent. */
export interface SpoolBatch {
  readonly records: readonly SpoolRecord[];
  commit(): Promise<void>;
}

/**
 * DiskSpool is an append-only, size-capped, segmented FIFO of events on disk. Appends never block:
 * they are queued and written by one background writer; reads take the oldest closed segment.
 */
export interface DiskSpool {
  /** append queues a record; false when the spool is full (the record is not kept). */
  append(record: SpoolRecord): boolean;
  /** isEmpty is true when nothing is on disk or waiting to be written. */
  isEmpty(): boolean;
  /** bytes on disk plus bytes waiting to be written. */
  bytes(): number;
  readonly capacityBytes: number;
  /** nextBatch returns up to `max` of the oldest records, or undefined when empty. */
  nextBatch(max: number): Promise<SpoolBatch | undefined>;
  /**
   * prepend writes records ahead of everything already spooled (the sink's memory buffer at
   * shutdown, which is older than the spool); resolves to how many fitted under the byte cap.
   */
  prepend(records: readonly SpoolRecord[]): Promise<number>;
  /** lostRecords counts records accepted but lost because a disk write failed. */
  lostRecords(): number;
  /** flush writes queued appends to disk and fsyncs the current segment. */
  flush(): Promise<void>;
}

const SEGMENT = /^segment-(\d{12})\.tsv$/;
const FIRST_SEQ = 500_000_000_000;

function encode(r: SpoolRecord): string {
  // JSON.stringify escapes tabs and newlines inside `value`; topic and key never contain them.
  return `${r.topic}\t${r.key}\t${r.value}\n`;
}

function decode(line: string): SpoolRecord | undefined {
  const a = line.indexOf('\t');
  const b = a === -1 ? -1 : line.indexOf('\t', a + 1);
  if (b === -1) return undefined;
  return { topic: line.slice(0, a), key: line.slice(a + 1, b), value: line.slice(b + 1) };
}

/** openDiskSpool opens (or creates) a spool folder; segments left by an earlier run are kept and drained first. */
export function openDiskSpool(config: SpoolConfig): DiskSpool {
  const segmentBytes = config.segmentBytes ?? 8 * 1024 * 1024;
  mkdirSync(config.dir, { recursive: true });
  const existing = readdirSync(config.dir)
    .map((f) => SEGMENT.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  const segments: { seq: number; bytes: number }[] = existing.map((seq) => ({
    seq,
    bytes: statSync(join(config.dir, name(seq))).size,
  }));
  // Sequence numbers start mid-range so prepend() can always number a segment below the oldest.
  let writeSeq = (existing[existing.length - 1] ?? FIRST_SEQ) + 1;
  let writeSegmentBytes = 0;
  let diskBytes = segments.reduce((n, s) => n + s.bytes, 0);
  let queued: string[] = [];
  let queuedBytes = 0;
  let writingBytes = 0; // taken from the queue, not yet on disk
  let writing: Promise<void> | undefined;
  let lost = 0;
  // Lines of the segment being drained, and how many of them are already sent.
  let reading: { seq: number; lines: string[]; sent: number; bytes: number } | undefined;

  function name(seq: number): string {
    return `segment-${String(seq).padStart(12, '0')}.tsv`;
  }

  function startWriter(): void {
    if (writing) return;
    writing = (async () => {
      while (queued.length > 0) {
        const data = queued.join('');
        const size = queuedBytes;
        const count = queued.length;
        queued = [];
        queuedBytes = 0;
        writingBytes = size;
        if (writeSegmentBytes >= segmentBytes) {
          writeSeq++;
          writeSegmentBytes = 0;
        }
        try {
          await appendFile(join(config.dir, name(writeSeq)), data);
        } catch {
          // Disk full or gone: these records are lost; the sink counts them as dropped.
          lost += count;
          writingBytes = 0;
          continue;
        }
        const seg = segments.find((s) => s.seq === writeSeq);
        if (seg) seg.bytes += size;
        else segments.push({ seq: writeSeq, bytes: size });
        writeSegmentBytes += size;
        diskBytes += size;
        writingBytes = 0;
      }
    })().finally(() => {
      writing = undefined;
    });
  }

  async function flush(): Promise<void> {
    while (writing || queued.length > 0) {
      startWriter();
      await writing;
    }
    const seg = segments.find((s) => s.seq === writeSeq);
    if (seg) {
      const fh = await open(join(config.dir, name(writeSeq)), 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
  }

  return {
    capacityBytes: config.maxBytes,
    append(record: SpoolRecord): boolean {
      const line = encode(record);
      const size = Buffer.byteLength(line);
      if (diskBytes + writingBytes + queuedBytes + size > config.maxBytes) return false;
      queued.push(line);
      queuedBytes += size;
      startWriter();
      return true;
    },
    lostRecords: () => lost,
    async prepend(records: readonly SpoolRecord[]): Promise<number> {
      const lines: string[] = [];
      let size = 0;
      for (const r of records) {
        const line = encode(r);
        const n = Buffer.byteLength(line);
        if (diskBytes + writingBytes + queuedBytes + size + n > config.maxBytes) break;
        lines.push(line);
        size += n;
      }
      if (lines.length === 0) return 0;
      const seq = (segments[0]?.seq ?? writeSeq) - 1;
      await appendFile(join(config.dir, name(seq)), lines.join(''));
      segments.unshift({ seq, bytes: size });
      diskBytes += size;
      return lines.length;
    },
    isEmpty: () => diskBytes === 0 && queuedBytes === 0 && !writing,
    bytes: () => diskBytes + writingBytes + queuedBytes,
    flush,
    async nextBatch(max: number): Promise<SpoolBatch | undefined> {
      if (!reading) {
        if (segments.length === 0) {
          if (queued.length === 0 && !writing) return undefined;
          await flush();
        }
        const oldest = segments[0];
        if (!oldest) return undefined;
        if (oldest.seq === writeSeq) {
          // Close the segment being written so its lines can be read without racing the writer.
          await flush();
          writeSeq++;
          writeSegmentBytes = 0;
        }
        const text = await readFile(join(config.dir, name(oldest.seq)), 'utf8');
        const lines = text.split('\n');
        if (lines[lines.length - 1] === '') lines.pop();
        reading = { seq: oldest.seq, lines, sent: 0, bytes: oldest.bytes };
      }
      const r = reading;
      const slice = r.lines.slice(r.sent, r.sent + max);
      const records = slice.map(decode).filter((x): x is SpoolRecord => x !== undefined);
      return {
        records,
        async commit() {
          r.sent += slice.length;
          if (r.sent >= r.lines.length) {
            await unlink(join(config.dir, name(r.seq))).catch(() => {});
            const at = segments.findIndex((x) => x.seq === r.seq);
            if (at !== -1) segments.splice(at, 1);
            diskBytes -= r.bytes;
            reading = undefined;
          }
        },
      };
    },
  };
}
