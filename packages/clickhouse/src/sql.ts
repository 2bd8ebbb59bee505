import { TapwireClickHouseError } from './errors.js';

/**
 * This file is the one quoting helper: every value that reaches SQL text goes through `literal`,
 * every name through `identifier`, and queries are assembled with the `sql` tag. A statement keeps
 * its values apart from its text, so it renders two ways: with inline literals (`text`, what 18.16
 * and every DDL statement get) or with `{pN:Type}` placeholders and the values beside them
 * (`parameterized`, for SELECTs on servers with query parameters).
 */

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

const ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  "'": "\\'",
  '\0': '\\0',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\b': '\\b',
  '\f': '\\f',
  '\v': '\\v',
  '\x07': '\\a',
};

/** quoteString renders a string as a ClickHouse single-quoted literal, escaping quotes, backslashes and control characters. */
export function quoteString(value: string): string {
  // Remaining C0 controls become \xHH so a literal never carries a raw control byte.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
  return `'${value.replace(/[\\'\0\n\r\t\b\f\v\x07]|[\x01-\x06\x0e-\x1f\x7f]/g, (c) => ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}'`;
}

/** A value waiting in a statement: rendered as a literal or as a placeholder. */
interface ValueChunk {
  readonly value: SqlValue;
}
type Chunk = string | ValueChunk;

/** SqlFragment is SQL text that is already safe to splice into a query, with the values it holds. */
export class SqlFragment {
  /** text renders the statement with inline literals. */
  readonly text: string;
  /** chunks are the pieces of trusted text and the values between them. */
  readonly chunks: readonly Chunk[];
  constructor(text: string, chunks?: readonly Chunk[]) {
    this.text = text;
    this.chunks = chunks ?? [text];
  }
  toString(): string {
    return this.text;
  }
}

/** identifier renders a table, column or database name; only [A-Za-z_][A-Za-z0-9_]* is accepted. */
export function identifier(name: string): SqlFragment {
  if (!IDENTIFIER.test(name) || name.length > 128) {
    throw new TapwireClickHouseError(
      'TAPWIRE_CH_UNSAFE_SQL_VALUE',
      `not a plain identifier: ${JSON.stringify(name)}`,
    );
  }
  return new SqlFragment(`\`${name}\``);
}

/** SqlValue is anything `literal` can render. */
export type SqlValue = string | number | bigint | boolean | null | Date | SqlFragment | readonly SqlValue[];

function dateSeconds(value: Date): number {
  const ms = value.getTime();
  if (Number.isNaN(ms)) throw new TapwireClickHouseError('TAPWIRE_CH_UNSAFE_SQL_VALUE', 'invalid date');
  return Math.floor(ms / 1000);
}

function finite(value: number): number {
  if (!Number.isFinite(value)) {
    throw new TapwireClickHouseError('TAPWIRE_CH_UNSAFE_SQL_VALUE', `not a finite number: ${value}`);
  }
  return value;
}

/** literal renders a value as a ClickHouse literal; non-finite numbers and invalid dates are refused. */
export function literal(value: SqlValue): string {
  if (value instanceof SqlFragment) return value.text;
  if (value === null) return 'NULL';
  if (typeof value === 'string') return quoteString(value);
  if (typeof value === 'boolean') return value ? '1' : '0';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') {
    finite(value);
    // Parenthesised so `- -1` style juxtaposition can never form a comment or a different token.
    return value < 0 ? `(${String(value)})` : String(value);
  }
  if (value instanceof Date) return `toDateTime(${dateSeconds(value)}, 'UTC')`;
  if (Array.isArray(value)) return `[${value.map((v) => literal(v)).join(', ')}]`;
  throw new TapwireClickHouseError(
    'TAPWIRE_CH_UNSAFE_SQL_VALUE',
    `unsupported value of type ${typeof value}`,
  );
}

/** raw marks trusted SQL text (written in our source, never derived from input) for splicing. */
export function raw(text: string): SqlFragment {
  return new SqlFragment(text);
}

/**
 * inline keeps a value a literal in both renderings, for the places a placeholder may not go
 * (LIMIT and OFFSET before ClickHouse 22-ish, aggregate function parameters).
 */
export function inline(value: SqlValue): SqlFragment {
  return new SqlFragment(literal(value));
}

/** sql is a template tag: interpolated values become literals, fragments are spliced as they are. */
export function sql(strings: TemplateStringsArray, ...values: SqlValue[]): SqlFragment {
  let out = strings[0] ?? '';
  const chunks: Chunk[] = [out];
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    // Rendering the literal now refuses a bad value (NaN, an invalid date) where it is written.
    out += literal(value) + (strings[i + 1] ?? '');
    if (value instanceof SqlFragment) chunks.push(...value.chunks);
    else chunks.push({ value });
    chunks.push(strings[i + 1] ?? '');
  }
  return new SqlFragment(out, chunks);
}

