import { identifier, joinSql, literal, quoteString, raw, SqlFragment, sql } from '@tapwire/clickhouse';
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
