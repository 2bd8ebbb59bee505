import { hashToken } from '@tapwire/config';
import type { OtlpToken } from './config.js';

/** Exporter is who an export comes from: the token's name and the tenant its spans belong to. */
export interface Exporter {
  readonly name: string;
  readonly tenant: string;
}

/** TokenLookup resolves the credentials an export carries to its exporter, or undefined. */
export type TokenLookup = (
  authorization: string | undefined,
  tapwireToken: string | undefined,
) => Exporter | undefined;

const BEARER = /^Bearer[ ]+([^\s]{1,512})\s*$/i;

/**
 * createTokenLookup indexes the configured tokens by hash. `Authorization: Bearer <token>` or
 * `x-tapwire-token: <token>` (HTTP headers or gRPC metadata); the token text is hashed once per
 * request and never kept or logged. The tenant comes only from the token.
 */
export function createTokenLookup(tokens: readonly OtlpToken[]): TokenLookup {
  const byHash = new Map<string, Exporter>(tokens.map((t) => [t.sha256, { name: t.name, tenant: t.tenant }]));
  return (authorization, tapwireToken) => {
    const bearer = authorization ? BEARER.exec(authorization)?.[1] : undefined;
    const token = bearer ?? (tapwireToken && tapwireToken.length <= 512 ? tapwireToken.trim() : undefined);
    if (!token) return undefined;
    return byHash.get(hashToken(token));
  };
}
