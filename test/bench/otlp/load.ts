/**
 * The OTLP benchmark's load generator, run as its own process (so its CPU is not the receiver's):
 * sends pre-encoded ExportTraceServiceRequest bodies (bodies.ts) over OTLP/HTTP protobuf and
 * prints one JSON line with what was accepted and how long each export took.
 *
 * BENCH_LOAD (JSON): { url, token, mode: 'max' | 'rate', seqStart, templates, tracesPerBody,
 *   requests (max), concurrency (max), rps (rate), durationS (rate) }
 * - max: `requests` bodies, `concurrency` at a time, as fast as the receiver accepts them; a 429
 *   or 503 is retried after its Retry-After (the exporters' behaviour), counted as throttled.
 * - rate: open loop, one body every 1/rps s for durationS; a request's latency counts from when
 *   it was due, so a stalled receiver cannot hide its queueing (no coordinated omission).
 */
import { Pool } from 'undici';
import { percentile } from '../latency-summary.js';
import { makeTemplates } from './bodies.js';

interface LoadOptions {
  url: string;
  token: string;
  mode: 'max' | 'rate';
  seqStart: number;
  templates: number;
  tracesPerBody: number;
  requests: number;
  concurrency: number;
  rps: number;
  durationS: number;
}

const opts = JSON.parse(process.env.BENCH_LOAD ?? '{}') as LoadOptions;
const templates = makeTemplates(opts.templates, opts.tracesPerBody);
const target = new URL(opts.url);
const pool = new Pool(target.origin, { connections: Math.max(opts.concurrency, 64), pipelining: 1 });
const headers = { 'content-type': 'application/x-protobuf', authorization: `Bearer ${opts.token}` };

/** rejectedSpans reads ExportTraceServiceResponse.partial_success.rejected_spans (0 when absent). */
function rejectedSpans(body: Buffer): number {
  // Field 1 (partial_success), length-delimited; inside it field 1 (rejected_spans), varint.
  if (body.length < 2 || body[0] !== 0x0a) return 0;
  const inner = body.subarray(2, 2 + (body[1] ?? 0));
  if (inner[0] !== 0x08) return 0;
  let v = 0;
  for (let i = 1, shift = 0; i < inner.length; i++, shift += 7) {
    v += ((inner[i] ?? 0) & 0x7f) * 2 ** shift;
    if (((inner[i] ?? 0) & 0x80) === 0) break;
  }
  return v;
}

let accepted = 0;
let throttled = 0;
let errors = 0;
let rejected = 0;
const latencies: number[] = [];

/** exportOnce sends one body; true when accepted, false when it should be retried. */
async function exportOnce(seq: number, dueAt: number): Promise<{ ok: boolean; retryAfterMs: number }> {
  const template = templates[seq % templates.length]!;
  try {
    const res = await pool.request({
      path: target.pathname,
      method: 'POST',
      headers,
      body: template.stamp(seq),
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode === 200) {
      accepted++;
      latencies.push(performance.now() - dueAt);
      rejected += rejectedSpans(body);
      return { ok: true, retryAfterMs: 0 };
    }
    if (res.statusCode === 429 || res.statusCode === 503) {
      throttled++;
      const after = Number(res.headers['retry-after'] ?? 0);
      return { ok: false, retryAfterMs: after > 0 ? after * 1000 : 100 };
    }
    errors++;
    process.stderr.write(`HTTP ${res.statusCode}: ${body.toString('utf8').slice(0, 300)}\n`);
    return { ok: true, retryAfterMs: 0 };
  } catch (err) {
    errors++;
    process.stderr.write(`${(err as Error).message}\n`);
    return { ok: false, retryAfterMs: 100 };
  }
}

async function send(seq: number, dueAt: number): Promise<void> {
  for (;;) {
    const r = await exportOnce(seq, dueAt);
    if (r.ok) return;
    await new Promise((resolve) => setTimeout(resolve, r.retryAfterMs));
  }
}

async function main(): Promise<void> {
  const spansPerBody = templates[0]?.spans ?? 0;
  const started = performance.now();
  let sent = 0;
  if (opts.mode === 'max') {
    let next = 0;
    await Promise.all(
      Array.from({ length: opts.concurrency }, async () => {
        while (next < opts.requests) {
          const seq = opts.seqStart + next++;
          await send(seq, performance.now());
          sent++;
        }
      }),
    );
  } else {
    const total = Math.max(1, Math.round(opts.rps * opts.durationS));
    const intervalMs = 1000 / opts.rps;
    const inFlight: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const dueAt = started + i * intervalMs;
      const wait = dueAt - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      inFlight.push(
        send(opts.seqStart + i, dueAt).then(() => {
          sent++;
        }),
      );
    }
    await Promise.all(inFlight);
  }
  const wallMs = performance.now() - started;
  await pool.close();
  const sorted = latencies.sort((a, b) => a - b);
  process.stdout.write(
    `${JSON.stringify({
      requests: sent,
      accepted_requests: accepted,
      spans: accepted * spansPerBody,
      spans_per_request: spansPerBody,
      request_bytes: templates[0]?.bytes ?? 0,
      wall_ms: Math.round(wallMs),
      spans_per_second: Math.round((accepted * spansPerBody) / (wallMs / 1000)),
      throttled,
      errors,
      rejected_spans: rejected,
      latency_ms: {
        p50: percentile(sorted, 0.5),
        p90: percentile(sorted, 0.9),
        p99: percentile(sorted, 0.99),
        max: percentile(sorted, 1),
      },
    })}\n`,
  );
}

main().catch((err) => {
  process.stderr.write(`load generator failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
