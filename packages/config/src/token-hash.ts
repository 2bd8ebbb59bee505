import { createHash } from 'node:crypto';
import { z } from 'zod';

/** hashToken returns the SHA-256 hex of a token's text, the form tokens are configured in. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** tokenNameSchema is the name of a configured token (the API's, the OTLP receiver's): logged, never the token. */
export const tokenNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, "_", "." or "-"')
  .describe('Name of the token (logged; never the token itself).');

/** tokenSha256Schema is a configured token's hashToken: the token itself never appears in config. */
export const tokenSha256Schema = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters (`tapwire token --hash` prints it)')
  .describe('SHA-256 of the token text, hex. The token itself never appears in config.');
