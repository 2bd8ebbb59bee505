import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseConfig } from '@tapwire/config';
import { type ClickHouse, createClickHouse } from './client.js';
import { TapwireClickHouseError } from './errors.js';
import { identifier, raw, sql } from './sql.js';
import { splitStatements, stripComments } from './statements.js';

/** Migration is one numbered .sql file of the migrations folder. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly file: string;
  readonly checksum: string;
  readonly statements: readonly string[];
}

/** MigrationLogger is the part of a pino logger the runner reports progress to. */
export interface MigrationLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** MigrateOptions tunes the runner; the lock timings exist so tests can shorten them. */
export interface MigrateOptions {
  readonly dir: string;
  readonly logger?: MigrationLogger;
  /** How long a holder's lock stays valid without a heartbeat, in ms. Default 300000. */
  readonly lockLeaseMs?: number;
  /** Wait after announcing a lock claim before reading competitors, in ms. Default 2000. */
  readonly lockSettleMs?: number;
  /** Longest wait for another process's lock, in ms. Default 300000. */
  readonly lockWaitMs?: number;
}

/** MigrateReport says what a run applied. */
export interface MigrateReport {
  readonly database: string;
  readonly applied: { version: number; name: string; durationMs: number }[];
  readonly alreadyApplied: number;
}

// 18.16 has no ADD COLUMN IF NOT EXISTS: a re-run after a crash between an ALTER and its ledger
// row meets "column with this name already exists" (Code 44), which means the ALTER is done.
function alreadyAdded(statement: string, err: unknown): boolean {
  const s = stripComments(statement).replace(/\s+/g, ' ').trim().toUpperCase();
  return (
    /^ALTER TABLE \S+ ADD COLUMN /.test(s) &&
    err instanceof TapwireClickHouseError &&
    err.serverCode === 44 &&
    /already exists/.test(err.message)
  );
}

const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/;

function needsGuard(statement: string): string | undefined {
  const s = stripComments(statement).replace(/\s+/g, ' ').trim().toUpperCase();
  if (
    /^CREATE (TABLE|DATABASE|VIEW|MATERIALIZED VIEW) /.test(s) &&
    !/^CREATE [A-Z ]*?IF NOT EXISTS /.test(s)
  ) {
    return 'CREATE must say IF NOT EXISTS so a re-run after a crash is harmless';
  }
  if (/^DROP (TABLE|DATABASE|VIEW) /.test(s) && !/^DROP [A-Z]+ IF EXISTS /.test(s)) {
    return 'DROP must say IF EXISTS so a re-run after a crash is harmless';
  }
  return undefined;
}

