import type { Command } from 'commander';
import { loadTapwireConfig } from '../cli-config.js';
import { openEmbedded } from '../deployment.js';
import { type CliIo, CommandFailure } from '../io.js';

const TABLES = ['access_logs', 'spans', 'saturation', 'dlq_events'];

/** registerReplay adds `tapwire replay`: rebuild projections by re-reading the event log from a point in time. */
export function registerReplay(program: Command, io: CliIo): void {
  program
    .command('replay')
    .description(
      'rebuild the stored tables by re-reading the event log (Kafka or embedded) from a point in time (safe to interrupt and rerun)',
    )
    .requiredOption('--from <time>', 'start: RFC 3339 (2026-11-26T00:00:00Z) or relative (now-6h)')
    .option('--to <time>', 'end (exclusive): RFC 3339 or relative; default: what is on the topics now')
    .option('--tables <list>', `comma-separated tables among ${TABLES.join(', ')}`, TABLES.join(','))
    .option('--clear', 'drop the affected day partitions (and their rollups) first; rebuilds whole UTC days')
    .action(async (opts: { from: string; to?: string; tables: string; clear?: boolean }) => {
      const { createClickHouse } = await import('@tapwire/clickhouse');
      const { createKafkaClient, kafkaSource } = await import('@tapwire/kafka');
      const { clickhouseWarehouse, replay } = await import('@tapwire/ingest');
      const { parseTime } = await import('@tapwire/schema');
      const { createLogger } = await import('@tapwire/telemetry');
      const fromMs = parseTime(opts.from);
      const toMs = opts.to === undefined ? undefined : parseTime(opts.to);
      const tables = opts.tables
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean);
      const unknown = tables.filter((t) => !TABLES.includes(t));
      if (fromMs === undefined)
        throw new CommandFailure(`--from: not a time: ${JSON.stringify(opts.from)}`, 2);
      if (opts.to !== undefined && toMs === undefined)
        throw new CommandFailure(`--to: not a time: ${JSON.stringify(opts.to)}`, 2);
      if (toMs !== undefined && toMs <= fromMs) throw new CommandFailure('--to must be after --from', 2);
      if (unknown.length > 0) throw new CommandFailure(`--tables: unknown table(s) ${unknown.join(', ')}`, 2);
      const config = loadTapwireConfig(program.opts<{ config?: string }>().config);
      const logger = createLogger({ name: 'tapwire-replay', level: config.telemetry.logLevel, fd: 2 });
      // The embedded log and DuckDB are used in place (stop `tapwire start` first: one process owns them).
      const embedded = await openEmbedded(config, logger);
      const source =
        embedded.log ?? kafkaSource({ kafka: createKafkaClient(config.kafka, logger, 'replay'), logger });
      const warehouse = embedded.warehouse ?? clickhouseWarehouse(createClickHouse(config.clickhouse));
      const tty = process.stderr.isTTY;
      let lastDraw = 0;
      try {
        const summary = await replay({ source, warehouse, logger }, config.ingest, {
          fromMs,
          ...(toMs === undefined ? {} : { toMs }),
          tables,
          clear: opts.clear ?? false,
          onProgress(done, total) {
            if (!tty || Date.now() - lastDraw < 100) return;
            lastDraw = Date.now();
            const width = 30;
            const filled = total === 0 ? width : Math.round((done / total) * width);
            process.stderr.write(
              `\r[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${done}/${total} records`,
            );
          },
        });
        if (tty) process.stderr.write('\n');
        io.out(
          `replayed ${new Date(summary.fromMs).toISOString()} .. ${new Date(summary.toMs).toISOString()} in ${summary.durationMs} ms\n`,
        );
        // Kafka records, not events: a batched record (what a proxy's shipper writes) holds many.
        for (const t of summary.topics) io.out(`  ${t.table}\t${t.events} records from ${t.topic}\n`);
        io.out(
          `inserted ${summary.inserted}, already stored ${summary.skippedDuplicates}, invalid ${summary.invalid}, cleared ${summary.clearedPartitions.length} partitions\n`,
        );
        for (const m of summary.mismatches) {
          const rollups = m.rollups.map((r) => `, ${r.table} ${r.rows} (expected ${r.expected})`).join('');
          io.out(
            `  ABOVE LEDGER ${m.table}/${m.day}: ${m.rawRows} rows for ${m.ledgerRows} log positions${rollups}\n`,
          );
        }
        if (summary.mismatches.length > 0) {
          throw new CommandFailure(
            `${summary.mismatches.length} day(s) hold more than the offset ledger; rerun with --clear for those days`,
            1,
          );
        }
      } finally {
        await warehouse.close();
        await embedded.close();
      }
    });
}
