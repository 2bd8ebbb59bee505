import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kafkaConfigSchema } from '@tapwire/config';
import { fileLogSource, openFileLog } from '@tapwire/log';
import { TOPICS } from '@tapwire/schema';
import { createLogger } from '@tapwire/telemetry';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { exampleSpan } from '../../../test/support/events.js';
import { type EmissionStats, type EmitConfig, openEmission, registerEmissionMetrics } from '../src/index.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function fresh(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-emission-'));
  dirs.push(dir);
  return dir;
}

const logger = createLogger({ name: 'emission-test', level: 'silent', format: 'json', sync: true });

function emitConfig(logDir: string): EmitConfig {
  return {
    topicPrefix: '',
    logDir,
    logMaxBytes: 32 * 1024 * 1024,
    fsyncIntervalMs: 1000,
    lingerMs: 10,
    maxBatchEvents: 100,
    maxBatchBytes: 900_000,
    compression: 'none',
  };
}

const NOTHING: EmissionStats = {
  written: 0,
  invalid: 0,
  writeDropped: 0,
  writeErrors: 0,
  delivered: 0,
  shippedBatches: 0,
  unshippedEvents: 0,
  unshippedBytes: 0,
  capacityBytes: 0,
  lagSeconds: 0,
  capacityDropped: 0,
  shipErrors: 0,
};

describe('openEmission', () => {
  it('embedded: writes each event straight into the shared log, where written is delivered; after close nothing more is written', async () => {
    const log = await openFileLog({ dir: fresh(), fsync: 'never' });
    const emission = await openEmission(
      { emit: emitConfig(join(fresh(), 'unused')), kafka: kafkaConfigSchema.parse({}), section: 'otlp' },
      logger,
      'p.',
      fileLogSource(log, logger),
    );
    const spans = [exampleSpan(), exampleSpan(), exampleSpan()];
    for (const s of spans) expect(emission.sink.emit(TOPICS.spans, s)).toBe(true);
    await emission.sink.flush();
    expect(emission.stats()).toEqual({ ...NOTHING, written: 3, delivered: 3 });
    const stored = await log.read(`p.${TOPICS.spans}`, 0n);
    expect(stored.map((r) => JSON.parse(r.value.toString()).span_id)).toEqual(spans.map((s) => s.span_id));
    await emission.close(1000);
    expect(emission.sink.emit(TOPICS.spans, exampleSpan())).toBe(false);
    expect(emission.stats()).toMatchObject({ written: 3, delivered: 3, writeDropped: 1 });
    expect(log.highWatermark(`p.${TOPICS.spans}`)).toBe(3n);
    await log.close();
  });

  it('Kafka away: events are written to the local log and counted unshipped; close leaves them there for the next start', async () => {
    const logDir = join(fresh(), 'otlp-log');
    const config = {
      emit: emitConfig(logDir),
      // Nothing listens on port 1: every produce attempt fails at once.
      kafka: kafkaConfigSchema.parse({ brokers: ['127.0.0.1:1'] }),
      section: 'otlp',
    };
    const emission = await openEmission(config, logger, '');
    expect(emission.sink.emit(TOPICS.spans, exampleSpan())).toBe(true);
    expect(emission.sink.emit(TOPICS.spans, exampleSpan())).toBe(true);
    await emission.sink.flush();
    const stats = emission.stats();
    expect(stats).toMatchObject({
      written: 2,
      delivered: 0,
      shippedBatches: 0,
      unshippedEvents: 2,
      capacityBytes: 32 * 1024 * 1024,
      invalid: 0,
      writeDropped: 0,
      writeErrors: 0,
      capacityDropped: 0,
    });
    expect(stats.unshippedBytes).toBeGreaterThan(0);
    await emission.close(200);
    const local = await openFileLog({ dir: logDir, fsync: 'never' });
    expect(local.highWatermark(TOPICS.spans)).toBe(2n);
    await local.close();
  });
});

describe('registerEmissionMetrics', () => {
  it('exports the stats under the service prefix at each scrape, dropped by reason', async () => {
    const registry = new Registry();
    let stats: EmissionStats = {
      ...NOTHING,
      written: 5,
      delivered: 4,
      unshippedEvents: 1,
      capacityBytes: 100,
    };
    registerEmissionMetrics(registry, { prefix: 'tapwire_test', events: 'Span events' }, () => stats);
    const lines = async () => (await registry.metrics()).split('\n').filter((l) => l.startsWith('tapwire_'));
    expect(await lines()).toEqual([
      'tapwire_test_events_emitted_total 5',
      'tapwire_test_events_delivered_total 4',
      'tapwire_test_events_dropped_total{reason="write_failed"} 0',
      'tapwire_test_events_dropped_total{reason="over_capacity"} 0',
      'tapwire_test_events_invalid_total 0',
      'tapwire_test_local_log_write_errors_total 0',
      'tapwire_test_shipped_batches_total 0',
      'tapwire_test_producer_errors_total 0',
      'tapwire_test_unshipped_events 1',
      'tapwire_test_unshipped_bytes 0',
      'tapwire_test_local_log_capacity_bytes 100',
      'tapwire_test_shipping_lag_seconds 0',
    ]);
    stats = { ...stats, writeDropped: 2, capacityDropped: 3, lagSeconds: 7 };
    const after = await lines();
    expect(after).toContain('tapwire_test_events_dropped_total{reason="write_failed"} 2');
    expect(after).toContain('tapwire_test_events_dropped_total{reason="over_capacity"} 3');
    expect(after).toContain('tapwire_test_shipping_lag_seconds 7');
    expect(await registry.metrics()).toContain(
      '# HELP tapwire_test_events_emitted_total Span events written to the local log.',
    );
  });
});
