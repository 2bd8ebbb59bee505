import { z } from 'zod';
import { OtlpRequestError } from './errors.js';
import type { WireAnyValue, WireExportRequest } from './wire.js';

// OTLP/JSON (opentelemetry-proto docs/specification.md#json-protobuf-encoding): proto3 JSON with
// lowerCamelCase names, trace and span ids as hex (not base64), enums as integers, 64-bit
// integers as strings or numbers. Receivers must also accept the original snake_case names and
// ignore fields they do not know, so the objects below are not strict. Ids are checked by the
// mapper, which rejects only the span that carries a bad one.

// zod's .int() stops at 2^53, but nanosecond timestamps as JSON numbers are always past it.
const wholeNumber = z.number().refine(Number.isInteger);
const uint64 = z.union(
  [z.string().regex(/^\d{1,20}$/), wholeNumber.refine((n) => n >= 0)],
  'must be an unsigned integer, as a string or a number',
);
const int64 = z.union(
  [z.string().regex(/^-?\d{1,19}$/), wholeNumber],
  'must be an integer, as a string or a number',
);
const uint32 = z.union(
  [
    z.number().int().nonnegative().max(4_294_967_295),
    z
      .string()
      .regex(/^\d{1,10}$/)
      .transform(Number),
  ],
  'must be an unsigned 32-bit integer',
);
const double = z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity'])], 'must be a number');
const enumValue = z.union([z.number().int(), z.string()], 'must be an enum number or name');
const id = z.string();

/** MAX_VALUE_DEPTH is how deep arrays and key-value lists may nest inside one OTLP/JSON attribute value. */
export const MAX_VALUE_DEPTH = 16;

// AnyValue nests through arrayValue and kvlistValue. The schema is unrolled to MAX_VALUE_DEPTH
// levels instead of being recursive: zod's recursive schemas track cycles on every object they
// parse, which cost a third of the OTLP/JSON path.
function anyValueSchema(depth: number): z.ZodType<WireAnyValue> {
  const nested: z.ZodType<WireAnyValue> =
    depth > 0 ? anyValueSchema(depth - 1) : z.never(`nests more than ${MAX_VALUE_DEPTH} levels`);
  const keyValue = z.object({ key: z.string().nullish(), value: nested.nullish() });
  return z.object({
    stringValue: z.string().nullish(),
    boolValue: z.boolean().nullish(),
    intValue: int64.nullish(),
    doubleValue: double.nullish(),
    bytesValue: z.string().nullish(),
    arrayValue: z.object({ values: z.array(nested).nullish() }).nullish(),
    kvlistValue: z.object({ values: z.array(keyValue).nullish() }).nullish(),
  });
}
const keyValue = z.object({ key: z.string().nullish(), value: anyValueSchema(MAX_VALUE_DEPTH).nullish() });
const attributes = z.array(keyValue).nullish();

const span = z.object({
  traceId: id.nullish(),
  spanId: id.nullish(),
  parentSpanId: id.nullish(),
  name: z.string().nullish(),
  kind: enumValue.nullish(),
  startTimeUnixNano: uint64.nullish(),
  endTimeUnixNano: uint64.nullish(),
  attributes,
  droppedAttributesCount: uint32.nullish(),
  events: z
    .array(
      z.object({
        timeUnixNano: uint64.nullish(),
        name: z.string().nullish(),
        attributes,
        droppedAttributesCount: uint32.nullish(),
      }),
    )
    .nullish(),
  droppedEventsCount: uint32.nullish(),
  links: z
    .array(
      z.object({
        traceId: id.nullish(),
        spanId: id.nullish(),
        attributes,
        droppedAttributesCount: uint32.nullish(),
      }),
    )
    .nullish(),
  droppedLinksCount: uint32.nullish(),
  status: z.object({ message: z.string().nullish(), code: enumValue.nullish() }).nullish(),
});

/** jsonExportRequestSchema validates an OTLP/JSON ExportTraceServiceRequest (after snake_case names are camelCased). */
export const jsonExportRequestSchema = z.object({
  resourceSpans: z
    .array(
      z.object({
        resource: z.object({ attributes, droppedAttributesCount: uint32.nullish() }).nullish(),
        scopeSpans: z
          .array(
            z.object({
              scope: z.object({ name: z.string().nullish(), version: z.string().nullish() }).nullish(),
              spans: z.array(span).nullish(),
            }),
          )
          .nullish(),
      }),
    )
    .nullish(),
});

const MAX_ISSUES = 5;

function describeIssues(error: z.ZodError): string {
  const shown = error.issues
    .slice(0, MAX_ISSUES)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`);
  const more = error.issues.length - shown.length;
  return more > 0 ? `${shown.join('; ')}; … and ${more} more` : shown.join('; ');
}

// Every snake_case OTLP field name ends in one of these words; a body without any of them needs
// no renaming walk. A match inside a value (an attribute named "user_id") only costs the walk.
// One regex pass over the text is several times faster than one includes() per word.
const SNAKE_ENDING = /_(?:spans|id|nano|value|count|url|state)"/;

function camelCase(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

// OTLP/JSON has no map fields (attributes are lists of {key, value}), so every object key is a
// field name and can be renamed safely.
function camelizeKeys(value: unknown): void {
  if (Array.isArray(value)) {
    for (const item of value) camelizeKeys(item);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    camelizeKeys(obj[key]);
    if (key.includes('_')) {
      const name = camelCase(key);
      if (!Object.hasOwn(obj, name)) obj[name] = obj[key];
      delete obj[key];
    }
  }
}

/** parseJsonExportRequest parses and validates an OTLP/JSON body; throws OtlpRequestError naming the bad field. */
export function parseJsonExportRequest(text: string): WireExportRequest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new OtlpRequestError(`invalid OTLP/JSON request: ${(err as Error).message}`, { cause: err });
  }
  let result: ReturnType<typeof jsonExportRequestSchema.safeParse>;
  try {
    if (SNAKE_ENDING.test(text)) camelizeKeys(raw);
    result = jsonExportRequestSchema.safeParse(raw);
  } catch (err) {
    // Only a pathological nesting depth gets here (a stack overflow while walking it).
    throw new OtlpRequestError('invalid OTLP/JSON request: nested too deeply', { cause: err });
  }
  if (!result.success)
    throw new OtlpRequestError(`invalid OTLP/JSON request: ${describeIssues(result.error)}`);
  return result.data as WireExportRequest;
}
