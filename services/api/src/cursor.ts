import { type LogCursor, logCursorSchema } from '@tapwire/analytics';
import { ApiError } from './errors.js';

/** encodeCursor turns a log position into the opaque `next_cursor` string. */
export function encodeCursor(cursor: { ts_us: number; id: string }): string {
  return Buffer.from(JSON.stringify([cursor.ts_us, cursor.id]), 'utf8').toString('base64url');
}

/** decodeCursor reads a `cursor` parameter back, or answers 400 naming the field. */
export function decodeCursor(text: string): LogCursor {
  try {
    const value: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2) {
      const parsed = logCursorSchema.safeParse({ tsUs: value[0], id: value[1] });
      if (parsed.success) return parsed.data;
    }
  } catch {
    // Falls through to the 400 below: any malformed cursor is the same client error.
  }
  throw new ApiError('TAPWIRE_API_BAD_REQUEST', 'cursor: not a cursor this API returned', {
    field: 'cursor',
  });
}
