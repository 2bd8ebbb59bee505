import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { type ClickHouse, createClickHouse, identifier, migrate, sql } from '@tapwire/clickhouse';
import { hashToken, telemetryConfigSchema } from '@tapwire/config';
import { buildIngest, clickhouseWarehouse, type Ingest, ingestConfigSchema } from '@tapwire/ingest';
import {
  createKafkaClient,
  createKafkaEventSink,
  ensureTopics,
  kafkaSource,
  topicSpecs,
} from '@tapwire/kafka';
import { otlpConfigSchema, type RunningOtlpService, runOtlpService } from '@tapwire/otlp-service';
import { createLogger } from '@tapwire/telemetry';
import type { Admin } from 'kafkajs';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { silentLogger, testClickHouseConfig, testKafkaConfig, uniqueName } from '../support/infra.js';

/**
 * Issue #22: the receiver's export takes the proxy's path — its own local log, shipped to Kafka,
 * ingested into ClickHouse — and each exported span is stored exactly once.
 */

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const kafka = createKafkaClient(testKafkaConfig(), silentLogger, 'otlp-service-test');
const logger = createLogger({ name: 'otlp-service-it', level: 'silent' });
const prefix = `${uniqueName('otlp')}.`;
const database = uniqueName('tapwire_otlp_service');
const home = mkdtempSync(join(tmpdir(), 'tapwire-otlp-service-'));
const TOKEN = 'tw_otlp-service-integration';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
let admin: Admin;
let ch: ClickHouse;
let otlp: RunningOtlpService | undefined;
let ingest: Ingest | undefined;
let dlq: ReturnType<typeof createKafkaEventSink> | undefined;

const root = protobuf.loadSync(fileURLToPath(new URL('../support/otlp-trace.proto', import.meta.url)));
const Request = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');

function exportRequest(spanIds: string[], service: string): Buffer {
  return Buffer.from(
    Request.encode(
      Request.fromObject({
        resourceSpans: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
            scopeSpans: [
              {
                spans: spanIds.map((id, i) => ({
                  traceId: Buffer.from(TRACE_ID, 'hex'),
                  spanId: Buffer.from(id, 'hex'),
                  parentSpanId: i === 0 ? Buffer.alloc(0) : Buffer.from(spanIds[0]!, 'hex'),
                  name: i === 0 ? 'GET /orders/:id' : 'SELECT orders',
                  kind: i === 0 ? 2 : 3,
                  startTimeUnixNano: String(BigInt(Date.now()) * 1_000_000n),
                  endTimeUnixNano: String((BigInt(Date.now()) + 12n) * 1_000_000n),
                  attributes: [{ key: 'http.route', value: { stringValue: '/orders/:id' } }],
                })),
              },
            ],
          },
        ],
      }),
    ).finish(),
  );
}

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
  await ensureTopics(
    kafka,
    topicSpecs(
      { partitions: 3, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
      prefix,
    ),
  );
  await migrate(testClickHouseConfig(database), { dir: MIGRATIONS, lockSettleMs: 200 });
  ch = createClickHouse(testClickHouseConfig(database));
});

afterAll(async () => {
  await otlp?.stop();
  await ingest?.close();
  await dlq?.close(1000);
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
  await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
  await ch?.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
  await ch?.close();
  rmSync(home, { recursive: true, force: true });
});

describe('the OTLP receiver on Kafka and ClickHouse', () => {
  it('stores each span of an acknowledged export exactly once, over OTLP/HTTP and OTLP/gRPC, under the token’s tenant', async () => {
    otlp = await runOtlpService(
      {
        otlp: otlpConfigSchema.parse({
          grpc: { host: '127.0.0.1', port: 0 },
          http: { host: '127.0.0.1', port: 0 },
          admin: { host: '127.0.0.1', port: 0 },
          tokens: [{ name: 'orders', sha256: hashToken(TOKEN), tenant: 'acme' }],
          emit: { logDir: join(home, 'otlp-log'), lingerMs: 20 },
          shutdownGraceMs: 5000,
        }),
        kafka: testKafkaConfig(),
        telemetry: telemetryConfigSchema.parse({ logLevel: 'silent' }),
      },
      { topicPrefix: prefix },
    );

    const http = await fetch(`${otlp.httpUrl}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${TOKEN}` },
      body: exportRequest(['00f067aa0ba902b7', '10f067aa0ba902b7'], 'orders'),
    });
    expect(http.status).toBe(200);
    const client = new Client(otlp.grpcUrl.replace('http://', ''), credentials.createInsecure());
    const md = new Metadata();
    md.set('x-tapwire-token', TOKEN);
    const err = await new Promise<Error | null>((resolve) =>
      client.makeUnaryRequest(
        '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
        (b: Buffer) => b,
        (b: Buffer) => b,
        exportRequest(['20f067aa0ba902b7'], 'payments'),
        md,
        (e) => resolve(e ?? null),
      ),
    );
    client.close();
    expect(err).toBeNull();
    // Acknowledged means written: the local log holds all three before any is shipped or stored.
    expect(otlp.stats().emission.written).toBe(3);

    dlq = createKafkaEventSink(
      { kafka, logger: silentLogger },
      {
        lingerMs: 10,
        maxBatchEvents: 100,
        maxBufferedEvents: 1000,
        retryBackoffMs: 100,
        topicPrefix: prefix,
      },
    );
    ingest = buildIngest(
      { source: kafkaSource({ kafka, logger }), warehouse: clickhouseWarehouse(ch), dlq, logger },
      ingestConfigSchema.parse({
        groupId: uniqueName('otlp-service-ingest'),
        topicPrefix: prefix,
        flushIntervalMs: 200,
        admin: { port: 0 },
        retention: { enabled: false },
      }),
    );
    await ingest.start();
    const rows = () =>
      ch.query<Record<string, string>>(
        sql`SELECT id, tenant, service, parent_span_id, kind FROM spans WHERE trace_id = ${TRACE_ID} ORDER BY id`,
      );
    await vi.waitFor(async () => expect(await rows()).toHaveLength(3), { timeout: 60_000, interval: 250 });
    // Nothing arrives twice: the shipper's batches and ingest's ledger keep it to one row each.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await rows()).toEqual([
      {
        id: `${TRACE_ID}00f067aa0ba902b7`,
        tenant: 'acme',
        service: 'orders',
        parent_span_id: '',
        kind: 'SERVER',
      },
      {
        id: `${TRACE_ID}10f067aa0ba902b7`,
        tenant: 'acme',
        service: 'orders',
        parent_span_id: '00f067aa0ba902b7',
        kind: 'CLIENT',
      },
      {
        id: `${TRACE_ID}20f067aa0ba902b7`,
        tenant: 'acme',
        service: 'payments',
        parent_span_id: '',
        kind: 'SERVER',
      },
    ]);
    const [dlqRows] = await ch.query<{ n: string }>(sql`SELECT count() AS n FROM dlq_events`);
    expect(Number(dlqRows?.n)).toBe(0);
    await vi.waitFor(() => expect(otlp!.stats().emission.delivered).toBe(3), { timeout: 30_000 });
  });
});
