import { describe, expect, it } from 'vitest';
import {
  AnalyticsError,
  alignForRollups,
  alignRange,
  autoStep,
  chooseSource,
  rollupBlocker,
} from '../src/index.js';

const HOUR = { from: 1_795_600_800, to: 1_795_604_400 };

describe('rollupBlocker / chooseSource', () => {
  const HALF = { from: HOUR.from, to: HOUR.from + 1800 };

  it('picks the coarsest rollup that answers exactly: hourly, then minutes, then raw rows', () => {
    expect(chooseSource('auto', HOUR, undefined, {}, { hourly: true })).toBe('rollup_1h');
    expect(
      chooseSource('auto', HOUR, 300, { service: 's', route: '/r', method: 'GET' }, { hourly: true }),
    ).toBe('rollup_1m');
    expect(chooseSource('auto', HALF, undefined, {}, { hourly: true })).toBe('rollup_1m');
    expect(chooseSource('auto', HOUR, undefined, {})).toBe('rollup_1m');
    expect(chooseSource('auto', { from: HOUR.from + 1, to: HOUR.to }, undefined, {}, { hourly: true })).toBe(
      'raw',
    );
    expect(chooseSource('auto', HOUR, 60, { consumer: 'k' }, { hourly: true })).toBe('raw');
    expect(chooseSource('raw', HOUR, undefined, {}, { hourly: true })).toBe('raw');
  });

  it('says why the rollups cannot answer', () => {
    expect(rollupBlocker({ from: HOUR.from + 1, to: HOUR.to }, undefined)).toBe(
      'from and to must be whole minutes',
    );
    expect(rollupBlocker(HALF, undefined, {}, 3600)).toBe('from and to must be whole hours');
    expect(rollupBlocker(HOUR, 30)).toBe('step must be a whole number of minutes');
    expect(rollupBlocker(HOUR, 60, { consumer: 'k' })).toBe('the consumer filter needs raw data');
    expect(rollupBlocker(HOUR, 60, { statusClass: '5xx' })).toBe('the status class filter needs raw data');
  });

  it('refuses a forced rollup that cannot answer exactly, naming the field', () => {
    const refused = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e as AnalyticsError;
      }
      throw new Error('no error');
    };
    const err = refused(() => chooseSource('rollup', HOUR, 60, { consumer: 'k' }, { hourly: true }));
    expect(err).toBeInstanceOf(AnalyticsError);
    expect([err.code, err.status, err.field]).toEqual(['TAPWIRE_ANALYTICS_INVALID_QUERY', 400, 'source']);
    expect(refused(() => chooseSource('rollup_1h', HALF, undefined, {}, { hourly: true })).message).toBe(
      'invalid query: source=rollup_1h: from and to must be whole hours',
    );
    expect(chooseSource('rollup_1m', HOUR, undefined, {}, { hourly: true })).toBe('rollup_1m');
  });
});

describe('alignForRollups', () => {
  it('aligns windows of 6 h or more to hours, shorter ones to minutes, raw ones not at all', () => {
    const day = { from: HOUR.from + 30, to: HOUR.from + 86_400 - 30 };
    expect(alignForRollups(day, 'auto')).toEqual({ from: HOUR.from, to: HOUR.from + 86_400 });
    expect(alignForRollups(day, 'rollup_1m')).toEqual({ from: HOUR.from, to: HOUR.from + 86_400 });
    expect(alignForRollups({ from: HOUR.from + 30, to: HOUR.from + 90 }, 'auto')).toEqual({
      from: HOUR.from,
      to: HOUR.from + 120,
    });
    expect(alignForRollups(day, 'raw')).toEqual(day);
  });
});

describe('autoStep / alignRange', () => {
  it('picks the smallest readable step within the point budget', () => {
    expect(autoStep(HOUR, 300)).toBe(15);
    expect(autoStep({ from: 0, to: 86_400 }, 300)).toBe(300);
    expect(autoStep({ from: 0, to: 7 * 86_400 }, 300)).toBe(3600);
  });

  it('widens a window to whole steps', () => {
    expect(alignRange({ from: 61, to: 179 }, 60)).toEqual({ from: 60, to: 180 });
    expect(alignRange({ from: 120, to: 120 }, 60)).toEqual({ from: 120, to: 180 });
  });
});
