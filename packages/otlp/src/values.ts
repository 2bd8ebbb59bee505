import type { WireAnyValue, WireInt64 } from './wire.js';

const hasOwn = Object.hasOwn;

function base64(b: Uint8Array | string): string {
  if (typeof b === 'string') return b;
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

/** int64Text renders a 64-bit integer in decimal, exactly (a Long renders itself). */
export function int64Text(v: WireInt64): string {
  return typeof v === 'object' ? v.toString() : String(v);
}

function doubleText(v: number | string): string {
  return typeof v === 'number' ? String(v) : v;
}

function jsonValue(v: WireAnyValue | null | undefined): unknown {
  if (v == null) return null;
  if (hasOwn(v, 'stringValue')) return v.stringValue ?? '';
  if (hasOwn(v, 'boolValue')) return v.boolValue === true;
  if (hasOwn(v, 'intValue')) {
    const s = v.intValue == null ? '0' : int64Text(v.intValue);
    const n = Number(s);
    return Number.isSafeInteger(n) ? n : s;
  }
  if (hasOwn(v, 'doubleValue')) {
    const d = v.doubleValue ?? 0;
    return typeof d === 'number' && Number.isFinite(d) ? d : doubleText(d);
  }
  if (hasOwn(v, 'bytesValue')) return base64(v.bytesValue ?? '');
  if (hasOwn(v, 'arrayValue')) return (v.arrayValue?.values ?? []).map(jsonValue);
  if (hasOwn(v, 'kvlistValue')) {
    const out: Record<string, unknown> = {};
    for (const kv of v.kvlistValue?.values ?? []) {
      Object.defineProperty(out, kv.key ?? '', {
        value: jsonValue(kv.value),
        enumerable: true,
        writable: true,
      });
    }
    return out;
  }
  return null;
}

/**
 * anyValueText renders an OTLP AnyValue as attribute text: strings as is, booleans and numbers
 * as text, arrays and key-value lists as JSON, bytes as base64, an empty value as ''.
 */
export function anyValueText(v: WireAnyValue | null | undefined): string {
  if (v == null) return '';
  if (hasOwn(v, 'stringValue')) return v.stringValue ?? '';
  if (hasOwn(v, 'intValue')) return v.intValue == null ? '0' : int64Text(v.intValue);
  if (hasOwn(v, 'boolValue')) return v.boolValue === true ? 'true' : 'false';
  if (hasOwn(v, 'doubleValue')) return doubleText(v.doubleValue ?? 0);
  if (hasOwn(v, 'arrayValue') || hasOwn(v, 'kvlistValue')) return JSON.stringify(jsonValue(v));
  if (hasOwn(v, 'bytesValue')) return base64(v.bytesValue ?? '');
  return '';
}

/**
 * cutText keeps a text within maxChars: a longer one becomes its first characters and a marker
 * `…[cut <k> chars]` saying how many were dropped, the whole at most maxChars long.
 */
export function cutText(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  // The marker's length depends on the number it holds; two passes settle it.
  let keep = maxChars - `…[cut ${text.length - maxChars} chars]`.length;
  keep = maxChars - `…[cut ${text.length - keep} chars]`.length;
  if (keep <= 0) return text.slice(0, maxChars);
  // Never split a surrogate pair: half of one is not a character.
  const last = text.charCodeAt(keep - 1);
  if (last >= 0xd800 && last <= 0xdbff) keep--;
  return `${text.slice(0, keep)}…[cut ${text.length - keep} chars]`;
}

/** Nanos is a nanosecond timestamp split into whole microseconds and the nanoseconds left over. */
export interface Nanos {
  micros: number;
  nanos: number;
}

/**
 * splitNanos splits a uint64 nanosecond count into microseconds and remaining nanoseconds,
 * exactly: a Long's halves are combined without ever holding the 64-bit value in a double.
 */
export function splitNanos(v: WireInt64 | null | undefined, out: Nanos): Nanos {
  if (v == null) {
    out.micros = 0;
    out.nanos = 0;
  } else if (typeof v === 'object') {
    // 2^32 = 4_294_967 * 1000 + 296
    const high = v.high >>> 0;
    const rest = high * 296 + (v.low >>> 0);
    out.micros = high * 4_294_967 + Math.floor(rest / 1000);
    out.nanos = rest % 1000;
  } else if (typeof v === 'string') {
    if (v.length <= 3) {
      out.micros = 0;
      out.nanos = Number(v);
    } else {
      out.micros = Number(v.slice(0, -3));
      out.nanos = Number(v.slice(-3));
    }
  } else {
    out.micros = Math.floor(v / 1000);
    out.nanos = Math.max(0, Math.min(999, Math.floor(v - out.micros * 1000)));
  }
  return out;
}