/** readMigrations loads and checks every migration file of `dir`, ordered by version. */
export function readMigrations(dir: string): Migration[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort();
  const seen = new Map<number, string>();
  return files.map((file) => {
    const m = FILE_NAME.exec(file);
    if (!m) {
      throw new TapwireClickHouseError(
        'TAPWIRE_CH_MIGRATION_INVALID',
        `${file}: name must be NNNN_lower_snake_case.sql`,
      );
    }
    const version = Number(m[1]);
    const other = seen.get(version);
    if (other)
      throw new TapwireClickHouseError(
        'TAPWIRE_CH_MIGRATION_INVALID',
        `${file}: version ${version} also used by ${other}`,
      );
    seen.set(version, file);
    const text = readFileSync(join(dir, file));
    const statements = splitStatements(text.toString('utf8'));
    if (statements.length === 0)
      throw new TapwireClickHouseError('TAPWIRE_CH_MIGRATION_INVALID', `${file}: no statements`);
    statements.forEach((s, i) => {
      const problem = needsGuard(s);
      if (problem)
        throw new TapwireClickHouseError(
          'TAPWIRE_CH_MIGRATION_INVALID',
          `${file} statement ${i + 1}: ${problem}`,
        );
    });
    return {
      version,
      name: m[2]!,
      file,
      checksum: createHash('sha256').update(text).digest('hex'),
      statements,
    };
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The runner's own bookkeeping tables: the only DDL outside migrations/, because they must exist
// before any migration can be recorded.
const LEDGER_DDL = [
  `CREATE TABLE IF NOT EXISTS schema_migrations (
     version UInt32, name String, checksum String, applied_at DateTime('UTC'), duration_ms UInt32, applied_by String
   ) ENGINE = ReplacingMergeTree(applied_at) ORDER BY version`,
  `CREATE TABLE IF NOT EXISTS schema_migrations_lock (
     owner String, acquired_at DateTime('UTC'), expires_at DateTime('UTC'), released UInt8
   ) ENGINE = MergeTree ORDER BY (acquired_at, owner)`,
];

const ALREADY_EXISTS = 57;

async function ensureLedger(ch: ClickHouse): Promise<void> {
  for (const ddl of LEDGER_DDL) {
    try {
      await ch.command(raw(ddl));
    } catch (err) {
      // Two runners creating the table at the same instant: the loser sees "already exists".
      if ((err as TapwireClickHouseError).serverCode !== ALREADY_EXISTS) throw err;
    }
  }
}

/**
 * withMigrationLock runs `fn` while holding a lease-based lock kept in ClickHouse itself. Each
 * claimant inserts a claim row, waits until every concurrent claim is visible, and the oldest live
 * claim (ties broken by owner id) wins; heartbeats extend the lease; release marks the claim done.
 */
async function withMigrationLock<T>(
  ch: ClickHouse,
  options: MigrateOptions,
  fn: () => Promise<T>,
): Promise<T> {
  const owner = randomUUID();
  const leaseS = Math.ceil((options.lockLeaseMs ?? 300_000) / 1000);
  const waitMs = options.lockWaitMs ?? 300_000;
  const claim = (released: 0 | 1) =>
    ch.command(
      sql`INSERT INTO schema_migrations_lock SELECT ${owner}, now(), now() + ${released ? 0 : leaseS}, ${released}`,
    );
  await claim(0);
  const heartbeat = setInterval(() => void claim(0).catch(() => {}), Math.max(1000, (leaseS * 1000) / 3));
  heartbeat.unref();
  try {
    await sleep(options.lockSettleMs ?? 2000);
    const deadline = Date.now() + waitMs;
    for (;;) {
      const [head] = await ch.query<{ owner: string }>(
        raw(`SELECT owner FROM (
               SELECT owner, min(acquired_at) AS a, max(expires_at) AS e, max(released) AS r
               FROM schema_migrations_lock GROUP BY owner
             ) WHERE r = 0 AND e > now() ORDER BY a, owner LIMIT 1`),
      );
      if (head?.owner === owner) break;
      if (Date.now() > deadline) {
        throw new TapwireClickHouseError(
          'TAPWIRE_CH_MIGRATION_LOCKED',
          `held by ${head?.owner ?? 'unknown'} for over ${waitMs} ms`,
        );
      }
      options.logger?.info({ holder: head?.owner }, 'waiting for another migration run');
      await sleep(1000);
    }
    return await fn();
  } finally {
    clearInterval(heartbeat);
    await claim(1).catch(() => {});
  }
}

/** appliedMigrations reads what the ledger says was applied, by version. */
export async function appliedMigrations(
  ch: ClickHouse,
): Promise<Map<number, { name: string; checksum: string }>> {
  const rows = await ch.query<{ version: number; name: string; checksum: string }>(
    raw(`SELECT version, argMax(name, applied_at) AS name, argMax(checksum, applied_at) AS checksum
         FROM schema_migrations GROUP BY version ORDER BY version`),
  );
  return new Map(rows.map((r) => [Number(r.version), { name: r.name, checksum: r.checksum }]));
}

function verifyLanded(
  migrations: readonly Migration[],
  applied: Map<number, { name: string; checksum: string }>,
): void {
  for (const [version, landed] of applied) {
    const file = migrations.find((m) => m.version === version);
    if (!file) {
      throw new TapwireClickHouseError(
        'TAPWIRE_CH_MIGRATION_MISSING',
        `version ${version} (${landed.name}) was applied but no such file exists; is this an older build?`,
      );
    }
    if (file.checksum !== landed.checksum) {
      throw new TapwireClickHouseError(
        'TAPWIRE_CH_MIGRATION_CHECKSUM_MISMATCH',
        `${file.file} changed after it was applied (applied ${landed.checksum.slice(0, 12)}, now ${file.checksum.slice(0, 12)}); add a new migration instead of editing a landed one`,
      );
    }
  }
}

/**
 * migrate creates the database if needed and applies every pending migration in order, recording
 * name, checksum and time; it refuses to run when a landed migration changed, and is safe to run
 * twice or from two processes at once.
 */
export async function migrate(config: ClickHouseConfig, options: MigrateOptions): Promise<MigrateReport> {
  const migrations = readMigrations(options.dir);
  const bootstrap = createClickHouse(config, { database: 'default' });
  try {
    await bootstrap.command(sql`CREATE DATABASE IF NOT EXISTS ${identifier(config.database)}`);
  } finally {
    await bootstrap.close();
  }
  const ch = createClickHouse(config);
  try {
    await ensureLedger(ch);
    verifyLanded(migrations, await appliedMigrations(ch));
    return await withMigrationLock(ch, options, async () => {
      const applied = await appliedMigrations(ch);
      verifyLanded(migrations, applied);
      const report: MigrateReport = { database: config.database, applied: [], alreadyApplied: applied.size };
      for (const m of migrations) {
        if (applied.has(m.version)) continue;
        const started = Date.now();
        for (const [i, statement] of m.statements.entries()) {
          try {
            await ch.command(raw(statement));
          } catch (err) {
            if (alreadyAdded(statement, err)) continue;
            throw new TapwireClickHouseError(
              'TAPWIRE_CH_MIGRATION_FAILED',
              `${m.file} statement ${i + 1}: ${(err as Error).message}`,
              { cause: err },
            );
          }
        }
        const durationMs = Date.now() - started;
        await ch.command(
          sql`INSERT INTO schema_migrations SELECT ${m.version}, ${m.name}, ${m.checksum}, now(), ${durationMs}, ${`${hostname()}:${process.pid}`}`,
        );
        options.logger?.info({ version: m.version, migration: m.name, durationMs }, 'applied migration');
        report.applied.push({ version: m.version, name: m.name, durationMs });
      }
      return report;
    });
  } finally {
    await ch.close();
  }
}
