import type { IncomingHttpHeaders } from 'node:http';
import { requestCacheControl, responseFreshness, upstreamAge, varyNames } from './cache-control.js';
import {
  type CacheStore,
  type CacheStoreStats,
  createCacheStore,
  type StoredResponse,
} from './cache-store.js';
import type { CachePolicy } from './config.js';

/**
 * The response cache (issue #23): one LRU by bytes per proxy, shared by every upstream and route
 * with a cache policy; the upstream's name is in each key, so two upstreams never share an entry.
 */

/** CacheLookup is what the cache decided for one request before it is forwarded (or answered). */
export interface CacheLookup {
  /** hit: `entry` is fresh, serve it; miss: forward (and store); bypass: forward without looking. */
  readonly result: 'hit' | 'miss' | 'bypass';
  /** hit: the entry to serve; miss: an expired entry still within its stale-if-error window, if any. */
  readonly entry: StoredResponse | undefined;
  /** The response may be stored (false for credentialed requests and `Cache-Control: no-store`). */
  readonly store: boolean;
  /** Key the response is stored under ('' when it is not stored). */
  readonly key: string;
  readonly policy: CachePolicy;
  readonly requestHeaders: IncomingHttpHeaders;
  /**
   * Keys an unsafe request (POST, PUT, DELETE, PATCH) invalidates once its upstream answers with a
   * non-error status (RFC 9111 §4.4): the GET and HEAD entries of the same URL and keyed headers.
   */
  readonly invalidates: readonly string[] | undefined;
}

/** CacheFill collects a forwarded response's body while it streams to the client. */
export interface CacheFill {
  add(chunk: Buffer): void;
  /** end stores the response; call it only once the upstream's response completed. */
  end(): void;
}

/** ResponseCache is the proxy's response cache. */
export interface ResponseCache {
  /** lookup classifies a request of a route whose policy is `policy`. */
  lookup(
    upstream: string,
    policy: CachePolicy,
    method: string,
    host: string,
    path: string,
    query: string,
    headers: IncomingHttpHeaders,
  ): CacheLookup;
  /**
   * fill starts storing a forwarded response (undefined when it is not to be stored), or drops the
   * entries an unsafe request's successful answer invalidates.
   */
  fill(
    lookup: CacheLookup,
    status: number,
    headers: Record<string, string | string[] | undefined>,
  ): CacheFill | undefined;
  /** headersOf are the headers an entry is served with: stored ones, Age, Content-Length. */
  headersOf(entry: StoredResponse): Record<string, string | string[]>;
  /**
   * notModifiedHeaders are the headers of a 304 answering a conditional request from a fresh entry
   * (RFC 9110 §13.1: If-None-Match against its ETag, else If-Modified-Since against its
   * Last-Modified); undefined when the entry must be sent whole.
   */
  notModifiedHeaders(
    entry: StoredResponse,
    request: IncomingHttpHeaders,
  ): Record<string, string | string[]> | undefined;
  /** usableStale says whether an entry may still be served on an upstream error (stale-if-error). */
  usableStale(entry: StoredResponse): boolean;
  stats(): CacheStoreStats;
}

/** X_CACHE is the X-Cache header value of each cache result. */
export const X_CACHE = { hit: 'HIT', miss: 'MISS', bypass: 'BYPASS', stale: 'STALE' } as const;

// Hop-by-hop fields, and those the proxy sets on every answer itself.
const NOT_STORED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'age',
  'set-cookie',
  'x-cache',
  'traceparent',
  'x-request-id',
]);

interface CompiledPolicy {
  readonly varyHeaders: readonly string[];
  readonly varyQueryParams: ReadonlySet<string> | undefined;
}

function paramName(p: string): string {
  const eq = p.indexOf('=');
  return eq === -1 ? p : p.slice(0, eq);
}

/** keyQuery is the query as keyed: the selected parameters (all when `only` is undefined), stably sorted by name. */
export function keyQuery(query: string, only: ReadonlySet<string> | undefined): string {
  if (query === '') return '';
  let parts = query.split('&').filter((p) => p !== '');
  if (only) parts = parts.filter((p) => only.has(paramName(p)));
  if (parts.length > 1) {
    // Stable: repeated parameters keep their order, which applications may rely on.
    parts.sort((a, b) => {
      const x = paramName(a);
      const y = paramName(b);
      return x < y ? -1 : x > y ? 1 : 0;
    });
  }
  return parts.join('&');
}

