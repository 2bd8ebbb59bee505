import { z } from 'zod';

/** EmitComponent names the service whose events a local log holds, and where its settings live. */
export interface EmitComponent {
  /** Config section of the service, e.g. proxy; its settings are `<section>.emit.*`. */
  readonly section: string;
  /** What the service is called in descriptions, e.g. "proxy". */
  readonly noun: string;
  /** Default local log folder, e.g. .tapwire/proxy-log. */
  readonly defaultLogDir: string;
}

/**
 * emitConfigShape is the write-first path's settings of one service (its `emit` section): the
 * local log and how it is shipped to Kafka. A service adds its own fields to it.
 */
export function emitConfigShape(component: EmitComponent) {
  return {
    topicPrefix: z
      .string()
      .regex(/^[A-Za-z0-9._-]*$/)
      .default('')
      .describe('Prefix of the Kafka topic names written (must match ingest’s). Default: empty.'),
    logDir: z
      .string()
      .min(1)
      .default(component.defaultLogDir)
      .describe(
        `Local log folder (Kafka deployment): every event is written here first, then shipped to Kafka; one ${component.noun} process per folder. Default: ${component.defaultLogDir}.`,
      ),
    logMaxBytes: z
      .number()
      .int()
      .min(16 * 1024 * 1024)
      .default(1_073_741_824)
      .describe(
        'Local log cap, in bytes: beyond it (Kafka down for long) the oldest unshipped events are deleted and counted as dropped. Default: 1073741824 (1 GiB).',
      ),
    fsyncIntervalMs: z
      .number()
      .int()
      .min(0)
      .max(60_000)
      .default(1000)
      .describe(
        'How often written events are forced to disk, in ms; a killed process loses nothing, power loss at most this much. 0 forces every write (slow). Default: 1000.',
      ),
    lingerMs: z
      .number()
      .int()
      .min(0)
      .max(60_000)
      .default(50)
      .describe(
        'Longest the shipper waits for a batch to fill before sending it to Kafka, in ms. Default: 50.',
      ),
    maxBatchEvents: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(2000)
      .describe('Most events per Kafka record (a batch of one topic). Default: 2000.'),
    maxBatchBytes: z
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(900_000)
      .describe(
        'Most bytes per Kafka record; keep it under the broker’s message.max.bytes (1 MB by default). Default: 900000.',
      ),
    compression: z
      .enum(['gzip', 'none'])
      .default('none')
      .describe('Compression of the records shipped to Kafka. Default: none.'),
  };
}

/** EmitConfig is the validated write-first settings every emitting service shares. */
export interface EmitConfig {
  readonly topicPrefix: string;
  readonly logDir: string;
  readonly logMaxBytes: number;
  readonly fsyncIntervalMs: number;
  readonly lingerMs: number;
  readonly maxBatchEvents: number;
  readonly maxBatchBytes: number;
  readonly compression: 'gzip' | 'none';
}
