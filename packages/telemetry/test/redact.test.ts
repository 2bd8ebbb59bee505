import { describe, expect, it } from 'vitest';
import { createQueryRedactor, DEFAULT_REDACTED_QUERY_PARAMS } from '../src/index.js';

describe('createQueryRedactor', () => {
  const redact = createQueryRedactor(DEFAULT_REDACTED_QUERY_PARAMS);

  it('replaces the values of the listed parameters and keeps the others', () => {
    expect(redact('q=shoes&api_key=sk-live-1&page=2')).toBe('q=shoes&api_key=[REDACTED]&page=2');
  });

  it('matches names case-insensitively and when percent-encoded', () => {
    expect(redact('API_KEY=a&%74oken=b&Password')).toBe(
      'API_KEY=[REDACTED]&%74oken=[REDACTED]&Password=[REDACTED]',
    );
  });

  it('leaves an empty query and a malformed escape alone', () => {
    expect(redact('')).toBe('');
    expect(redact('%zz=1&secret=s')).toBe('%zz=1&secret=[REDACTED]');
  });
});
