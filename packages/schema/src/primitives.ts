import { z } from 'zod';

/** LIMITS bounds every string and collection an event may carry, so one bad producer cannot bloat storage. */
export const LIMITS = {
  idChars: 64,
  tenantChars: 64,
  nameChars: 256,
  serviceChars: 128,
  routeChars: 512,
  pathChars: 2048,
  userAgentChars: 512,
  reasonChars: 4096,
  attributeKeys: 64,
  attributeKeyChars: 128,
  attributeValueChars: 4096,
  /** Attributes of one span (v2), its resource, one of its events or links: OTel's AttributeCountLimit. */
  spanAttributeKeys: 128,
  /** Events of one span (v2): OTel's EventCountLimit. */
  spanEvents: 128,
  /** Links of one span (v2): OTel's LinkCountLimit. */
  spanLinks: 128,
  /** Largest encoded event accepted from the log, in bytes. */
  eventBytes: 1_048_576,
} as const;

const ALL_ZERO = /^0+$/;

/** traceIdSchema is a W3C trace id: 32 lowercase hex characters, not all zero. */
export const traceIdSchema = z
  .string()
  .regex(/^[0-9a-f]{32}$/, 'must be 32 lowercase hex characters')
  .refine((s) => !ALL_ZERO.test(s), 'must not be all zeros');

/** spanIdSchema is a W3C span id: 16 lowercase hex characters, not all zero. */
export const spanIdSchema = z
  .string()
  .regex(/^[0-9a-f]{16}$/, 'must be 16 lowercase hex characters')
  .refine((s) => !ALL_ZERO.test(s), 'must not be all zeros');

/** epochMicrosSchema is a point in time as integer microseconds since the Unix epoch. */
export const epochMicrosSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** durationMicrosSchema is a non-negative integer duration in microseconds. */
export const durationMicrosSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** boundedString builds a string schema with a maximum length in characters. */
export function boundedString(maxChars: number): z.ZodString {
  return z.string().max(maxChars, `must be at most ${maxChars} characters`);
}

/** nonEmptyBoundedString builds a non-empty string schema with a maximum length in characters. */
export function nonEmptyBoundedString(maxChars: number): z.ZodString {
  return boundedString(maxChars).min(1, 'must not be empty');
}

/** tenantSchema names a tenant: letters, digits, `_`, `.` and `-`, starting with a letter or digit. */
export const tenantSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]*$/,
    'must be letters, digits, "_", "." or "-", starting with a letter or digit',
  )
  .max(LIMITS.tenantChars, `must be at most ${LIMITS.tenantChars} characters`);

/** eventIdSchema is a unique event id (a UUID or similar token) used for de-duplication. */
export const eventIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]+$/, 'must be letters, digits, "_" or "-"')
  .min(8, 'must be at least 8 characters')
  .max(LIMITS.idChars, `must be at most ${LIMITS.idChars} characters`);

/** attributesSchema is a bounded string→string map of OpenTelemetry-style attributes. */
export const attributesSchema = z
  .record(nonEmptyBoundedString(LIMITS.attributeKeyChars), boundedString(LIMITS.attributeValueChars))
  .refine(
    (r) => Object.keys(r).length <= LIMITS.attributeKeys,
    `must have at most ${LIMITS.attributeKeys} keys`,
  );

/** spanAttributesSchema is attributesSchema with a span v2's key limit (LIMITS.spanAttributeKeys). */
export const spanAttributesSchema = z
  .record(nonEmptyBoundedString(LIMITS.attributeKeyChars), boundedString(LIMITS.attributeValueChars))
  .refine(
    (r) => Object.keys(r).length <= LIMITS.spanAttributeKeys,
    `must have at most ${LIMITS.spanAttributeKeys} keys`,
  );

/** DEFAULT_TENANT is the tenant of events whose listener or upstream names none. */
export const DEFAULT_TENANT = 'default';
