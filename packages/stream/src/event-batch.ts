/**
 * The batched record format: one Kafka record carries many events of one topic, shipped from one
 * source's local log. The value is the events' JSON, one per line (JSON never holds a raw newline);
 * the headers name the format and its version, the source (a proxy instance's local log) and the
 * sequence number of the first event there — event i of the record has sequence firstSeq + i.
 *
 * (source, sequence) is an event's identity from the moment it was written locally: a shipper that
 * resends after a lost position save produces new Kafka records with the same identities, which is
 * how ingest stores each event once (the ledger, see services/ingest).
 *
 * A record without the format header is a single event (the format every earlier release wrote).
 */

export const BATCH_HEADERS = {
  format: 'tapwire-format',
  version: 'tapwire-format-version',
  source: 'tapwire-source',
  firstSeq: 'tapwire-first-seq',
  count: 'tapwire-count',
} as const;

/** The value of the format header for NDJSON batches. */
export const BATCH_FORMAT = 'ndjson-batch';
/** The batch format version this release writes and reads. */
export const BATCH_VERSION = '1';

/** A source id names one local log: letters, digits, '.', '_', '-' (at most 64). */
export const SOURCE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** EventBatch is a run of consecutive events of one topic from one source. */
export interface EventBatch {
  readonly source: string;
  /** Sequence number (local log offset) of the first event. */
  readonly firstSeq: bigint;
  /** Each event's JSON bytes (without a trailing newline). */
  readonly events: readonly Buffer[];
}

/** EncodedBatch is what a producer sends: key, value and headers of one record. */
export interface EncodedBatch {
  readonly key: string;
  readonly value: Buffer;
  readonly headers: Record<string, string>;
}

const NEWLINE = Buffer.from('\n');

/** encodeBatch builds the record of a batch; its key is the source, so one source's batches stay in order on one partition. */
export function encodeBatch(batch: EventBatch): EncodedBatch {
  const parts: Buffer[] = [];
  batch.events.forEach((e, i) => {
    if (i > 0) parts.push(NEWLINE);
    parts.push(e);
  });
  return {
    key: batch.source,
    value: Buffer.concat(parts),
    headers: {
      [BATCH_HEADERS.format]: BATCH_FORMAT,
      [BATCH_HEADERS.version]: BATCH_VERSION,
      [BATCH_HEADERS.source]: batch.source,
      [BATCH_HEADERS.firstSeq]: batch.firstSeq.toString(),
      [BATCH_HEADERS.count]: String(batch.events.length),
    },
  };
}

/** RecordHeaders as consumers see them (kafkajs gives Buffers, or arrays of them for repeated keys). */
export type RecordHeaders = Readonly<Record<string, Buffer | string | (Buffer | string)[] | undefined>>;

/** DecodedRecord is a record read back: a single event, a batch, or a record that is neither (with the reason). */
export type DecodedRecord =
  | { readonly kind: 'single' }
  | { readonly kind: 'batch'; readonly batch: EventBatch }
  | { readonly kind: 'invalid'; readonly reason: string };

function header(headers: RecordHeaders | undefined, name: string): string | undefined {
  const v = headers?.[name];
  const one = Array.isArray(v) ? v[0] : v;
  return one === undefined ? undefined : one.toString();
}

/** decodeBatch tells a single-event record from a batch and splits the batch; never throws. */
export function decodeBatch(headers: RecordHeaders | undefined, value: Buffer | null): DecodedRecord {
  const format = header(headers, BATCH_HEADERS.format);
  if (format === undefined) return { kind: 'single' };
  if (format !== BATCH_FORMAT)
    return { kind: 'invalid', reason: `unknown record format ${JSON.stringify(format)}` };
  const version = header(headers, BATCH_HEADERS.version);
  if (version !== BATCH_VERSION)
    return { kind: 'invalid', reason: `unsupported ${BATCH_FORMAT} version ${JSON.stringify(version)}` };
  const source = header(headers, BATCH_HEADERS.source) ?? '';
  if (!SOURCE_ID.test(source))
    return { kind: 'invalid', reason: `bad source header ${JSON.stringify(source)}` };
  const seq = header(headers, BATCH_HEADERS.firstSeq) ?? '';
  if (!/^\d{1,20}$/.test(seq) || BigInt(seq) >= 2n ** 63n)
    return { kind: 'invalid', reason: `bad first-seq header ${JSON.stringify(seq)}` };
  const countText = header(headers, BATCH_HEADERS.count) ?? '';
  if (!/^\d{1,9}$/.test(countText))
    return { kind: 'invalid', reason: `bad count header ${JSON.stringify(countText)}` };
  const count = Number(countText);
  const events: Buffer[] = [];
  const body = value ?? Buffer.alloc(0);
  if (count > 0) {
    let start = 0;
    for (let nl = body.indexOf(10); nl !== -1; nl = body.indexOf(10, start)) {
      events.push(body.subarray(start, nl));
      start = nl + 1;
    }
    events.push(body.subarray(start));
  }
  if (events.length !== count)
    return { kind: 'invalid', reason: `batch holds ${events.length} lines, its count header says ${count}` };
  return { kind: 'batch', batch: { source, firstSeq: BigInt(seq), events } };
}
