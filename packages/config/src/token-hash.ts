import { createHash } from 'node:crypto';

/** hashToken returns the SHA-256 hex of a token's text, the form tokens are configured in. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
