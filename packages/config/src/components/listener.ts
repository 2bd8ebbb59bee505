import { z } from 'zod';

/** portSchema is a TCP port a service listens on (0: any free port). */
export const portSchema = z.number().int().min(0).max(65_535);

/**
 * adminListenerSchema is a service's admin listener (/healthz, /readyz, /metrics): on loopback
 * unless told otherwise, at the service's own default port.
 */
export function adminListenerSchema(defaultPort: number) {
  return z
    .strictObject({
      host: z
        .string()
        .default('127.0.0.1')
        .describe('Address of /healthz, /readyz and /metrics. Default: 127.0.0.1.'),
      port: portSchema.default(defaultPort).describe(`Port of the admin endpoints. Default: ${defaultPort}.`),
    })
    .prefault({});
}
