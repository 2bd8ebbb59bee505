/**
 * Cache-Control (RFC 9111 §5.2) as a shared cache reads it: the request's and the response's
 * directives, and how long a response stays fresh.
 */

/** CacheDirectives maps each lowercased directive name to its (unquoted) argument, or true. */
export type CacheDirectives = ReadonlyMap<string, string | true>;

const EMPTY: CacheDirectives = new Map();

/**
 * parseCacheControl reads one or more Cache-Control field values. Names are case-insensitive;
 * quoted arguments may hold commas; the first of a repeated directive wins.
 */
export function parseCacheControl(value: string | string[] | undefined): CacheDirectives {
  if (value === undefined || value === '') return EMPTY;
  const text = typeof value === 'string' ? value : value.join(',');
  const out = new Map<string, string | true>();
  let i = 0;
  while (i < text.length) {
    let end = i;
    while (end < text.length && text[end] !== ',' && text[end] !== '=') end++;
    const name = text.slice(i, end).trim().toLowerCase();
    let arg: string | true = true;
    if (text[end] === '=') {
      let j = end + 1;
      while (text[j] === ' ' || text[j] === '\t') j++;
      if (text[j] === '"') {
        let s = '';
        j++;
        while (j < text.length && text[j] !== '"') {
          if (text[j] === '\\' && j + 1 < text.length) j++;
          s += text[j];
          j++;
        }
        arg = s;
        while (j < text.length && text[j] !== ',') j++;
      } else {
        const start = j;
        while (j < text.length && text[j] !== ',') j++;
        arg = text.slice(start, j).trim();
      }
      end = j;
    }
    if (name !== '' && !out.has(name)) out.set(name, arg);
    i = end + 1;
  }
  return out;
}

/**
 * deltaSeconds is a directive's delta-seconds argument; a present but malformed one counts as 0
 * (RFC 9111 §1.2.2: treat as stale), an absent one is undefined.
 */
export function deltaSeconds(d: CacheDirectives, name: string): number | undefined {
  const v = d.get(name);
  if (v === undefined) return undefined;
  if (v === true || !/^\d+$/.test(v)) return 0;
  // RFC 9111 §1.2.2: a value too large is taken as 2^31 s.
  return Math.min(Number(v), 2_147_483_648);
}

/**
 * CACHEABLE_STATUSES are the status codes RFC 9110 §15.1 calls heuristically cacheable: stored with
 * explicit freshness or the policy's ttl.
 */
export const CACHEABLE_STATUSES: ReadonlySet<number> = new Set([
  200, 203, 204, 300, 301, 404, 405, 410, 414, 501,
]);
/** EXPLICIT_ONLY_STATUSES are redirects stored only when the upstream gave them a freshness. */
const EXPLICIT_ONLY_STATUSES: ReadonlySet<number> = new Set([302, 307, 308]);

/** Freshness is how a storable response may be reused. */
export interface Freshness {
  /** How long it is fresh from when it was received, in s, less the Age the upstream reported. */
  readonly lifetimeS: number;
  /** must-revalidate / proxy-revalidate: never served stale, not even on error. */
  readonly mustRevalidate: boolean;
}

/** NotStored says why a response is not kept (for tests and docs; never on the request path's logs). */
export type NotStored =
  | 'status'
  | 'no-store'
  | 'private'
  | 'no-cache'
  | 'set-cookie'
  | 'vary-star'
  | 'not-fresh';

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/**
 * responseFreshness decides whether a response may be stored by a shared cache and for how long:
 * no-store, private and no-cache (which would need revalidation on every use) are not stored, nor
 * responses setting cookies or varying on `*`; the lifetime is s-maxage, else max-age, else
 * Expires − Date, else `ttlSeconds`; a lifetime of 0 is not stored. `nowMs` stands in for a
 * missing Date.
 */
export function responseFreshness(
  status: number,
  headers: Record<string, string | string[] | undefined>,
  ttlSeconds: number,
  nowMs: number,
): Freshness | NotStored {
  const explicitOnly = EXPLICIT_ONLY_STATUSES.has(status);
  if (!CACHEABLE_STATUSES.has(status) && !explicitOnly) return 'status';
  const cc = parseCacheControl(headers['cache-control']);
  if (cc.has('no-store')) return 'no-store';
  if (cc.has('private')) return 'private';
  if (cc.has('no-cache')) return 'no-cache';
  if (headers['set-cookie'] !== undefined) return 'set-cookie';
  const vary = headers.vary;
  if (vary !== undefined && varyNames(vary).includes('*')) return 'vary-star';
  let lifetimeS = deltaSeconds(cc, 's-maxage') ?? deltaSeconds(cc, 'max-age');
  if (lifetimeS === undefined) {
    const expires = first(headers.expires);
    if (expires !== undefined) {
      const at = Date.parse(expires);
      const date = Date.parse(first(headers.date) ?? '');
      // An invalid Expires means already expired (RFC 9111 §5.3).
      lifetimeS = Number.isNaN(at) ? 0 : Math.max(0, (at - (Number.isNaN(date) ? nowMs : date)) / 1000);
    }
  }
  if (lifetimeS === undefined) lifetimeS = explicitOnly ? 0 : ttlSeconds;
  const ageS = upstreamAge(headers.age);
  if (lifetimeS - ageS <= 0) return 'not-fresh';
  return {
    lifetimeS: lifetimeS - ageS,
    mustRevalidate: cc.has('must-revalidate') || cc.has('proxy-revalidate'),
  };
}

/** upstreamAge is the response's Age header in s (0 when absent or malformed). */
export function upstreamAge(v: string | string[] | undefined): number {
  const s = first(v);
  return s !== undefined && /^\d+$/.test(s.trim()) ? Number(s.trim()) : 0;
}

/** varyNames lists the lowercased field names of a Vary header ('*' included as is). */
export function varyNames(v: string | string[]): string[] {
  const text = typeof v === 'string' ? v : v.join(',');
  const out: string[] = [];
  for (const part of text.split(',')) {
    const n = part.trim().toLowerCase();
    if (n !== '' && !out.includes(n)) out.push(n);
  }
  return out;
}

/** RequestCacheControl is what the client asked of the cache. */
export type RequestCacheControl =
  /** Use the cache as usual (`maxAgeS` set when the client sent max-age). */
  | { readonly kind: 'use'; readonly maxAgeS: number | undefined }
  /** no-cache or Pragma: no-cache: forward, store the fresh answer. */
  | { readonly kind: 'refresh' }
  /** no-store: forward, store nothing. */
  | { readonly kind: 'no-store' };

const USE: RequestCacheControl = { kind: 'use', maxAgeS: undefined };
const REFRESH: RequestCacheControl = { kind: 'refresh' };
const NO_STORE: RequestCacheControl = { kind: 'no-store' };

/** requestCacheControl reads the request's Cache-Control (and Pragma when Cache-Control is absent). */
export function requestCacheControl(
  cacheControl: string | string[] | undefined,
  pragma: string | string[] | undefined,
): RequestCacheControl {
  if (cacheControl === undefined) {
    if (
      pragma !== undefined &&
      /(^|,)\s*no-cache\s*(,|$)/i.test(Array.isArray(pragma) ? pragma.join(',') : pragma)
    )
      return REFRESH;
    return USE;
  }
  const cc = parseCacheControl(cacheControl);
  if (cc.has('no-store')) return NO_STORE;
  if (cc.has('no-cache')) return REFRESH;
  const maxAgeS = deltaSeconds(cc, 'max-age');
  return maxAgeS === undefined ? USE : { kind: 'use', maxAgeS };
}
