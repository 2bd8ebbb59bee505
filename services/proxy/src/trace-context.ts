import { randomFillSync } from 'node:crypto';

/** TraceParent is a parsed W3C traceparent header. */
export interface TraceParent {
  traceId: string;
  parentId: string;
  sampled: boolean;
}

const HEX = /^[0-9a-f]+$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/**
 * parseTraceParent reads a W3C traceparent (https://www.w3.org/TR/trace-context/#traceparent-header);
 * anything invalid gives undefined so the proxy starts a new trace.
 */
export function parseTraceParent(value: string | undefined): TraceParent | undefined {
  if (value === undefined || value.length < 55) return undefined;
  const v = value.trim();
  const version = v.slice(0, 2);
  if (!HEX.test(version) || version === 'ff') return undefined;
  if (version === '00' && v.length !== 55) return undefined;
  if (v.length > 55 && v[55] !== '-') return undefined;
  if (v[2] !== '-' || v[35] !== '-' || v[52] !== '-') return undefined;
  const traceId = v.slice(3, 35);
  const parentId = v.slice(36, 52);
  const flags = v.slice(53, 55);
  if (!HEX.test(traceId) || !HEX.test(parentId) || !HEX.test(flags)) return undefined;
  if (traceId === ZERO_TRACE || parentId === ZERO_SPAN) return undefined;
  return { traceId, parentId, sampled: (Number.parseInt(flags, 16) & 1) === 1 };
}

/** formatTraceParent renders a version-00 traceparent. */
export function formatTraceParent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

/**
 * IdSource hands out random trace and span ids from a pooled buffer: one getRandomValues call
 * per 4 KiB instead of one per id.
 */
export interface IdSource {
  traceId(): string;
  spanId(): string;
}

/** createIdSource builds an IdSource; ids are never all zeros. */
export function createIdSource(poolBytes = 4096): IdSource {
  const pool = Buffer.allocUnsafe(poolBytes);
  let offset = poolBytes;
  function take(n: number): string {
    for (;;) {
      if (offset + n > poolBytes) {
        randomFillSync(pool);
        offset = 0;
      }
      const id = pool.toString('hex', offset, offset + n);
      offset += n;
      if (!/^0+$/.test(id)) return id;
    }
  }
  return { traceId: () => take(16), spanId: () => take(8) };
}
