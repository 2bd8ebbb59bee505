import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { ConfigError } from '@tapwire/config';
import type { Logger } from '@tapwire/telemetry';
import { createVerifier } from 'fast-jwt';
import type { ProxyConfig } from '../config.js';

/** JwtConfig is the validated consumers.jwt section. */
export type JwtConfig = NonNullable<ProxyConfig['consumers']['jwt']>;

/** JwtResult is a verified token's payload, or why it was refused (a fixed phrase, never token content). */
export type JwtResult = { ok: true; payload: Record<string, unknown> } | { ok: false; reason: string };

/** JwtVerifier checks a bearer token's signature, algorithm, exp/nbf (with skew), aud and iss; it never throws. */
export interface JwtVerifier {
  verify(token: string): JwtResult;
  /** settled resolves once a JWKS file check in progress has finished (at once when none is). */
  settled(): Promise<void>;
}

const HS = ['HS256', 'HS384', 'HS512'];
const RS = ['RS256', 'RS384', 'RS512'];
const EC_BY_CURVE: Record<string, string> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' };
const NODE_CURVES: Record<string, string> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };
const JWKS_FIELD = 'proxy.consumers.jwt.jwksFile';
const RELOAD_CHECK_MS = 1000;

type Verify = (token: string) => unknown;

// fast-jwt's messages name the claim, never its value; only these fixed phrases reach a client.
function reasonOf(err: unknown): string {
  const code = (err as { code?: string }).code ?? '';
  const message = (err as { message?: string }).message ?? '';
  switch (code) {
    case 'FAST_JWT_EXPIRED':
      return 'the token expired';
    case 'FAST_JWT_INACTIVE':
      return 'the token is not valid yet';
    case 'FAST_JWT_INVALID_SIGNATURE':
      return 'the token signature is invalid';
    case 'FAST_JWT_INVALID_ALGORITHM':
      return 'the token algorithm is not accepted';
    case 'FAST_JWT_INVALID_CLAIM_VALUE':
    case 'FAST_JWT_INVALID_CLAIM_TYPE':
    case 'FAST_JWT_MISSING_REQUIRED_CLAIM':
      if (message.includes(' aud ')) return 'the token audience is not accepted';
      if (message.includes(' iss ')) return 'the token issuer is not accepted';
      return 'a token claim is not valid';
    default:
      return 'the token is malformed';
  }
}

// The JOSE header, read without verifying, only to choose the key; the verifier checks it again.
function headerOf(token: string): { alg?: unknown; kid?: unknown } | undefined {
  const dot = token.indexOf('.');
  if (dot <= 0) return undefined;
  try {
    const h = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString('utf8')) as unknown;
    return h !== null && typeof h === 'object' ? (h as { alg?: unknown; kid?: unknown }) : undefined;
  } catch {
    return undefined;
  }
}

/** jwkAlgorithms gives the algorithms a JWK may verify (its own alg when it names one), within `allowed`. */
export function jwkAlgorithms(jwk: JsonWebKey & { alg?: string }, allowed: readonly string[]): string[] {
  let family: string[];
  if (jwk.kty === 'oct') family = HS;
  else if (jwk.kty === 'RSA') family = RS;
  else if (jwk.kty === 'EC' && typeof jwk.crv === 'string' && EC_BY_CURVE[jwk.crv])
    family = [EC_BY_CURVE[jwk.crv]!];
  else return [];
  if (typeof jwk.alg === 'string') family = family.filter((a) => a === jwk.alg);
  return family.filter((a) => allowed.includes(a));
}

interface KeySet {
  byKid: Map<string, Verify>;
  /** The only key when the set has one: a token without kid may use it. */
  only: Verify | undefined;
}

/**
 * createJwtVerifier compiles consumers.jwt into per-key fast-jwt verifiers (results cached by
 * token). The token's alg picks the static key (HS* the secret, others the public key) and its kid
 * a JWKS key, so an HS token is never checked against a public key. A JWKS file is re-read when
 * its mtime changes, checked at most once a second, in the background (no file I/O on the request
 * path: the request that starts a check is verified with the keys in hand); a bad file is logged
 * and the last good keys kept. Returns undefined when no key is configured. Throws ConfigError when the JWKS file cannot
 * be read at start. `now` (ms) paces the file checks.
 */
