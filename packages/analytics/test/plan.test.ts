import { describe, expect, it } from 'vitest';
import { AnalyticsError, alignRange, autoStep, chooseSource, rollupBlocker } from '../src/index.js';

const HOUR = { from: 1_795_600_800, to: 1_795_604_400 };

describe('rollupBlocker / chooseSource', () => {
  it('uses the rollups for whole-minute windows, whole-minute steps and rollup dimensions', () => {
    expect(rollupBlocker(HOUR, 300, { service: 's', route: '/r', method: 'GET' })).toBeUndefined();
    expect(chooseSource('auto', rollupBlocker(HOUR, 60))).toBe('rollup');
  });

  it('falls back to raw rows, saying why, when the rollups cannot answer exactly', () => {
    expect(rollupBlocker({ from: HOUR.from + 1, to: HOUR.to }, undefined)).toBe(
      'from and to must be whole minutes',
    );
    expect(rollupBlocker(HOUR, 30)).toBe('step must be a whole number of minutes');
    expect(rollupBlocker(HOUR, 60, { consumer: 'k' })).toBe('the consumer filter needs raw data');
    expect(rollupBlocker(HOUR, 60, { statusClass: '5xx' })).toBe('the status class filter needs raw data');
    expect(chooseSource('auto', 'x')).toBe('raw');
    expect(chooseSource('raw', undefined)).toBe('raw');
  });

  it('refuses source=rollup when it cannot answer exactly, naming the field', () => {
    const err = (() => {
      try {
        chooseSource('rollup', 'the consumer filter needs raw data');
      } catch (e) {
        return e as AnalyticsError;
      }
      throw new Error('no error');
    })();
    expect(err).toBeInstanceOf(AnalyticsError);
    expect(err.code).toBe('TAPWIRE_ANALYTICS_INVALID_QUERY');
    expect(err.status).toBe(400);
    expect(err.field).toBe('source');
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
