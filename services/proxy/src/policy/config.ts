import { z } from 'zod';

/**
 * The proxy's policies (issue #23), each opt-in per upstream and overridable per route template:
 * authentication, rate limits and response caching. Load balancing is configured on the upstream
 * itself (targets, balancer, healthCheck, passive, retries) in ../config.ts.
 */

const name = z.string().min(1).max(128);

/** authPolicySchema: which credentials a route accepts and what the consumer must hold. */
export const authPolicySchema = z
  .strictObject({
    methods: z
      .array(z.enum(['apiKey', 'jwt']))
      .min(1)
      .default(['apiKey', 'jwt'])
      .describe(
        'Credentials accepted: an API key from consumers.apiKeys, a JWT verified with consumers.jwt. Default: both.',
      ),
    scopes: z
      .array(name)
      .max(64)
      .default([])
      .describe(
        'Scopes the consumer must hold, all of them (API key scopes, or the JWT’s scope claim); otherwise 403. Default: none.',
      ),
    claims: z
      .record(name, z.union([z.string().max(512), z.array(z.string().max(512)).min(1).max(64)]))
      .default({})
      .describe(
        'JWT claims that must equal the value (or one of the values, or contain it when the claim is an array); otherwise 403. API keys never satisfy a claim. Default: none.',
      ),
  })
  .describe(
    'Enforced authentication: missing or bad credentials get 401, a consumer without the scopes or claims 403.',
  );

/** AuthPolicy is one validated auth policy. */
export type AuthPolicy = z.infer<typeof authPolicySchema>;

/** rateLimitPolicySchema: a quota per window for each consumer (or client address when anonymous). */
export const rateLimitPolicySchema = z
  .strictObject({
    limit: z.number().int().min(1).max(0xffff_ffff).describe('Requests allowed per window.'),
    windowSeconds: z.number().int().min(1).max(86_400).default(60).describe('Window, in s. Default: 60.'),
    by: z
      .enum(['consumer', 'client'])
      .default('consumer')
      .describe(
        'Whose requests are counted together: consumer (the identified consumer; anonymous or unknown ones by client address) or client (the client address always). Default: consumer.',
      ),
    overrides: z
      .array(z.strictObject({ consumer: name, limit: z.number().int().min(1).max(0xffff_ffff) }))
      .max(10_000)
      .default([])
      .describe('Per-consumer limits that replace `limit` for that consumer.'),
    policyName: z
      .string()
      .regex(/^[a-z*][a-z0-9_\-.*]{0,63}$/, 'must be a lowercase token (RFC 8941 key)')
      .default('default')
      .describe('Name of the policy in the RateLimit-Policy and RateLimit headers. Default: default.'),
  })
  .describe(
    'Rate limit (sliding-window counter, counters local to each proxy process); every response carries RateLimit-Policy and RateLimit, over the limit 429 with Retry-After.',
  );

/** RateLimitPolicy is one validated rate-limit policy. */
export type RateLimitPolicy = z.infer<typeof rateLimitPolicySchema>;

/** cachePolicySchema: which GET/HEAD responses are kept and how they are keyed. */
export const cachePolicySchema = z
  .strictObject({
    ttlSeconds: z
      .number()
      .int()
      .min(0)
      .max(31_536_000)
      .default(60)
      .describe(
        'Freshness of a response whose Cache-Control gives neither s-maxage nor max-age (and no Expires), in s; only the heuristically cacheable statuses (200, 203, 204, 300, 301, 404, 405, 410, 414, 501) get it. 0: such responses are not stored. Default: 60.',
      ),
    varyQueryParams: z
      .array(name)
      .max(64)
      .optional()
      .describe(
        'Query parameters in the key, by exact (encoded) name, sorted by name; the request is still forwarded with its whole query. Default: all of them; []: none.',
      ),
    varyHeaders: z
      .array(name)
      .max(16)
      .default([])
      .describe(
        'Request headers in the key, besides those the response’s Vary names (Authorization, Cookie and the API key header are keyed by their SHA-256, never kept). Default: none.',
      ),
    cacheCredentialed: z
      .boolean()
      .default(false)
      .describe(
        'Also cache responses to requests carrying Authorization, Cookie or an API key (keyed by nothing secret: the consumer is not part of the key). Default: false.',
      ),
    maxEntryBytes: z
      .number()
      .int()
      .min(1)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024)
      .describe(
        'Largest response body stored, in bytes; a larger one still streams to the client, uncached. Default: 1048576.',
      ),
    staleIfErrorSeconds: z
      .number()
      .int()
      .min(0)
      .max(86_400)
      .default(0)
      .describe(
        'How long past its freshness an entry may still be served (X-Cache: STALE) when the upstream fails to answer or answers 500, 502, 503 or 504, in s; never for must-revalidate or proxy-revalidate responses. Default: 0.',
      ),
  })
  .describe('Response cache for GET and HEAD, honouring the upstream’s Cache-Control and Vary.');

/** CachePolicy is one validated cache policy. */
export type CachePolicy = z.infer<typeof cachePolicySchema>;

/** policyShape is what an upstream or a route policy may set; `false` turns an inherited one off. */
export const policyShape = {
  auth: z
    .union([z.literal(false), authPolicySchema])
    .optional()
    .describe(
      'Enforced authentication: { methods, scopes, claims } (docs/policies.md#authentication); false turns an inherited one off. Default: none.',
    ),
  rateLimit: z
    .union([z.literal(false), rateLimitPolicySchema])
    .optional()
    .describe(
      'Rate limit: { limit, windowSeconds, by, overrides, policyName } (docs/policies.md#rate-limits); false turns an inherited one off. Default: none.',
    ),
  cache: z.union([z.literal(false), cachePolicySchema]).optional(),
};
