import { parseError } from '@clickhouse/client';
import { classifyError } from '@tapwire/clickhouse';
import { describe, expect, it } from 'vitest';

describe('classifyError', () => {
  it('keeps the server code of an 18.16 error body', () => {
    const err = parseError(
      "Code: 60, e.displayText() = DB::Exception: Table x.nope doesn't exist., e.what() = DB::Exception\n",
    );
    expect(classifyError(err)).toMatchObject({ code: 'TAPWIRE_CH_QUERY_FAILED', serverCode: 60 });
  });

  it('keeps the server code of a modern error body, whose message @clickhouse/client strips of "Code: N"', () => {
    const err = parseError(
      'Code: 44. DB::Exception: Cannot add column `x`: column with this name already exists. (ILLEGAL_COLUMN) (version 26.9.2.1 (official build))\n',
    );
    expect(err.message).not.toMatch(/Code:/);
    expect(classifyError(err)).toMatchObject({ code: 'TAPWIRE_CH_QUERY_FAILED', serverCode: 44 });
    const timeout = parseError(
      'Code: 159. DB::Exception: Timeout exceeded: elapsed 1.0 seconds, maximum: 1. (TIMEOUT_EXCEEDED) (version 26.9.2.1)\n',
    );
    expect(classifyError(timeout)).toMatchObject({ code: 'TAPWIRE_CH_TIMEOUT', serverCode: 159 });
  });

  it('a network failure is unreachable, not a server code', () => {
    const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    expect(classifyError(err)).toMatchObject({ code: 'TAPWIRE_CH_UNREACHABLE', serverCode: undefined });
  });
});