export function createJwtVerifier(
  config: JwtConfig,
  deps: { logger: Logger; now?: () => number },
): JwtVerifier | undefined {
  const { secret, publicKey, jwksFile } = config;
  if (!secret && !publicKey && !jwksFile) return undefined;
  const now = deps.now ?? Date.now;
  const allowed = config.algorithms ?? [...HS, ...RS, 'ES256', 'ES384', 'ES512'];
  const common = {
    clockTolerance: config.clockSkewSeconds * 1000,
    cache: 1000,
    ...(config.audience !== undefined ? { allowedAud: config.audience } : {}),
    ...(config.issuer !== undefined ? { allowedIss: config.issuer } : {}),
    // fast-jwt checks aud and iss only when the token has them: a configured one is required.
    requiredClaims: [
      ...(config.audience !== undefined ? ['aud'] : []),
      ...(config.issuer !== undefined ? ['iss'] : []),
    ],
  };
  const build = (key: string | Buffer, algorithms: string[]): Verify | undefined =>
    algorithms.length === 0
      ? undefined
      : (createVerifier({ ...common, key, algorithms: algorithms as never }) as Verify);

  const hsAllowed = allowed.filter((a) => HS.includes(a));
  const pubAllowed = allowed.filter((a) => !HS.includes(a));
  const secretVerify = secret ? build(secret, hsAllowed) : undefined;
  let publicVerify: Verify | undefined;
  if (publicKey) {
    const k = createPublicKey(publicKey);
    const curve = k.asymmetricKeyDetails?.namedCurve ?? '';
    const fit =
      k.asymmetricKeyType === 'rsa' ? RS : k.asymmetricKeyType === 'ec' ? [NODE_CURVES[curve] ?? ''] : [];
    publicVerify = build(
      publicKey,
      pubAllowed.filter((a) => fit.includes(a)),
    );
  }

  function parseKeySet(text: string): KeySet {
    let doc: { keys?: unknown };
    try {
      doc = JSON.parse(text) as { keys?: unknown };
    } catch {
      // JSON.parse quotes the text around the error, and the file may hold secrets (oct keys).
      throw new Error('the file is not valid JSON');
    }
    if (!Array.isArray(doc.keys)) throw new Error('the file holds no "keys" array');
    const byKid = new Map<string, Verify>();
    let only: Verify | undefined;
    for (const jwk of doc.keys as (JsonWebKey & { alg?: string; kid?: string; use?: string })[]) {
      if (jwk === null || typeof jwk !== 'object' || (jwk.use !== undefined && jwk.use !== 'sig')) continue;
      const algorithms = jwkAlgorithms(jwk, allowed);
      if (algorithms.length === 0) continue;
      const key =
        jwk.kty === 'oct'
          ? Buffer.from(String(jwk.k ?? ''), 'base64url')
          : (createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string);
      if (key.length === 0) continue;
      const verify = build(key, algorithms)!;
      if (typeof jwk.kid === 'string') byKid.set(jwk.kid, verify);
      only = doc.keys.length === 1 ? verify : undefined;
    }
    return { byKid, only };
  }

  let keys: KeySet = { byKid: new Map(), only: undefined };
  let mtimeMs = 0;
  let checkedAt = 0;
  if (jwksFile) {
    try {
      mtimeMs = statSync(jwksFile).mtimeMs;
      keys = parseKeySet(readFileSync(jwksFile, 'utf8'));
    } catch (err) {
      throw new ConfigError([
        { path: JWKS_FIELD, message: `cannot load the JWKS file: ${(err as Error).message}` },
      ]);
    }
    checkedAt = now();
  }

  let checking: Promise<void> | undefined;
  async function reload(file: string): Promise<void> {
    try {
      const m = (await stat(file)).mtimeMs;
      if (m === mtimeMs) return;
      // Recorded first: a broken file is reported once, not every second.
      mtimeMs = m;
      keys = parseKeySet(await readFile(file, 'utf8'));
      deps.logger.info({ file, keys: keys.byKid.size }, 'JWKS file reloaded');
    } catch (err) {
      deps.logger.warn(
        { file, err: (err as Error).message },
        'JWKS file could not be reloaded; keeping the last good keys',
      );
    }
  }

  function refreshKeys(): void {
    const t = now();
    if (checking || t - checkedAt < RELOAD_CHECK_MS) return;
    checkedAt = t;
    checking = reload(jwksFile!).finally(() => {
      checking = undefined;
    });
  }

  return {
    settled: () => checking ?? Promise.resolve(),
    verify(token) {
      const header = headerOf(token);
      if (!header || typeof header.alg !== 'string') return { ok: false, reason: 'the token is malformed' };
      let verify: Verify | undefined;
      if (jwksFile && (typeof header.kid === 'string' || (!secretVerify && !publicVerify))) {
        refreshKeys();
        verify = typeof header.kid === 'string' ? keys.byKid.get(header.kid) : keys.only;
        if (!verify) return { ok: false, reason: 'no key matches the token' };
      } else {
        verify = HS.includes(header.alg) ? secretVerify : publicVerify;
        if (!verify) return { ok: false, reason: 'the token algorithm is not accepted' };
      }
      try {
        return { ok: true, payload: verify(token) as Record<string, unknown> };
      } catch (err) {
        return { ok: false, reason: reasonOf(err) };
      }
    },
  };
}
