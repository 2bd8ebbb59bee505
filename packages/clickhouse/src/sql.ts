import { TapwireClickHouseError } from './errors.js';

/**
 * This file is the one quoting helper: every value that reaches SQL text goes through `literal`,
 * every name through `identifier`, and queries are assembled with the `sql` tag.
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

/** SqlFragment is SQL text that is already safe to splice into a query. */
export class SqlFragment {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
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

/** literal renders a value as a ClickHouse literal; non-finite numbers and invalid dates are refused. */
export function literal(value: SqlValue): string {
  if (value instanceof SqlFragment) return value.text;
  if (value === null) return 'NULL';
  if (typeof value === 'string') return quoteString(value);
  if (typeof value === 'boolean') return value ? '1' : '0';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) {
      throw new TapwireClickHouseError('TAPWIRE_CH_UNSAFE_SQL_VALUE', `not a finite number: ${value}`);
    }
    // Parenthesised so `- -1` style juxtaposition can never form a comment or a different token.
    return value < 0 ? `(${String(value)})` : String(value);
  }
  if (value instanceof Date) {
    const ms = value.getTime();
    if (Number.isNaN(ms)) throw new TapwireClickHouseError('TAPWIRE_CH_UNSAFE_SQL_VALUE', 'invalid date');
    return `toDateTime(${Math.floor(ms / 1000)}, 'UTC')`;
  }
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

/** sql is a template tag: interpolated values become literals, fragments are spliced as they are. */
export function sql(strings: TemplateStringsArray, ...values: SqlValue[]): SqlFragment {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += literal(values[i]!) + (strings[i + 1] ?? '');
  return new SqlFragment(out);
}

/** joinSql joins fragments with a separator, e.g. conditions with ' AND '. */
export function joinSql(parts: readonly SqlFragment[], separator: string): SqlFragment {
  return new SqlFragment(parts.map((p) => p.text).join(separator));
}
