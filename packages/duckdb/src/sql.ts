/**
 * The one way SQL for DuckDB is assembled: values never enter SQL text, they are bound as
 * parameters ($1, $2, …); names go through `identifier`; trusted text written in our source
 * through `raw`.
 */

/** DuckValue is a value that can be bound to a parameter. */
export type DuckValue = string | number | bigint | boolean | null | readonly DuckValue[];

type Part = { text: string } | { value: DuckValue };

/** DuckSql is a statement or a piece of one: text with its bound values kept apart. */
export class DuckSql {
  readonly parts: readonly Part[];
  constructor(parts: readonly Part[]) {
    this.parts = parts;
  }
  /** render numbers the parameters and returns the text with its values. */
  render(): { text: string; values: DuckValue[] } {
    const values: DuckValue[] = [];
    let text = '';
    for (const p of this.parts) {
      if ('text' in p) text += p.text;
      else {
        values.push(p.value);
        text += `$${values.length}`;
      }
    }
    return { text, values };
  }
}

/** DuckSqlError says a value or name cannot be used in a statement. */
export class DuckSqlError extends Error {
  readonly code = 'TAPWIRE_DUCKDB_UNSAFE_SQL_VALUE';
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** identifier renders a table or column name; only [A-Za-z_][A-Za-z0-9_]* is accepted. */
export function identifier(name: string): DuckSql {
  if (!IDENTIFIER.test(name) || name.length > 128)
    throw new DuckSqlError(`not a plain identifier: ${JSON.stringify(name)}`);
  return new DuckSql([{ text: `"${name}"` }]);
}

/** raw marks trusted SQL text (written in our source, never derived from input). */
export function raw(text: string): DuckSql {
  return new DuckSql([{ text }]);
}

function check(value: DuckValue): DuckValue {
  if (typeof value === 'number' && !Number.isFinite(value))
    throw new DuckSqlError(`not a finite number: ${value}`);
  if (Array.isArray(value)) for (const v of value) check(v);
  return value;
}

/** sql is a template tag: interpolated values become bound parameters, fragments are spliced. */
export function sql(strings: TemplateStringsArray, ...values: (DuckValue | DuckSql)[]): DuckSql {
  const parts: Part[] = [{ text: strings[0] ?? '' }];
  values.forEach((v, i) => {
    if (v instanceof DuckSql) parts.push(...v.parts);
    else parts.push({ value: check(v) });
    parts.push({ text: strings[i + 1] ?? '' });
  });
  return new DuckSql(parts);
}

/** joinSql joins fragments with a separator, e.g. conditions with ' AND '. */
export function joinSql(parts: readonly DuckSql[], separator: string): DuckSql {
  const out: Part[] = [];
  parts.forEach((p, i) => {
    if (i > 0) out.push({ text: separator });
    out.push(...p.parts);
  });
  return new DuckSql(out);
}
