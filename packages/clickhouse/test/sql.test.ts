import {
  identifier,
  inline,
  joinSql,
  literal,
  PARAMS_BUDGET,
  parameterized,
  quoteString,
  raw,
  SqlFragment,
  type SqlValue,
  sql,
} from '@tapwire/clickhouse';
import { describe, expect, it } from 'vitest';

describe('quoteString', () => {
  it('escapes quotes, backslashes and control characters', () => {
    expect(quoteString("it's")).toBe("'it\\'s'");
    expect(quoteString('a\\b')).toBe("'a\\\\b'");
    expect(quoteString('\\')).toBe("'\\\\'");
    expect(quoteString('nul\0')).toBe("'nul\\0'");
    expect(quoteString('l1\nl2\r\t')).toBe("'l1\\nl2\\r\\t'");
    expect(quoteString('\x1b\x7f\x01')).toBe("'\\x1b\\x7f\\x01'");
  });
  it('keeps an injection attempt inside one literal', () => {
    expect(quoteString("'); DROP TABLE x; --")).toBe("'\\'); DROP TABLE x; --'");
  });
  it('leaves unicode as it is', () => {
    expect(quoteString('日本 🚀 ü')).toBe("'日本 🚀 ü'");
  });
});

describe('literal and sql', () => {
  it('renders every supported value', () => {
    expect(literal(42)).toBe('42');
    expect(literal(-1)).toBe('(-1)');
    expect(literal(0.5)).toBe('0.5');
    expect(literal(10n ** 20n)).toBe('100000000000000000000');
    expect(literal(true)).toBe('1');
    expect(literal(null)).toBe('NULL');
    expect(literal(['a', 1])).toBe("['a', 1]");
    expect(literal(new Date('2026-11-26T00:00:01.999Z'))).toBe("toDateTime(1795651201, 'UTC')");
  });
  it('refuses NaN, infinities and invalid dates', () => {
    expect(() => literal(Number.NaN)).toThrow('value cannot be used in SQL: not a finite number: NaN');
    expect(() => literal(Number.NEGATIVE_INFINITY)).toThrow('not a finite number');
    expect(() => literal(new Date('nope'))).toThrow('invalid date');
  });
  it('cannot form a comment from a negative number after a minus', () => {
    expect(sql`SELECT 1 -${-1}`.text).toBe('SELECT 1 -(-1)');
  });
  it('splices fragments and identifiers as they are, values as literals', () => {
    const where = joinSql([sql`a = ${'x'}`, sql`b > ${2}`], ' AND ');
    expect(sql`SELECT * FROM ${identifier('t')} WHERE ${where}`.text).toBe(
      "SELECT * FROM `t` WHERE a = 'x' AND b > 2",
    );
    expect(raw('SELECT 1')).toBeInstanceOf(SqlFragment);
  });
  it('accepts only plain identifiers', () => {
    expect(identifier('access_logs').text).toBe('`access_logs`');
    for (const bad of ['', '1abc', 'a-b', 'a b', 'a`b', 'db.table', 'x'.repeat(129)]) {
      expect(() => identifier(bad), bad).toThrow('not a plain identifier');
    }
  });
});

