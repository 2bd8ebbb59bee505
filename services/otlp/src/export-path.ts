import { type MappedExport, type OtlpFormat, OtlpRequestError } from '@tapwire/otlp';
import { TOPICS } from '@tapwire/schema';
import type { EventSink } from '@tapwire/stream';
import type { Logger } from '@tapwire/telemetry';
import type { Exporter } from './auth.js';
import type { OtlpMetrics, Transport } from './metrics.js';

/** Written is how an export that reached the write path ended. */
export type Written =
  | {
      readonly outcome: 'ok' | 'partial';
      readonly accepted: number;
      readonly rejected: number;
      readonly errorMessage: string;
    }
  | { readonly outcome: 'bad_request'; readonly message: string }
  | { readonly outcome: 'unavailable'; readonly message: string };

/** ExportPath maps an export's body to span events and writes them to the local log before it answers. */
export interface ExportPath {
  write(body: Uint8Array, format: OtlpFormat, exporter: Exporter, transport: Transport): Promise<Written>;
}

/**
 * createExportPath is the receiver's write-first step, shared by both transports. The sink is a
 * write-first sink: flush() appends everything emitted before it, so once it returns the spans are
 * in the local log (page cache; fsync on emit.fsyncIntervalMs) and the export may be acknowledged.
 * A failed append is answered as unavailable, which exporters retry; ids are deterministic
 * (trace id, span id and a tag of the tenant), so a retried span collapses into one row.
 */
export function createExportPath(deps: {
  sink: EventSink;
  mapper: { map(body: Uint8Array, format: OtlpFormat, tenant: string): MappedExport };
  metrics: OtlpMetrics;
  logger: Logger;
  onWriteFailed(): void;
}): ExportPath {
  const topic = TOPICS.spans;
  return {
    async write(body, format, exporter, transport) {
      let mapped: MappedExport;
      try {
        mapped = deps.mapper.map(body, format, exporter.tenant);
      } catch (err) {
        if (err instanceof OtlpRequestError) {
          // The message can quote the request (a decoder's complaint): it goes back to the exporter, never to the logs.
          deps.logger.debug(
            { transport, exporter: exporter.name, bytes: body.length },
            'refused a malformed export',
          );
          return { outcome: 'bad_request', message: err.message };
        }
        throw err;
      }
      const before = deps.sink.stats();
      let refused = 0;
      for (const span of mapped.spans) if (!deps.sink.emit(topic, span)) refused++;
      await deps.sink.flush();
      const after = deps.sink.stats();
      const lost = refused + (after.dropped - before.dropped);
      if (lost > 0) {
        deps.onWriteFailed();
        deps.logger.warn(
          { transport, exporter: exporter.name, spans: mapped.spans.length, lost },
          'could not write an export’s spans to the local log; answered unavailable',
        );
        return { outcome: 'unavailable', message: 'the spans could not be written; retry later' };
      }
      deps.metrics.spans(transport, mapped.spans.length, mapped.rejected);
      return {
        outcome: mapped.rejected > 0 ? 'partial' : 'ok',
        accepted: mapped.spans.length,
        rejected: mapped.rejected,
        errorMessage: mapped.errorMessage,
      };
    },
  };
}
