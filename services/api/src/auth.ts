import { hashToken } from '@tapwire/config';
import type { ApiToken, TokenScope } from './config.js';
import { ApiError } from './errors.js';

/** Principal is who a request acts as: the token's name, tenant binding and scopes. */
export interface Principal {
  readonly name: string;
  /** null when the token reads every tenant. */
  readonly tenant: string | null;
  readonly scopes: ReadonlySet<TokenScope>;
}

/** Authenticator resolves an Authorization header to a principal, or throws 401. */
export interface Authenticator {
  authenticate(authorization: string | undefined): Principal;
}

/** createAuthenticator indexes configured tokens by hash; the token text is hashed once per request and never kept. */
export function createAuthenticator(tokens: readonly ApiToken[]): Authenticator {
  const byHash = new Map<string, Principal>(
    tokens.map((t) => [
      t.sha256,
      { name: t.name, tenant: t.tenant === '*' ? null : t.tenant, scopes: new Set(t.scopes) },
    ]),
  );
  return {
    authenticate(authorization) {
      if (!authorization)
        throw new ApiError('TAPWIRE_API_UNAUTHORIZED', 'missing Authorization: Bearer <token>');
      const m = /^Bearer[ ]+([^\s]{1,512})\s*$/i.exec(authorization);
      if (!m?.[1]) throw new ApiError('TAPWIRE_API_UNAUTHORIZED', 'Authorization must be "Bearer <token>"');
      const principal = byHash.get(hashToken(m[1]));
      if (!principal) throw new ApiError('TAPWIRE_API_UNAUTHORIZED', 'unknown token');
      return principal;
    },
  };
}

/** requireScope throws 403 unless the principal holds the scope. */
export function requireScope(principal: Principal, scope: TokenScope): void {
  if (!principal.scopes.has(scope))
    throw new ApiError('TAPWIRE_API_FORBIDDEN', `this endpoint needs the "${scope}" scope`);
}

/**
 * scopeFor resolves the tenant a query reads: a bound token reads only its tenant (asking for
 * another is 403); an all-tenant token reads every tenant or the one it names.
 */
export function scopeFor(principal: Principal, requested: string | undefined): { tenant: string | null } {
  if (principal.tenant === null) return { tenant: requested ?? null };
  if (requested !== undefined && requested !== principal.tenant)
    throw new ApiError('TAPWIRE_API_FORBIDDEN', 'this token cannot read that tenant', { field: 'tenant' });
  return { tenant: principal.tenant };
}
