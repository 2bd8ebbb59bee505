import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { TOPICS } from '@tapwire/schema';
import type { Command } from 'commander';
import { loadTapwireConfig } from '../cli-config.js';
import { openEmbedded } from '../deployment.js';
import { type CliIo, CommandFailure } from '../io.js';

/**
 * `tapwire export` and `tapwire import` move events between deployments: export reads the event
 * topics of the configured log (usually the embedded one) into a file, import emits them into the
 * configured log (usually Kafka), where ingest projects them like any other events. The file is
 * NDJSON: a header line, then one line per record with its topic (without prefix), key and event.
 */

/** EXPORT_FORMAT is the version of the export file format, in its header line. */
export const EXPORT_FORMAT = 1;

const TOPIC_NAMES = Object.values(TOPICS);

interface ExportLine {
  topic: string;
  key: string;
  event?: unknown;
  value_base64?: string;
}

/** registerExport adds `tapwire export`. */
export function registerExport(program: Command, io: CliIo): void {
  program
    .command('export')
    .description(
      'write the events of the configured event log (embedded or Kafka) to an NDJSON file that `tapwire import` reads',
    )
    .requiredOption('--out <file>', 'file to write (replaced)')
    .option('--from <time>', 'first append time: RFC 3339 or relative (now-7d); default: the oldest record')
    .option('--to <time>', 'end (exclusive): RFC 3339 or relative; default: what the log holds now')
    .action(async (opts: { out: string; from?: string; to?: string }) => {
      const [{ createKafkaClient, kafkaSource }, { planRange, readRange }, { parseTime }, { createLogger }] =
        await Promise.all([
          import('@tapwire/kafka'),
          import('@tapwire/stream'),
          import('@tapwire/schema'),
          import('@tapwire/telemetry'),
        ]);
      const fromMs = opts.from === undefined ? 0 : parseTime(opts.from);
      const toMs = opts.to === undefined ? undefined : parseTime(opts.to);
      if (fromMs === undefined)
        throw new CommandFailure(`--from: not a time: ${JSON.stringify(opts.from)}`, 2);
      if (opts.to !== undefined && toMs === undefined)
        throw new CommandFailure(`--to: not a time: ${JSON.stringify(opts.to)}`, 2);
      const config = loadTapwireConfig(program.opts<{ config?: string }>().config);
      const logger = createLogger({ name: 'tapwire-export', level: config.telemetry.logLevel, fd: 2 });
      const prefix = config.ingest.topicPrefix;
      const embedded = await openEmbedded(
        { ...config, store: { ...config.store, kind: 'clickhouse' } },
        logger,
      );
      const source =
        embedded.log ?? kafkaSource({ kafka: createKafkaClient(config.kafka, logger, 'export'), logger });
      const out = createWriteStream(opts.out);
      const counts = new Map<string, number>();
      try {
        out.write(
          `${JSON.stringify({ tapwire_export: EXPORT_FORMAT, source: source.kind, from_ms: fromMs, ...(toMs !== undefined ? { to_ms: toMs } : {}) })}\n`,
        );
        const plan = await planRange(
          source,
          TOPIC_NAMES.map((t) => prefix + t),
          { fromMs, toMs, groupPrefix: 'tapwire-export' },
        );
        await readRange(source, plan, {
          async onBatch(batch) {
            const topic = batch.topic.slice(prefix.length);
            let text = '';
            for (const m of batch.messages) {
              const line: ExportLine = { topic, key: m.key?.toString('utf8') ?? '' };
              const value = m.value ?? Buffer.alloc(0);
              try {
                line.event = JSON.parse(value.toString('utf8'));
              } catch {
                line.value_base64 = value.toString('base64');
              }
              text += `${JSON.stringify(line)}\n`;
            }
            counts.set(topic, (counts.get(topic) ?? 0) + batch.messages.length);
            if (!out.write(text)) await once(out, 'drain');
          },
        });
      } finally {
        out.end();
        await once(out, 'close');
        await embedded.close();
      }
      for (const t of TOPIC_NAMES) io.out(`${t}\t${counts.get(t) ?? 0} records\n`);
      io.out(`exported ${[...counts.values()].reduce((a, b) => a + b, 0)} records to ${opts.out}\n`);
    });
}