/** keyHost is the Host as keyed: lowercased, without a port (the proxy listens on one). */
export function keyHost(host: string): string {
  const h = host.toLowerCase();
  const colon = h.startsWith('[') ? h.indexOf(':', h.indexOf(']')) : h.indexOf(':');
  return colon === -1 ? h : h.slice(0, colon);
}

/**
 * createResponseCache builds the proxy's cache, `maxBytes` for all of it (0 stores nothing).
 * Requests carrying Authorization, Cookie or `apiKeyHeader` bypass it unless the policy says
 * cacheCredentialed. `now` is the wall clock in ms (Age is in seconds of it).
 */
export function createResponseCache(opts: {
  maxBytes: number;
  apiKeyHeader: string;
  now?: () => number;
}): ResponseCache {
  const now = opts.now ?? Date.now;
  const apiKeyHeader = opts.apiKeyHeader.toLowerCase();
  const store: CacheStore = createCacheStore(opts.maxBytes, [
    'authorization',
    'proxy-authorization',
    'cookie',
    apiKeyHeader,
  ]);
  const compiled = new WeakMap<CachePolicy, CompiledPolicy>();
  const compile = (p: CachePolicy): CompiledPolicy => {
    let c = compiled.get(p);
    if (!c) {
      c = {
        varyHeaders: p.varyHeaders.map((h) => h.toLowerCase()),
        varyQueryParams: p.varyQueryParams ? new Set(p.varyQueryParams) : undefined,
      };
      compiled.set(p, c);
    }
    return c;
  };

  function keyOf(
    method: string,
    upstream: string,
    c: CompiledPolicy,
    host: string,
    path: string,
    query: string,
    headers: IncomingHttpHeaders,
  ): string {
    let key = `${method} ${upstream}\n${keyHost(host)}\n${path}?${keyQuery(query, c.varyQueryParams)}`;
    if (c.varyHeaders.length > 0) {
      const values = store.varyValues(c.varyHeaders, headers);
      for (let i = 0; i < values.length; i++) key += `\n${c.varyHeaders[i]}:${values[i]}`;
    }
    return key;
  }

  const bypass = (policy: CachePolicy, headers: IncomingHttpHeaders): CacheLookup => ({
    result: 'bypass',
    entry: undefined,
    store: false,
    key: '',
    policy,
    requestHeaders: headers,
    invalidates: undefined,
  });
  const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

  return {
    lookup(upstream, policy, method, host, path, query, headers) {
      if (method !== 'GET' && method !== 'HEAD') {
        if (SAFE.has(method)) return bypass(policy, headers);
        const c = compile(policy);
        return {
          ...bypass(policy, headers),
          invalidates: [
            keyOf('GET', upstream, c, host, path, query, headers),
            keyOf('HEAD', upstream, c, host, path, query, headers),
          ],
        };
      }
      if (
        !policy.cacheCredentialed &&
        (headers.authorization !== undefined ||
          headers.cookie !== undefined ||
          headers[apiKeyHeader] !== undefined)
      )
        return bypass(policy, headers);
      const asked = requestCacheControl(headers['cache-control'], headers.pragma);
      if (asked.kind === 'no-store') return bypass(policy, headers);
      const c = compile(policy);
      const key = keyOf(method, upstream, c, host, path, query, headers);
      // A client that insists on a fresh answer gets one, and the cache keeps it (RFC 9111 §5.2.1.4).
      if (asked.kind === 'refresh') return { ...bypass(policy, headers), store: true, key };
      // HEAD is answered from the GET entry when there is one (RFC 9110 §9.3.2: the same headers).
      const t = now();
      let found =
        method === 'HEAD'
          ? store.find(keyOf('GET', upstream, c, host, path, query, headers), headers)
          : undefined;
      if (!found || t >= found.freshUntilMs) found = store.find(key, headers) ?? found;
      let entry: StoredResponse | undefined;
      let result: 'hit' | 'miss' = 'miss';
      if (found) {
        const fresh = t < found.freshUntilMs;
        if (fresh && (asked.maxAgeS === undefined || ageOf(found, t) <= asked.maxAgeS)) {
          result = 'hit';
          entry = found;
        } else if (t < found.staleUntilMs) {
          entry = found;
        } else if (!fresh) {
          store.delete(found);
        }
      }
      return {
        result,
        entry,
        store: result === 'miss',
        key,
        policy,
        requestHeaders: headers,
        invalidates: undefined,
      };
    },

    fill(lookup, status, headers) {
      if (lookup.invalidates && status < 400) for (const k of lookup.invalidates) store.deleteKey(k);
      if (!lookup.store) return undefined;
      const receivedMs = now();
      const freshness = responseFreshness(status, headers, lookup.policy.ttlSeconds, receivedMs);
      if (typeof freshness === 'string') return undefined;
      const max = lookup.policy.maxEntryBytes;
      const declared = Number(headers['content-length'] ?? 0);
      if (declared > max) return undefined;
      const kept: Record<string, string | string[]> = {};
      let headerBytes = 0;
      const connection = headers.connection;
      const listed = connection === undefined ? undefined : varyNames(connection);
      for (const name in headers) {
        const v = headers[name];
        if (v === undefined || NOT_STORED.has(name) || listed?.includes(name)) continue;
        kept[name] = v;
        headerBytes += name.length + (typeof v === 'string' ? v.length : v.reduce((n, s) => n + s.length, 0));
      }
      const vary = headers.vary === undefined ? [] : varyNames(headers.vary);
      const varyValues = store.varyValues(vary, lookup.requestHeaders);
      const head = lookup.key.startsWith('HEAD ');
      const freshUntilMs = receivedMs + freshness.lifetimeS * 1000;
      const staleMs = freshness.mustRevalidate ? 0 : lookup.policy.staleIfErrorSeconds * 1000;
      let chunks: Buffer[] | undefined = [];
      let size = 0;
      return {
        add(chunk) {
          if (!chunks) return;
          size += chunk.length;
          // Past the limit the response still streams to the client; only the copy is given up.
          if (size > max) chunks = undefined;
          else chunks.push(chunk);
        },
        end() {
          if (!chunks) return;
          const body = chunks.length === 1 ? Buffer.from(chunks[0]!) : Buffer.concat(chunks);
          chunks = undefined;
          store.put({
            key: lookup.key,
            status,
            headers: kept,
            body: head ? Buffer.alloc(0) : body,
            head,
            vary,
            varyValues,
            storedAtMs: receivedMs,
            upstreamAgeS: upstreamAge(headers.age),
            freshUntilMs,
            staleUntilMs: freshUntilMs + staleMs,
            bytes: lookup.key.length + headerBytes + body.length,
          });
        },
      };
    },

    headersOf(entry) {
      const out: Record<string, string | string[]> = { ...entry.headers };
      out.age = String(Math.floor(ageOf(entry, now())));
      if (!entry.head && entry.status !== 204 && entry.status !== 304)
        out['content-length'] = String(entry.body.length);
      return out;
    },

    notModifiedHeaders(entry, request) {
      if (entry.status !== 200) return undefined;
      const inm = request['if-none-match'];
      if (inm !== undefined) {
        const etag = entry.headers.etag;
        if (typeof etag !== 'string' || !etagMatches(inm, etag)) return undefined;
      } else {
        const ims = Date.parse(request['if-modified-since'] ?? '');
        const lm = entry.headers['last-modified'];
        if (Number.isNaN(ims) || typeof lm !== 'string') return undefined;
        const modified = Date.parse(lm);
        if (Number.isNaN(modified) || modified > ims) return undefined;
      }
      const out: Record<string, string | string[]> = {};
      for (const name of NOT_MODIFIED_FIELDS) {
        const v = entry.headers[name];
        if (v !== undefined) out[name] = v;
      }
      out.age = String(Math.floor(ageOf(entry, now())));
      return out;
    },

    usableStale: (entry) => now() < entry.staleUntilMs,

    stats: () => store.stats(),
  };
}

// RFC 9110 §15.4.5: the fields a 304 carries.
const NOT_MODIFIED_FIELDS = ['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary'];

/** etagMatches is If-None-Match's weak comparison (RFC 9110 §13.1.2) of a field value with an ETag. */
export function etagMatches(ifNoneMatch: string, etag: string): boolean {
  const opaque = (t: string) => (t.startsWith('W/') ? t.slice(2) : t);
  const want = opaque(etag.trim());
  for (const part of ifNoneMatch.split(',')) {
    const t = part.trim();
    if (t === '*' || (t !== '' && opaque(t) === want)) return true;
  }
  return false;
}

/** ageOf is an entry's current age in s (RFC 9111 §4.2.3, without the Date-based apparent age). */
function ageOf(entry: StoredResponse, nowMs: number): number {
  return entry.upstreamAgeS + Math.max(0, nowMs - entry.storedAtMs) / 1000;
}
