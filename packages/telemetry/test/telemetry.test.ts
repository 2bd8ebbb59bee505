import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { trace } from '@opentelemetry/api';
import { telemetryConfigSchema } from '@tapwire/config';
import { createLogger, startTracing } from '@tapwire/telemetry';
import { afterEach, describe, expect, it } from 'vitest';
import { startOtlpReceiver } from '../../../test/support/otlp-receiver.js';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('createLogger', () => {
  it('writes JSON lines at the configured level with the level as a label', () => {
    const out = capture();
    const log = createLogger({ name: 'tapwire-test', level: 'warn', destination: out.stream });
    log.info('hidden');
    log.warn({ topic: 't' }, 'shown');
    const lines = out.lines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', name: 'tapwire-test', msg: 'shown', topic: 't' });
    expect(typeof lines[0]?.time).toBe('string');
  });

  it('redacts authorization, cookie, set-cookie and api keys wherever they appear', () => {
    const out = capture();
    const log = createLogger({ name: 't', level: 'info', destination: out.stream });
    log.info(
      {
        authorization: 'Bearer top',
        req: {
          headers: { authorization: 'Bearer abc', cookie: 'sid=1', 'x-api-key': 'k1', accept: 'text/html' },
        },
        res: { headers: { 'set-cookie': 'sid=2' } },
        upstream: { config: { 'api-key': 'k2' } },
      },
      'request',
    );
    const line = JSON.stringify(out.lines()[0]);
    for (const secret of ['Bearer top', 'Bearer abc', 'sid=1', 'sid=2', 'k1', 'k2'])
      expect(line).not.toContain(secret);
    expect(out.lines()[0]).toMatchObject({
      authorization: '[REDACTED]',
      req: {
        headers: {
          authorization: '[REDACTED]',
          cookie: '[REDACTED]',
          'x-api-key': '[REDACTED]',
          accept: 'text/html',
        },
      },
      res: { headers: { 'set-cookie': '[REDACTED]' } },
    });
  });
});

describe('startTracing', () => {
  let cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup = [];
  });

  it('is off when no OTLP endpoint is configured', async () => {
    const tracing = await startTracing(telemetryConfigSchema.parse({}), { serviceName: 'x' });
    expect(tracing.enabled).toBe(false);
    await tracing.shutdown();
  });

  it('exports a span to a real OTLP gRPC receiver and logs carry its trace id', async () => {
    const receiver = await startOtlpReceiver();
    cleanup.push(() => receiver.close());
    const config = telemetryConfigSchema.parse({
      otlpEndpoint: receiver.endpoint,
      otlpHeaders: { 'x-tenant': 'ops' },
    });
    const tracing = await startTracing(config, { serviceName: 'tapwire-test-svc', exportDelayMs: 50 });
    cleanup.push(() => tracing.shutdown());
    expect(tracing.enabled).toBe(true);

    const out = capture();
    const log = createLogger({ name: 't', level: 'info', destination: out.stream });
    const tracer = trace.getTracer('tapwire-test');
    const ids = tracer.startActiveSpan('migrate', (span) => {
      span.setAttribute('tapwire.migrations', 3);
      log.info('inside span');
      span.end();
      return span.spanContext();
    });
    log.info('outside span');

    for (let i = 0; i < 100 && receiver.spans.length === 0; i++) await sleep(50);
    expect(receiver.spans).toEqual([
      {
        traceId: ids.traceId,
        spanId: ids.spanId,
        name: 'migrate',
        serviceName: 'tapwire-test-svc',
        attributes: { 'tapwire.migrations': '3' },
      },
    ]);
    expect(receiver.metadata[0]?.get('x-tenant')).toEqual(['ops']);
    const [inside, outside] = out.lines();
    expect(inside).toMatchObject({ msg: 'inside span', trace_id: ids.traceId, span_id: ids.spanId });
    expect(outside?.msg).toBe('outside span');
    expect(outside?.trace_id).toBeUndefined();
  });
});