/** registerImport adds `tapwire import`. */
export function registerImport(program: Command, io: CliIo): void {
  program
    .command('import')
    .description(
      'emit the events of a `tapwire export` file into the configured event log (e.g. Kafka, where ingest projects them into ClickHouse)',
    )
    .requiredOption('--in <file>', 'file written by `tapwire export`')
    .action(async (opts: { in: string }) => {
      const [kafkaPackage, { createLogger }] = await Promise.all([
        import('@tapwire/kafka'),
        import('@tapwire/telemetry'),
      ]);
      const config = loadTapwireConfig(program.opts<{ config?: string }>().config);
      const logger = createLogger({ name: 'tapwire-import', level: config.telemetry.logLevel, fd: 2 });
      const prefix = config.ingest.topicPrefix;
      const embedded = await openEmbedded(
        { ...config, store: { ...config.store, kind: 'clickhouse' } },
        logger,
      );
      let log = embedded.log;
      if (!log) {
        const kafka = kafkaPackage.createKafkaClient(config.kafka, logger, 'import');
        await kafkaPackage.ensureTopics(kafka, kafkaPackage.topicSpecs(config.kafka.topics, prefix));
        log = kafkaPackage.kafkaSource({ kafka, logger });
      }
      const sink = log.sink({
        lingerMs: 20,
        maxBatchEvents: 1000,
        maxBufferedEvents: 50_000,
        retryBackoffMs: 200,
        topicPrefix: prefix,
      });
      const counts = new Map<string, number>();
      const refused: string[] = [];
      let lineNo = 0;
      try {
        const lines = createInterface({
          input: createReadStream(opts.in),
          crlfDelay: Number.POSITIVE_INFINITY,
        });
        for await (const text of lines) {
          lineNo++;
          if (text.trim() === '') continue;
          let line: ExportLine & { tapwire_export?: number };
          try {
            line = JSON.parse(text) as typeof line;
          } catch {
            throw new CommandFailure(`${opts.in}:${lineNo}: not JSON`, 2);
          }
          if (lineNo === 1) {
            if (line.tapwire_export !== EXPORT_FORMAT)
              throw new CommandFailure(
                `${opts.in}: not a tapwire export (format ${EXPORT_FORMAT}) file: the first line has no "tapwire_export": ${EXPORT_FORMAT}`,
                2,
              );
            continue;
          }
          const topic = TOPIC_NAMES.find((t) => t === line.topic);
          if (!topic || line.event === undefined) {
            refused.push(
              `line ${lineNo}: ${topic ? 'not a JSON event' : `unknown topic ${JSON.stringify(line.topic)}`}`,
            );
            continue;
          }
          // The sink validates every event as it would a producer's: an invalid one is refused, not sent.
          if (!sink.emit(topic, line.event as never)) {
            refused.push(`line ${lineNo}: refused by ${topic}'s schema`);
            continue;
          }
          counts.set(topic, (counts.get(topic) ?? 0) + 1);
          if (lineNo % 10_000 === 0) await sink.flush();
        }
        await sink.flush();
      } finally {
        await sink.close(10_000);
        await embedded.close();
      }
      const stats = sink.stats();
      for (const t of TOPIC_NAMES) io.out(`${t}\t${counts.get(t) ?? 0} records\n`);
      io.out(
        `imported ${stats.delivered} records into ${log.kind === 'kafka' ? 'Kafka' : 'the embedded log'}\n`,
      );
      if (refused.length > 0) {
        io.err(`${refused.length} records not imported:\n${refused.slice(0, 20).join('\n')}\n`);
        throw new CommandFailure(`${refused.length} records not imported`, 1);
      }
      if (stats.dropped > 0)
        throw new CommandFailure(`${stats.dropped} records dropped by the event sink`, 1);
    });
}
