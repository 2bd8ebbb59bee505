import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** StoredResponse is one cached response: a variant of a key, selected by the request headers its Vary names. */
export interface StoredResponse {
  readonly key: string;
  readonly status: number;
  /** The upstream's headers, less hop-by-hop ones, Age, Set-Cookie and the proxy's own. */
  readonly headers: Readonly<Record<string, string | string[]>>;
  readonly body: Buffer;
  /** Stored from a HEAD response: headers only. */
  readonly head: boolean;
  /** Lowercased names of the response's Vary and the request's values of them when stored. */
  readonly vary: readonly string[];
  readonly varyValues: readonly string[];
  /** Date.now() when the response arrived. */
  readonly storedAtMs: number;
  /** Age the upstream reported, in s. */
  readonly upstreamAgeS: number;
  readonly freshUntilMs: number;
  /** Until when it may be served stale on an upstream error (freshUntilMs when never). */
  readonly staleUntilMs: number;
  /** What it counts against the cache's budget: key, header names and values, body. */
  readonly bytes: number;
}

/** MAX_VARIANTS bounds the variants of one key (Vary: User-Agent would otherwise make a long list). */
export const MAX_VARIANTS = 16;
const ABSENT = '\u0000';

/** CacheStoreStats are the cache's gauges. */
export interface CacheStoreStats {
  readonly entries: number;
  readonly bytes: number;
  readonly evictions: number;
}

/**
 * CacheStore holds responses by key and variant, least recently used evicted first once their
 * bytes pass `maxBytes`.
 */
export interface CacheStore {
  /** find returns the variant of `key` the request headers select, and marks it used. */
  find(key: string, headers: IncomingHttpHeaders): StoredResponse | undefined;
  /** put stores a response, replacing the variant with the same Vary values; false when it cannot fit. */
  put(entry: StoredResponse): boolean;
  delete(entry: StoredResponse): void;
  /** deleteKey drops every variant of a key. */
  deleteKey(key: string): void;
  /** varyValues are the request's values of the Vary names, as stored (secrets hashed, never kept). */
  varyValues(vary: readonly string[], headers: IncomingHttpHeaders): string[];
  stats(): CacheStoreStats;
}

/**
 * createCacheStore builds the store of one proxy. Values of `sensitive` headers (Authorization,
 * Cookie, the API key header) are kept as SHA-256 digests, so a credential never sits in memory
 * after its request.
 */
export function createCacheStore(maxBytes: number, sensitive: readonly string[]): CacheStore {
  const byKey = new Map<string, StoredResponse[]>();
  // A Set iterates in insertion order: delete + add moves an entry to the most recently used end.
  const lru = new Set<StoredResponse>();
  const secret = new Set(sensitive.map((h) => h.toLowerCase()));
  let bytes = 0;
  let evictions = 0;

  function keyedValue(name: string, headers: IncomingHttpHeaders): string {
    const v = headers[name];
    if (v === undefined) return ABSENT;
    const s = Array.isArray(v) ? v.join(', ') : v;
    return secret.has(name) ? createHash('sha256').update(s).digest('base64') : s;
  }

  function varyValues(vary: readonly string[], headers: IncomingHttpHeaders): string[] {
    return vary.map((n) => keyedValue(n, headers));
  }

  function matches(e: StoredResponse, headers: IncomingHttpHeaders): boolean {
    for (let i = 0; i < e.vary.length; i++)
      if (keyedValue(e.vary[i]!, headers) !== e.varyValues[i]) return false;
    return true;
  }

  function remove(e: StoredResponse): void {
    if (!lru.delete(e)) return;
    bytes -= e.bytes;
    const list = byKey.get(e.key);
    if (!list) return;
    const i = list.indexOf(e);
    if (i !== -1) list.splice(i, 1);
    if (list.length === 0) byKey.delete(e.key);
  }

  return {
    find(key, headers) {
      const list = byKey.get(key);
      if (!list) return undefined;
      // Newest first: after the upstream changed its Vary, the old variants may match too.
      for (let i = list.length - 1; i >= 0; i--) {
        const e = list[i]!;
        if (!matches(e, headers)) continue;
        lru.delete(e);
        lru.add(e);
        return e;
      }
      return undefined;
    },
    put(entry) {
      if (entry.bytes > maxBytes) return false;
      const list = byKey.get(entry.key);
      if (list) {
        for (const e of list) {
          if (
            e.vary.length === entry.vary.length &&
            e.varyValues.every((v, i) => v === entry.varyValues[i])
          ) {
            remove(e);
            break;
          }
        }
        const rest = byKey.get(entry.key);
        if (rest && rest.length >= MAX_VARIANTS) remove(rest[0]!);
      }
      while (bytes + entry.bytes > maxBytes) {
        const oldest = lru.values().next().value as StoredResponse;
        remove(oldest);
        evictions++;
      }
      const target = byKey.get(entry.key);
      if (target) target.push(entry);
      else byKey.set(entry.key, [entry]);
      lru.add(entry);
      bytes += entry.bytes;
      return true;
    },
    delete: remove,
    deleteKey(key) {
      const list = byKey.get(key);
      if (list) for (const e of [...list]) remove(e);
    },
    varyValues,
    stats: () => ({ entries: lru.size, bytes, evictions }),
  };
}