describe('parameterized', () => {
  // The placeholder type is the type ClickHouse gives the inline literal (toTypeName on 18.16 and
  // 26.9), so both renderings give the same answers and the same JSON.
  const one = (value: SqlValue) => parameterized(sql`SELECT ${value} AS v`);

  it.each<[string, SqlValue, string, unknown]>([
    [
      'a string, as it is (the client escapes it)',
      "it's \\ a\tb\n\0 日本",
      'String',
      "it's \\ a\tb\n\0 日本",
    ],
    ['an empty string', '', 'String', ''],
    ['0', 0, 'UInt8', 0],
    ['255', 255, 'UInt8', 255],
    ['256', 256, 'UInt16', 256],
    ['65536', 65_536, 'UInt32', 65_536],
    ['2^32', 2 ** 32, 'UInt64', 2 ** 32],
    ['-1', -1, 'Int8', -1],
    ['-129', -129, 'Int16', -129],
    ['-2^31', -(2 ** 31), 'Int32', -(2 ** 31)],
    ['-2^31 - 1', -(2 ** 31) - 1, 'Int64', -(2 ** 31) - 1],
    ['2^63 as a bigint', 2n ** 63n, 'UInt64', 2n ** 63n],
    ['2^64 - 1 as a bigint', 2n ** 64n - 1n, 'UInt64', 2n ** 64n - 1n],
    ['2^64 as a bigint (Float64, as the literal)', 2n ** 64n, 'Float64', 2n ** 64n],
    ['-2^63 as a bigint', -(2n ** 63n), 'Int64', -(2n ** 63n)],
    ['a fraction', 0.5, 'Float64', 0.5],
    ['a negative fraction', -2.25, 'Float64', -2.25],
    ['1e21 (written with an exponent, a Float64 literal)', 1e21, 'Float64', 1e21],
    ['-0', -0, 'UInt8', -0],
    ['true', true, 'UInt8', 1],
    ['false', false, 'UInt8', 0],
    [
      'a date, in UTC, whole seconds',
      new Date('2026-11-26T00:00:01.999Z'),
      "DateTime('UTC')",
      '2026-11-26 00:00:01',
    ],
    ['the epoch', new Date(0), "DateTime('UTC')", '1970-01-01 00:00:00'],
    ['the last DateTime', new Date(4_294_967_295_000), "DateTime('UTC')", '2106-02-07 06:28:15'],
    ['strings', ['a', "b'c"], 'Array(String)', ['a', "b'c"]],
    ['unsigned and signed', [1, -1], 'Array(Int16)', [1, -1]],
    ['UInt16 and Int8', [300, -1], 'Array(Int32)', [300, -1]],
    ['UInt32 and Int8', [2 ** 32 - 1, -1], 'Array(Int64)', [2 ** 32 - 1, -1]],
    ['integers and fractions', [1, 0.5], 'Array(Float64)', [1, 0.5]],
    ['booleans', [true, false], 'Array(UInt8)', [1, 0]],
    ['dates', [new Date(1000)], "Array(DateTime('UTC'))", ['1970-01-01 00:00:01']],
    ['arrays', [[1], [-1, 300]], 'Array(Array(Int32))', [[1], [-1, 300]]],
    ['arrays of strings', [['a'], ['b', 'c']], 'Array(Array(String))', [['a'], ['b', 'c']]],
  ])('%s', (_name, value, type, sent) => {
    expect(one(value)).toEqual({ query: `SELECT {p0:${type}} AS v`, params: { p0: sent } });
  });

  it.each<[string, SqlValue]>([
    ['NULL', null],
    ['an empty array', []],
    ['strings with numbers (no common type)', ['a', 1]],
    ['UInt64 with a negative (ClickHouse 26 makes a Variant of it)', [2n ** 63n, -1]],
    ['an array holding NULL', [1, null]],
    ['an array holding a fragment', [raw('now()')]],
    ['an array holding an empty array', [[1], []]],
    ['an array of arrays and numbers', [[1], 2]],
    ['a date before 1970', new Date(-1000)],
    ['a date after 2106-02-07 06:28:15', new Date(4_294_967_296_000)],
  ])('keeps %s an inline literal', (_name, value) => {
    expect(one(value)).toEqual({ query: `SELECT ${literal(value)} AS v`, params: {} });
  });

  it('keeps identifiers, fragments and inline() values as text and gives equal values one name', () => {
    const where = joinSql([sql`a = ${'x'}`, sql`b > ${2}`, sql`c = ${'x'}`, sql`d = ${2n}`], ' AND ');
    const statement = sql`SELECT * FROM ${identifier('t')} WHERE ${where} AND ts > ${raw('now()')} LIMIT ${inline(10)}`;
    expect(statement.text).toBe(
      "SELECT * FROM `t` WHERE a = 'x' AND b > 2 AND c = 'x' AND d = 2 AND ts > now() LIMIT 10",
    );
    expect(parameterized(statement)).toEqual({
      query:
        'SELECT * FROM `t` WHERE a = {p0:String} AND b > {p1:UInt8} AND c = {p0:String} AND d = {p2:UInt8} AND ts > now() LIMIT 10',
      params: { p0: 'x', p1: 2, p2: 2n },
    });
  });

  it('measures a string with a lone surrogate as the URL will carry it', () => {
    expect(one('a\ud800b')).toEqual({ query: 'SELECT {p0:String} AS v', params: { p0: 'a\ud800b' } });
  });

  it('renders a statement with no values as its text', () => {
    expect(parameterized(raw('SELECT 1'))).toEqual({ query: 'SELECT 1', params: {} });
  });

  it(`sends a statement whose values pass ${PARAMS_BUDGET} URL-encoded characters with inline literals`, () => {
    const seqs = Array.from({ length: 2000 }, (_, i) => sql`${BigInt(1_000_000 + i)}`);
    const statement = sql`SELECT count() FROM t WHERE source_id = ${'a'} AND source_seq IN (${joinSql(seqs, ', ')})`;
    expect(parameterized(statement)).toEqual({ query: statement.text, params: {} });
    const few = sql`SELECT count() FROM t WHERE source_seq IN (${joinSql(seqs.slice(0, 3), ', ')})`;
    expect(parameterized(few).query).toBe(
      'SELECT count() FROM t WHERE source_seq IN ({p0:UInt32}, {p1:UInt32}, {p2:UInt32})',
    );
  });

  it('still refuses what literal refuses, where the statement is written', () => {
    expect(() => sql`SELECT ${Number.NaN}`).toThrow('not a finite number');
    expect(() => sql`SELECT ${[1, Number.POSITIVE_INFINITY]}`).toThrow('not a finite number');
    expect(() => sql`SELECT ${new Date('nope')}`).toThrow('invalid date');
  });
});
