import { describe, expect, it } from 'vitest';
import {
  adminListenerSchema,
  hashToken,
  portSchema,
  tokenNameSchema,
  tokenSha256Schema,
} from '../src/index.js';

describe('the config pieces services share', () => {
  it('adminListenerSchema: loopback at the given default port, either overridable, a port over 65535 refused', () => {
    expect(adminListenerSchema(9468).parse(undefined)).toEqual({ host: '127.0.0.1', port: 9468 });
    expect(adminListenerSchema(9468).parse({ host: '0.0.0.0', port: 0 })).toEqual({
      host: '0.0.0.0',
      port: 0,
    });
    expect(adminListenerSchema(9468).safeParse({ port: 65_536 }).success).toBe(false);
    expect(portSchema.safeParse(1.5).success).toBe(false);
  });

  it('token name and sha256: what `tapwire token` prints is taken, anything else refused with what is wrong', () => {
    expect(tokenSha256Schema.parse(hashToken('tw_x'))).toBe(hashToken('tw_x'));
    expect(tokenSha256Schema.safeParse(hashToken('tw_x').toUpperCase()).error?.issues[0]?.message).toBe(
      'must be 64 lowercase hex characters (`tapwire token --hash` prints it)',
    );
    expect(tokenNameSchema.parse('orders-api.v2_1')).toBe('orders-api.v2_1');
    expect(tokenNameSchema.safeParse('orders api').error?.issues[0]?.message).toBe(
      'must be 1-64 letters, digits, "_", "." or "-"',
    );
    expect(tokenNameSchema.safeParse('x'.repeat(65)).success).toBe(false);
  });
});
