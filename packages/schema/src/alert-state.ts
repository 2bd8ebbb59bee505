import { z } from 'zod';
import { envelopeShape } from './envelope.js';
import { boundedString, epochMicrosSchema, LIMITS, nonEmptyBoundedString } from './primitives.js';

/** ALERT_STATES are the states of one alert series (the States item of docs/alerting.md). */
export const ALERT_STATES = [
  'inactive',
  'pending',
  'firing',
  'recovering',
  'resolved',
  'nodata',
  'error',
] as const;

/** alertStateV1Schema validates an alert-state event, version 1, keyed by fingerprint on a compacted topic. */
export const alertStateV1Schema = z.object({
  ...envelopeShape,
  v: z.literal(1),
  rule_id: nonEmptyBoundedString(LIMITS.nameChars),
  fingerprint: z.string().regex(/^[0-9a-f]{16}$/, 'must be 16 lowercase hex characters'),
  labels: z
    .record(nonEmptyBoundedString(LIMITS.attributeKeyChars), boundedString(LIMITS.attributeValueChars))
    .refine(
      (r) => Object.keys(r).length <= LIMITS.attributeKeys,
      `must have at most ${LIMITS.attributeKeys} keys`,
    ),
  state: z.enum(ALERT_STATES),
  value: z.number().nullable(),
  threshold: z.number(),
  since: epochMicrosSchema,
  last_notified: epochMicrosSchema.nullable(),
  /** When the series' current episode became active, and when it started firing (null: not yet). */
  active_at: epochMicrosSchema.optional(),
  fired_at: epochMicrosSchema.nullable().optional(),
  /** Set on the record of a delivered notification: the receiver it reached (keyed fingerprint/receiver). */
  receiver: nonEmptyBoundedString(LIMITS.nameChars).optional(),
});

/** AlertStateEvent is one alert series' state after a transition or a delivered notification. */
export type AlertStateEvent = z.infer<typeof alertStateV1Schema>;
