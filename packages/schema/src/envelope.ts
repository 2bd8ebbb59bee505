import { z } from 'zod';
import { epochMicrosSchema, eventIdSchema, tenantSchema } from './primitives.js';

/** envelopeShape holds the fields every event carries: version, id, start time and tenant. */
export const envelopeShape = {
  v: z.number().int().positive(),
  id: eventIdSchema,
  ts: epochMicrosSchema,
  tenant: tenantSchema,
};

/** envelopeSchema validates only the common envelope of any event. */
export const envelopeSchema = z.object(envelopeShape);

/** Envelope is the common part of every Tapwire event. */
export type Envelope = z.infer<typeof envelopeSchema>;
