import { type SilenceEvent, TOPICS } from '@tapwire/schema';
import { type EventLog, readSilences, type StoredRecord } from '@tapwire/stream';
import { describe, expect, it } from 'vitest';

const T0 = 1_795_651_200_000_000;

function silence(id: string, over: Partial<SilenceEvent> = {}): SilenceEvent {
  return {
    v: 1,
    id,
    ts: T0,
    tenant: 'default',
    matchers: ['service="checkout"'],
    starts_at: T0,
    ends_at: T0 + 3_600_000_000,
    created_by: 'oncall',
    comment: 'deploy',
    ...over,
  };
}

function stateLog(records: Record<string, (string | null)[]>) {
  const asked: string[] = [];
  const log: Pick<EventLog, 'readToEnd'> = {
    async readToEnd(topic) {
      asked.push(topic);
      return (records[topic] ?? []).map(
        (value, i): StoredRecord => ({
          partition: 0,
          offset: String(i),
          key: '',
          value: value === null ? null : Buffer.from(value),
        }),
      );
    },
  };
  return { log, asked };
}

describe('readSilences', () => {
  it('returns the latest version of each silence, skipping tombstones and records that are not silences', async () => {
    const first = silence('c0ffee00-0000-4000-8000-000000000001');
    const expired = { ...first, ends_at: T0 + 60_000_000, comment: 'expired early' };
    const other = silence('c0ffee00-0000-4000-8000-000000000002', { created_by: 'sre' });
    const { log, asked } = stateLog({
      [`run-1.${TOPICS.silences}`]: [
        JSON.stringify(first),
        JSON.stringify(other),
        null,
        '{"not":"a silence"}',
        'not json',
        JSON.stringify(expired),
      ],
    });
    expect(await readSilences(log, 'run-1.')).toEqual([expired, other]);
    expect(asked).toEqual(['run-1.tapwire.silences.v1']);
  });

  it('reads the unprefixed topic by default and returns nothing when it is empty', async () => {
    const { log, asked } = stateLog({});
    expect(await readSilences(log)).toEqual([]);
    expect(asked).toEqual(['tapwire.silences.v1']);
  });
});
