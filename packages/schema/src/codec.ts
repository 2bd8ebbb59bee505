import type { z } from 'zod';
import { type Accepts, compileAccepts } from './fast-check.js';
import { LIMITS } from './primitives.js';

/** DecodeFailureCode says why a message was rejected; it is stored with the DLQ record. */
export type DecodeFailureCode = 'too_large' | 'not_json' | 'not_object' | 'unknown_version' | 'invalid';

/** DecodeResult is either a validated, upgraded event or the reason it was rejected. */
export type DecodeResult<T> = { ok: true; event: T } | { ok: false; code: DecodeFailureCode; reason: string };

/** Upgrader turns an event valid at version n into the shape of version n + 1 (with `v` set to n + 1). */
export type Upgrader = (event: Record<string, unknown>) => Record<string, unknown>;

/** EventDefinition describes one event kind: its topic, every known version's schema and the upgrade chain. */
export interface EventDefinition<T> {
  readonly kind: string;
  readonly topic: string;
  readonly currentVersion: number;
  /** Schema of each known version; the current one's output type is T. */
  readonly versions: Readonly<Record<number, z.ZodType>>;
  /** upgrades[n] upgrades version n to n + 1; every version below current needs one. */
  readonly upgrades: Readonly<Record<number, Upgrader>>;
  /** Type carrier only; never read. */
  readonly _type?: T;
}

/**
 * EventCodec validates, upgrades and encodes one event kind. `In` is what a producer may encode:
 * the current version, or an older one a producer still writes (consumers upgrade it).
 */
export interface EventCodec<T, In = T> {
  readonly definition: EventDefinition<T>;
  /** decode parses raw bytes from the log, upgrading older versions; it never throws. */
  decode(raw: Buffer | string): DecodeResult<T>;
  /** parse validates an already-parsed value, upgrading older versions; it never throws. */
  parse(value: unknown): DecodeResult<T>;
  /** encode validates an event at its own version (a known one, usually the current) and serializes it to JSON. */
  encode(event: In): string;
}

/** formatZodIssues renders zod issues as `path: message` pairs joined by `; `. */
export function formatZodIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}

/** EventValidationError is thrown by `encode` when an event does not match its current schema. */
export class EventValidationError extends Error {
  readonly code = 'TAPWIRE_SCHEMA_INVALID_EVENT';
  constructor(kind: string, reason: string) {
    super(`invalid ${kind} event: ${reason}`);
    this.name = 'EventValidationError';
  }
}

/** createEventCodec builds the codec of one event definition; upgrade chains are checked here, once. */
export function createEventCodec<T, In = T>(definition: EventDefinition<T>): EventCodec<T, In> {
  const current = definition.currentVersion;
  if (definition.versions[current] === undefined) {
    throw new Error(`event ${definition.kind}: no schema for current version ${current}`);
  }
  for (const v of Object.keys(definition.versions).map(Number)) {
    if (v < current) {
      for (let step = v; step < current; step++) {
        if (definition.upgrades[step] === undefined) {
          throw new Error(`event ${definition.kind}: no upgrade from version ${step} to ${step + 1}`);
        }
      }
    }
  }
  const known = Object.keys(definition.versions).join(', ');
  // One compiled check per version: an older event from the log is upgraded on the fast path too.
  const accepts = new Map<number, Accepts | undefined>(
    Object.entries(definition.versions).map(([v, schema]) => [Number(v), compileAccepts(schema)]),
  );
  const acceptsCurrent = accepts.get(current);

  function parse(value: unknown): DecodeResult<T> {
    return check(value, false);
  }

  /**
   * check validates and upgrades; with `fresh` (a value nobody else holds, just parsed) a current
   * event that the compiled check accepts is returned as it is, without zod's copy (fast-check.ts).
   */
  function check(value: unknown, fresh: boolean): DecodeResult<T> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return { ok: false, code: 'not_object', reason: 'event must be a JSON object' };
    }
    const v = (value as { v?: unknown }).v;
    const schema = typeof v === 'number' ? definition.versions[v] : undefined;
    if (typeof v !== 'number' || schema === undefined || v > current) {
      return {
        ok: false,
        code: 'unknown_version',
        reason: `v: unknown ${definition.kind} version ${JSON.stringify(v) ?? 'undefined'} (known: ${known})`,
      };
    }
    if (fresh && v === current && acceptsCurrent?.(value)) return { ok: true, event: value as T };
    if (fresh && v < current && accepts.get(v)?.(value)) {
      // Upgraders copy, so what they return is fresh as well.
      let upgraded = value as Record<string, unknown>;
      for (let step = v; step < current; step++) upgraded = definition.upgrades[step]!(upgraded);
      if (acceptsCurrent?.(upgraded)) return { ok: true, event: upgraded as T };
    }
    const first = schema.safeParse(value);
    if (!first.success) return { ok: false, code: 'invalid', reason: formatZodIssues(first.error) };
    if (v === current) return { ok: true, event: first.data as T };
    let upgraded = first.data as Record<string, unknown>;
    for (let step = v; step < current; step++) upgraded = definition.upgrades[step]!(upgraded);
    const last = definition.versions[current]!.safeParse(upgraded);
    if (!last.success) {
      return {
        ok: false,
        code: 'invalid',
        reason: `after upgrade from v${v}: ${formatZodIssues(last.error)}`,
      };
    }
    return { ok: true, event: last.data as T };
  }

  function decode(raw: Buffer | string): DecodeResult<T> {
    const size = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length;
    if (size > LIMITS.eventBytes) {
      return {
        ok: false,
        code: 'too_large',
        reason: `event is ${size} bytes, limit is ${LIMITS.eventBytes}`,
      };
    }
    let value: unknown;
    try {
      value = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
    } catch (err) {
      return { ok: false, code: 'not_json', reason: `not JSON: ${(err as Error).message}` };
    }
    return check(value, true);
  }

  function encode(event: In): string {
    const v = (event as { v?: unknown }).v;
    // An older known version is written as it is (the producer's choice); consumers upgrade it.
    const schema =
      typeof v === 'number' && v < current && definition.versions[v] !== undefined
        ? definition.versions[v]!
        : definition.versions[current]!;
    const result = schema.safeParse(event);
    if (!result.success) throw new EventValidationError(definition.kind, formatZodIssues(result.error));
    return JSON.stringify(result.data);
  }

  return { definition, decode, parse, encode };
}
