import { type SpanEvent, TOPICS } from '@tapwire/schema';
import {
  createEventEncoder,
  emptySinkStats,
  eventSinkOver,
  type RecordSink,
  type SpoolRecord,
} from '@tapwire/stream';
import { describe, expect, it } from 'vitest';
import {
  exampleAccessLog,
  exampleAlertState,
  exampleDlq,
  exampleSaturation,
  exampleSpan,
} from '../../../test/support/events.js';

/** recordingSink is a RecordSink that keeps what it accepts and refuses once `capacity` is reached. */
function recordingSink(capacity = Number.POSITIVE_INFINITY) {
  const accepted: SpoolRecord[] = [];
  let dropped = 0;
  const sink: RecordSink = {
    accept(record) {
      if (accepted.length >= capacity) {
        dropped++;
        return false;
      }
      accepted.push(record);
      return true;
    },
    flush: async () => {},
    close: async () => {},
    stats: () => ({ ...emptySinkStats(), accepted: accepted.length, dropped }),
  };
  return { sink, accepted };
}

function warnings() {
  const seen: { obj: object; msg: string }[] = [];
  return { seen, logger: { warn: (obj: object, msg: string) => seen.push({ obj, msg }) } };
}

describe('createEventEncoder', () => {
  const encode = createEventEncoder({});

  it('keys spans and access logs by trace id, so one trace stays on one partition', () => {
    const span = exampleSpan({ trace_id: 'a'.repeat(32) });
    expect(encode(TOPICS.spans, span)).toEqual({
      topic: 'tapwire.spans.v1',
      key: 'a'.repeat(32),
      value: JSON.stringify(span),
    });
    const access = exampleAccessLog({ trace_id: 'b'.repeat(32) });
    expect(encode(TOPICS.accessLogs, access)).toMatchObject({
      topic: 'tapwire.access.v1',
      key: 'b'.repeat(32),
    });
  });

  it('keys alert state by fingerprint, and a delivery record by fingerprint/receiver (compaction keeps both)', () => {
    expect(encode(TOPICS.alertState, exampleAlertState({ fingerprint: '0123456789abcdef' }))).toMatchObject({
      key: '0123456789abcdef',
    });
    expect(
      encode(
        TOPICS.alertState,
        exampleAlertState({ fingerprint: '0123456789abcdef', receiver: 'ops-slack' }),
      ),
    ).toMatchObject({ key: '0123456789abcdef/ops-slack' });
  });

  it('keys saturation samples by instance and DLQ records by their source partition', () => {
    expect(encode(TOPICS.saturation, exampleSaturation({ instance: 'proxy-7' }))).toMatchObject({
      key: 'proxy-7',
    });
    expect(
      encode(TOPICS.dlq, exampleDlq({ source_topic: 'tapwire.spans.v1', source_partition: 3 })),
    ).toMatchObject({ key: 'tapwire.spans.v1/3' });
  });

  it('keys a silence by its id', () => {
    const silence = {
      v: 1 as const,
      id: 'c0ffee00-0000-4000-8000-000000000001',
      ts: 1_795_651_200_000_000,
      tenant: 'default',
      matchers: ['service="checkout"'],
      starts_at: 1_795_651_200_000_000,
      ends_at: 1_795_654_800_000_000,
      created_by: 'oncall',
      comment: 'deploy',
    };
    expect(encode(TOPICS.silences, silence)).toMatchObject({
      topic: 'tapwire.silences.v1',
      key: 'c0ffee00-0000-4000-8000-000000000001',
    });
  });

  it('prefixes the topic name when asked (tests isolate runs this way)', () => {
    const span = exampleSpan();
    expect(createEventEncoder({ topicPrefix: 'run-42.' })(TOPICS.spans, span)).toMatchObject({
      topic: 'run-42.tapwire.spans.v1',
    });
  });

  it('returns the validation error naming the bad field instead of a record', () => {
    const bad = { ...exampleSpan(), trace_id: 'not-hex' } as SpanEvent;
    const out = encode(TOPICS.spans, bad);
    expect(typeof out).toBe('string');
    expect(out).toContain('trace_id');
  });

  it('skips validation for trusted producers when validate is false', () => {
    const bad = { ...exampleSpan(), trace_id: 'not-hex' } as SpanEvent;
    expect(createEventEncoder({ validate: false })(TOPICS.spans, bad)).toEqual({
      topic: 'tapwire.spans.v1',
      key: 'not-hex',
      value: JSON.stringify(bad),
    });
  });
});

describe('eventSinkOver', () => {
  it('hands each encoded record to the record sink and says whether it was kept', () => {
    const { sink, accepted } = recordingSink(1);
    const events = eventSinkOver(sink, createEventEncoder({}), warnings().logger);
    const first = exampleSpan();
    expect(events.emit(TOPICS.spans, first)).toBe(true);
    expect(events.emit(TOPICS.spans, exampleSpan())).toBe(false);
    expect(accepted).toEqual([
      { topic: 'tapwire.spans.v1', key: first.trace_id, value: JSON.stringify(first) },
    ]);
    expect(events.stats()).toMatchObject({ accepted: 1, dropped: 1, invalid: 0 });
  });

  it('refuses an invalid event without throwing, counts it and logs the topic and reason', () => {
    const { sink, accepted } = recordingSink();
    const log = warnings();
    const events = eventSinkOver(sink, createEventEncoder({}), log.logger);
    expect(events.emit(TOPICS.spans, { ...exampleSpan(), duration: -1 })).toBe(false);
    expect(accepted).toEqual([]);
    expect(events.stats()).toMatchObject({ accepted: 0, invalid: 1 });
    expect(log.seen).toHaveLength(1);
    expect(log.seen[0]?.msg).toBe('refused an invalid event');
    expect(log.seen[0]?.obj).toMatchObject({ topic: 'tapwire.spans.v1' });
    expect(JSON.stringify(log.seen[0]?.obj)).toContain('duration');
  });
});
