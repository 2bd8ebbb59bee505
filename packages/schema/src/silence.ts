import { z } from 'zod';
import { envelopeShape } from './envelope.js';
import { boundedString, epochMicrosSchema, LIMITS, nonEmptyBoundedString } from './primitives.js';

/** SILENCE_MATCHER is an Alertmanager label matcher: name, one of = != =~ !~, and a quoted value. */
export const SILENCE_MATCHER = /^\s*[A-Za-z_][A-Za-z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*$/;

/** silenceV1Schema validates a silence, version 1 (compacted topic keyed by silence id; expiring re-emits it with ends_at now). */
export const silenceV1Schema = z
  .object({
    ...envelopeShape,
    v: z.literal(1),
    matchers: z
      .array(z.string().max(1024).regex(SILENCE_MATCHER, 'must be a matcher such as service="checkout"'))
      .min(1)
      .max(32),
    starts_at: epochMicrosSchema,
    ends_at: epochMicrosSchema,
    created_by: nonEmptyBoundedString(LIMITS.nameChars),
    comment: boundedString(LIMITS.reasonChars),
  })
  .refine((s) => s.ends_at > s.starts_at, { message: 'ends_at must be after starts_at', path: ['ends_at'] });

/** SilenceEvent is one silence as stored on its topic. */
export type SilenceEvent = z.infer<typeof silenceV1Schema>;