/** joinSql joins fragments with a separator, e.g. conditions with ' AND '. */
export function joinSql(parts: readonly SqlFragment[], separator: string): SqlFragment {
  const chunks: Chunk[] = [];
  parts.forEach((p, i) => {
    if (i > 0) chunks.push(separator);
    chunks.push(...p.chunks);
  });
  return new SqlFragment(parts.map((p) => p.text).join(separator), chunks);
}

// --- the parameterized rendering -------------------------------------------------------------

/** QueryParamValue is one value of `query_params` as @clickhouse/client sends it (`param_<name>`). */
export type QueryParamValue = string | number | bigint | readonly QueryParamValue[];

/** ParameterizedSql is a statement with `{pN:Type}` placeholders and the values they stand for. */
export interface ParameterizedSql {
  readonly query: string;
  readonly params: Readonly<Record<string, QueryParamValue>>;
}

/**
 * PARAMS_BUDGET caps the URL-encoded size of a statement's parameters: they travel in the URL, and
 * proxies in front of ClickHouse refuse long request lines (@clickhouse/client uses 4096 for the
 * same reason). A statement over it, e.g. a long IN list, goes out with inline literals instead.
 */
export const PARAMS_BUDGET = 4096;

// DateTime holds 1970-01-01 00:00:00 .. 2106-02-07 06:28:15 UTC; outside it the inline
// toDateTime(n, 'UTC') and a parsed parameter disagree, so such dates stay inline.
const MAX_DATETIME_S = 4_294_967_295;

/** A value as a parameter: its ClickHouse type and what to send. */
interface TypedParam {
  readonly type: string;
  readonly value: QueryParamValue;
}

interface IntegerKind {
  readonly signed: boolean;
  readonly bits: 8 | 16 | 32 | 64;
}

const UNSIGNED_MAX: Record<IntegerKind['bits'], bigint> = {
  8: 255n,
  16: 65_535n,
  32: 4_294_967_295n,
  64: 18_446_744_073_709_551_615n,
};
const SIGNED_MIN: Record<IntegerKind['bits'], bigint> = {
  8: -128n,
  16: -32_768n,
  32: -2_147_483_648n,
  64: -9_223_372_036_854_775_808n,
};
const BITS = [8, 16, 32, 64] as const;

// The type ClickHouse gives the literal of an integer: the smallest unsigned type for 0 and up, the
// smallest signed one below 0, Float64 past 64 bits. The placeholder gets the same type, so JSON
// output (64-bit integers quoted) and arithmetic widths match the inline rendering exactly.
function integerKind(value: bigint): IntegerKind | undefined {
  for (const bits of BITS) {
    if (value >= 0n && value <= UNSIGNED_MAX[bits]) return { signed: false, bits };
    if (value < 0n && value >= SIGNED_MIN[bits]) return { signed: true, bits };
  }
  return undefined;
}

const integerType = (k: IntegerKind) => `${k.signed ? 'Int' : 'UInt'}${k.bits}`;

