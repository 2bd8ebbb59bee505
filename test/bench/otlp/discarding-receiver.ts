/**
 * The OTLP benchmark's baseline receiver: runOtlpService (what `tapwire otlp` runs) on an event
 * log that encodes each span event as a log would (JSON and its record key) and drops it. What it
 * costs is the receiver's own work — HTTP, decoding, mapping, redaction, encoding — without the
 * local log's write and the shipping. Run as its own process; SIGTERM stops it.
 *
 * BENCH_RECEIVER (JSON): the `otlp` section.
 */
import { kafkaConfigSchema, telemetryConfigSchema } from '@tapwire/config';
import { otlpConfigSchema, runOtlpService } from '@tapwire/otlp-service';
import { createEventEncoder, type EventLog, type EventSink, emptySinkStats } from '@tapwire/stream';

function discardingLog(): EventLog {
  const encode = createEventEncoder({ validate: false });
  const stats = emptySinkStats();
  let bytes = 0;
  const sink: EventSink = {
    emit(topic, event) {
      const record = encode(topic, event);
      if (typeof record === 'string') {
        stats.invalid++;
        return false;
      }
      bytes += record.value.length;
      stats.accepted++;
      stats.delivered++;
      return true;
    },
    flush: async () => {},
    close: async () => {},
    stats: () => ({ ...stats }),
  };
  const unsupported = () => {
    throw new Error(`the discarding log only takes writes (${bytes} bytes so far)`);
  };
  return {
    kind: 'embedded',
    sink: () => sink,
    runner: unsupported,
    offsets: unsupported,
    readToEnd: unsupported,
  };
}

await runOtlpService(
  {
    otlp: otlpConfigSchema.parse(JSON.parse(process.env.BENCH_RECEIVER ?? '{}')),
    kafka: kafkaConfigSchema.parse({}),
    telemetry: telemetryConfigSchema.parse({ logLevel: 'warn' }),
  },
  { log: discardingLog(), handleSignals: true },
);
