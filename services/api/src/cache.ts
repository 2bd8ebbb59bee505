import { LRUCache } from 'lru-cache';

/** AnswerCache shares identical queries: concurrent callers await one Store call, later ones reuse it for the TTL. */
export interface AnswerCache {
  get<T>(key: string, compute: () => Promise<T>): Promise<{ value: T; hit: boolean }>;
}

/** createAnswerCache builds a bounded LRU with a TTL; failures are never cached. ttlMs 0 disables it. */
export function createAnswerCache(options: { ttlMs: number; maxEntries: number }): AnswerCache {
  if (options.ttlMs === 0) {
    return { get: async (_key, compute) => ({ value: await compute(), hit: false }) };
  }
  const cache = new LRUCache<string, Promise<unknown>>({ max: options.maxEntries, ttl: options.ttlMs });
  return {
    async get<T>(key: string, compute: () => Promise<T>) {
      const cached = cache.get(key) as Promise<T> | undefined;
      if (cached) return { value: await cached, hit: true };
      const pending = compute();
      cache.set(key, pending);
      try {
        return { value: await pending, hit: false };
      } catch (err) {
        if (cache.get(key) === pending) cache.delete(key);
        throw err;
      }
    },
  };
}