function dateText(seconds: number): string {
  return new Date(seconds * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

/** Element types of an array, before they are merged into the array's one element type. */
type ElementType =
  | { readonly kind: 'int'; readonly int: IntegerKind }
  | { readonly kind: 'float' | 'string' | 'date' }
  | { readonly kind: 'array'; readonly elements: readonly ElementType[] };

function elementType(value: SqlValue): { type: ElementType; value: QueryParamValue } | undefined {
  if (typeof value === 'string') return { type: { kind: 'string' }, value };
  if (typeof value === 'boolean')
    return { type: { kind: 'int', int: { signed: false, bits: 8 } }, value: value ? 1 : 0 };
  if (typeof value === 'bigint' || (typeof value === 'number' && isIntegerLiteral(value))) {
    const int = integerKind(BigInt(value));
    return { type: int ? { kind: 'int', int } : { kind: 'float' }, value };
  }
  if (typeof value === 'number') return { type: { kind: 'float' }, value: finite(value) };
  if (value instanceof Date) {
    const s = dateSeconds(value);
    return s < 0 || s > MAX_DATETIME_S ? undefined : { type: { kind: 'date' }, value: dateText(s) };
  }
  if (Array.isArray(value)) {
    const elements = arrayElements(value);
    return elements
      ? {
          type: { kind: 'array', elements: elements.map((e) => e.type) },
          value: elements.map((e) => e.value),
        }
      : undefined;
  }
  return undefined; // NULL and fragments inside arrays stay inline.
}

// An integer literal: no exponent in its text (1e21 is written, and typed, as a Float64).
function isIntegerLiteral(value: number): boolean {
  return Number.isInteger(finite(value)) && !/e/i.test(String(value));
}

// The common type of an array's elements, as ClickHouse infers it for an array literal; undefined
// where it has none or infers something exotic (strings with numbers, UInt64 with negatives).
function commonType(types: readonly ElementType[]): string | undefined {
  const kinds = new Set(types.map((t) => t.kind));
  if (kinds.size === 1 && kinds.has('string')) return 'String';
  if (kinds.size === 1 && kinds.has('date')) return "DateTime('UTC')";
  if (kinds.size === 1 && kinds.has('array')) {
    // [[1], [-1, 300]] is Array(Array(Int32)): the inner arrays' elements share one type.
    const inner = commonType(types.flatMap((t) => (t.kind === 'array' ? t.elements : [])));
    return inner ? `Array(${inner})` : undefined;
  }
  if ([...kinds].some((k) => k !== 'int' && k !== 'float')) return undefined;
  if (kinds.has('float')) return 'Float64';
  const ints = types.flatMap((t) => (t.kind === 'int' ? [t.int] : []));
  const unsigned = Math.max(0, ...ints.filter((k) => !k.signed).map((k) => k.bits));
  const signed = Math.max(0, ...ints.filter((k) => k.signed).map((k) => k.bits));
  if (signed === 0) return `UInt${unsigned}`;
  // A signed type wide enough for the unsigned ones too: UInt8 with Int8 is Int16.
  const bits = Math.max(signed, unsigned === 0 ? 0 : unsigned * 2);
  return bits <= 64 ? `Int${bits}` : undefined;
}

function arrayElements(
  values: readonly SqlValue[],
): { type: ElementType; value: QueryParamValue }[] | undefined {
  if (values.length === 0) return undefined; // [] is Array(Nothing): nothing to gain from a placeholder.
  const elements = values.map(elementType);
  return elements.every((e) => e !== undefined) ? elements : undefined;
}

function arrayParam(values: readonly SqlValue[]): TypedParam | undefined {
  const elements = arrayElements(values);
  const type = elements && commonType(elements.map((e) => e.type));
  return elements && type ? { type: `Array(${type})`, value: elements.map((e) => e.value) } : undefined;
}

/**
 * paramOf gives a value's placeholder type and the value to send, or undefined when the value stays
 * an inline literal (NULL, empty or mixed arrays, dates outside DateTime's range).
 */
function paramOf(value: SqlValue): TypedParam | undefined {
  if (Array.isArray(value)) return arrayParam(value);
  const e = elementType(value);
  if (!e) return undefined;
  switch (e.type.kind) {
    case 'string':
      return { type: 'String', value: e.value };
    case 'date':
      return { type: "DateTime('UTC')", value: e.value };
    case 'float':
      return { type: 'Float64', value: e.value };
    case 'int':
      return { type: integerType(e.type.int), value: e.value };
    default:
      return undefined;
  }
}

// Numbers go as numbers (the client writes them bare, also inside arrays, where a quoted number
// would not parse), bigints as bigints; the JSON of a value identifies it and sizes it.
const valueKey = (value: QueryParamValue) =>
  JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));

// As the client puts it in the URL (URLSearchParams, which also takes lone surrogates).
function encodedLength(name: string, value: QueryParamValue): number {
  const text = typeof value === 'string' ? value : valueKey(value);
  return new URLSearchParams({ [`param_${name}`]: text }).toString().length + 1;
}

/**
 * parameterized renders a statement with a `{pN:Type}` placeholder per value (equal values of one
 * type share one) and the values to send as `query_params`; identifiers and fragments stay text,
 * values `paramOf` cannot type stay literals, and a statement whose values exceed PARAMS_BUDGET
 * comes back whole with inline literals and no params.
 */
export function parameterized(statement: SqlFragment): ParameterizedSql {
  let query = '';
  const params: Record<string, QueryParamValue> = {};
  const names = new Map<string, string>();
  let size = 0;
  for (const chunk of statement.chunks) {
    if (typeof chunk === 'string') {
      query += chunk;
      continue;
    }
    const typed = paramOf(chunk.value);
    if (!typed) {
      query += literal(chunk.value);
      continue;
    }
    const key = `${typed.type}\u0000${valueKey(typed.value)}`;
    let name = names.get(key);
    if (name === undefined) {
      name = `p${names.size}`;
      names.set(key, name);
      params[name] = typed.value;
      size += encodedLength(name, typed.value);
      if (size > PARAMS_BUDGET) return { query: statement.text, params: {} };
    }
    query += `{${name}:${typed.type}}`;
  }
  return { query, params };
}
