import { fileURLToPath } from 'node:url';
import { createLogger } from '@tapwire/telemetry';
import type { Command } from 'commander';
import { distributedConfig } from '../cli-config.js';
import type { CliIo } from '../io.js';

/** DEFAULT_MIGRATIONS_DIR is the repository's migrations/ folder, found relative to this file. */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../../../migrations', import.meta.url));

/** registerMigrate adds `tapwire migrate`: apply pending ClickHouse migrations, or list their status. */
export function registerMigrate(program: Command, io: CliIo): void {
  program
    .command('migrate')
    .description('create the ClickHouse database and apply pending migrations in order (safe to rerun)')
    .option('--dir <path>', 'migrations folder', DEFAULT_MIGRATIONS_DIR)
    .option('--status', 'list applied and pending migrations without applying anything')
    .action(async (opts: { dir: string; status?: boolean }) => {
      const config = distributedConfig(program.opts<{ config?: string }>().config);
      const { appliedMigrations, createClickHouse, migrate, readMigrations } = await import(
        '@tapwire/clickhouse'
      );
      const logger = createLogger({ name: 'tapwire-migrate', level: config.telemetry.logLevel, fd: 2 });
      if (opts.status) {
        const files = readMigrations(opts.dir);
        const ch = createClickHouse(config.clickhouse);
        try {
          const applied = await appliedMigrations(ch).catch(() => new Map());
          for (const m of files) {
            const landed = applied.get(m.version);
            const state = !landed ? 'pending' : landed.checksum === m.checksum ? 'applied' : 'CHANGED';
            io.out(`${m.file}\t${state}\n`);
          }
        } finally {
          await ch.close();
        }
        return;
      }
      const report = await migrate(config.clickhouse, { dir: opts.dir, logger });
      for (const a of report.applied)
        io.out(`applied ${String(a.version).padStart(4, '0')}_${a.name} (${a.durationMs} ms)\n`);
      io.out(
        `database ${report.database}: ${report.applied.length} applied, ${report.alreadyApplied} already up to date\n`,
      );
    });
}
