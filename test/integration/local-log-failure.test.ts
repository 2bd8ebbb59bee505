import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kafkaBrokers } from '@tapwire/infra';
import { createKafkaClient, ensureTopics, topicSpecs } from '@tapwire/kafka';
import { TOPICS } from '@tapwire/schema';
import type { Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { infraConfig, silentLogger, testKafkaConfig, uniqueName } from '../support/infra.js';
import { readTopics } from '../support/kafka-read.js';
import { scrape } from '../support/prom-text.js';
import { steadyLoad } from '../support/steady-load.js';
import { spawnTapwire, type TapwireProcess, waitForUrl } from '../support/tapwire-process.js';
import { freePort, startUpstream, type TestUpstream } from '../support/upstream.js';

/**
 * Issue #18 acceptance: the local log directory full, then unwritable. `tapwire proxy` runs as a
 * process with its local log on a tmpfs of this file's own: another file fills it (ENOSPC, a real
 * full disk), then the topic's directory is replaced by a file (EEXIST when the log reopens it).
 * The proxy answers every request all along, counts each event it could not write, says why at
 * most once per 10 s, and writes and ships again by itself once the cause is gone.
 */

const LOG_INTERVAL_MS = 10_000;
const FAILURE_LINE = 'cannot write events to the local log; dropped them (dropped: since the last line)';
const RECOVERY_LINE = 'writing events to the local log again (dropped: since the last line)';
const prefix = `${uniqueName('logfail')}.`;
const home = mkdtempSync(join(tmpdir(), 'tapwire-log-failure-'));
const mountPoint = join(home, 'disk');
const kafka = createKafkaClient(testKafkaConfig(), silentLogger, 'log-failure-test');
let admin: Admin;
let up: TestUpstream;
let proxy: TapwireProcess | undefined;
let mounted = false;

interface LogLine {
  time: string;
  level: string;
  msg: string;
  dropped?: number;
  topic?: string;
  err?: { message?: string; code?: string };
}

/** fill writes a file on the disk at `path` until the disk is full. */
function fill(path: string): number {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(1 << 20, 'f');
  let bytes = 0;
  try {
    for (;;) bytes += writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return bytes;
}

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
  await ensureTopics(
    kafka,
    topicSpecs(
      { partitions: 3, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
      prefix,
    ),
  );
  up = await startUpstream();
  // A disk of the test's own, small enough to fill at once, large enough for the test's events.
  execFileSync('mkdir', ['-p', mountPoint]);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', mountPoint]);
  mounted = true;
});

afterAll(async () => {
  await proxy?.stop('SIGKILL');
  await up?.close();
  if (mounted) execFileSync('umount', ['-l', mountPoint]);
  rmSync(home, { recursive: true, force: true });
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
  await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
});

describe('the local log directory full or unwritable', () => {
  it('the proxy answers every request, counts the events it cannot write, logs the cause once per 10 s, and recovers by itself', async () => {
    const [proxyPort, proxyAdmin] = await Promise.all([freePort(), freePort()]);
    const logDir = join(mountPoint, 'proxy-log');
    const config = join(home, 'tapwire.yaml');
    // Access logs only (no spans, no saturation samples in the test's time): every event is a request's.
    writeFileSync(
      config,
      `kafka: { brokers: [${kafkaBrokers(infraConfig()).join(', ')}], clientId: tapwire-log-failure }
proxy:
  listen: { host: 127.0.0.1, port: ${proxyPort} }
  admin: { host: 127.0.0.1, port: ${proxyAdmin} }
  sampling: { spanRatio: 0 }
  emit: { topicPrefix: ${prefix}, logDir: ${logDir}, saturationIntervalMs: 3600000 }
  upstreams:
    - { name: app, url: ${up.url} }
`,
    );
    proxy = spawnTapwire(['proxy'], config, { TAPWIRE_TELEMETRY_LOG_LEVEL: 'info' });
    await waitForUrl(`http://127.0.0.1:${proxyAdmin}/readyz`);
    const metrics = () => scrape(`http://127.0.0.1:${proxyAdmin}/metrics`);
    const dropped = async () =>
      (await metrics())('tapwire_proxy_events_dropped_total', { reason: 'write_failed' });
    const emitted = async () => (await metrics())('tapwire_proxy_events_emitted_total');
    const lines = () => proxy!.logLines() as unknown as LogLine[];
    const topicDir = join(logDir, 'topics', prefix + TOPICS.accessLogs);
    const filler = join(mountPoint, 'filler');

    const load = steadyLoad(`http://127.0.0.1:${proxyPort}`, {
      ratePerS: 200,
      connections: 8,
      request: (n) => ({ path: `/items/${n}` }),
    });
    const phases: Record<string, number> = {};
    try {
      await vi.waitFor(
        async () => expect((await metrics())('tapwire_proxy_events_delivered_total')).toBeGreaterThan(0),
        {
          timeout: 30_000,
          interval: 100,
        },
      );

      // Full: another file takes the disk's last free byte.
      const filled = fill(filler);
      phases.fullAt = Date.now();
      await vi.waitFor(async () => expect(await dropped()).toBeGreaterThan(0), {
        timeout: 10_000,
        interval: 100,
      });
      // Freed: the proxy writes again by itself.
      rmSync(filler);
      phases.freedAt = Date.now();
      const writtenWhenFreed = await emitted();
      await vi.waitFor(async () => expect(await emitted()).toBeGreaterThan(writtenWhenFreed + 100), {
        timeout: 10_000,
        interval: 100,
      });

      // Full again, and the topic's directory becomes an (empty: the disk is full) file. Once a
      // write failed after that, the log holds no open segment and must create the directory
      // again, which fails; only then is the disk freed, so nothing goes to the moved directory.
      fill(filler);
      renameSync(topicDir, `${topicDir}.away`);
      writeFileSync(topicDir, '');
      phases.unwritableAt = Date.now();
      const droppedAtUnwritable = await dropped();
      await vi.waitFor(async () => expect(await dropped()).toBeGreaterThan(droppedAtUnwritable), {
        timeout: 10_000,
        interval: 100,
      });
      rmSync(filler);
      // The cause of the second interval is logged once the first interval is over.
      await vi.waitFor(() => expect(lines().filter((l) => l.msg === FAILURE_LINE)).toHaveLength(2), {
        timeout: 2 * LOG_INTERVAL_MS,
        interval: 100,
      });

      // The cause removed: the directory is back. The proxy writes again without a restart.
      rmSync(topicDir);
      renameSync(`${topicDir}.away`, topicDir);
      phases.recoveredAt = Date.now();
      await vi.waitFor(() => expect(lines().some((l) => l.msg === RECOVERY_LINE)).toBe(true), {
        timeout: 2 * LOG_INTERVAL_MS,
        interval: 100,
      });
      const writtenAtRecovery = await emitted();
      await vi.waitFor(
        async () =>
          expect((await metrics())('tapwire_proxy_events_emitted_total')).toBeGreaterThan(
            writtenAtRecovery + 500,
          ),
        { timeout: 30_000, interval: 100 },
      );
      process.stdout.write(`[log-failure] filled ${filled} bytes\n`);
    } finally {
      await load.stop();
    }
    const answered = load.answered();
    expect(load.failures()).toEqual([]);
    expect(load.failed()).toBe(0);

    // Everything written reaches Kafka.
    await vi.waitFor(async () => expect((await metrics())('tapwire_proxy_unshipped_events')).toBe(0), {
      timeout: 60_000,
      interval: 200,
    });
    const m = await metrics();
    const written = m('tapwire_proxy_events_emitted_total');
    const lost = m('tapwire_proxy_events_dropped_total', { reason: 'write_failed' });
    const writeErrors = m('tapwire_proxy_local_log_write_errors_total');
    process.stdout.write(
      `[log-failure] answered ${answered}, written ${written}, dropped ${lost} in ${writeErrors} failed writes; phases ${JSON.stringify(phases)}\n`,
    );
    // Every request's access log is written or counted as dropped.
    expect(written + lost).toBe(answered);
    expect(lost).toBeGreaterThan(0);
    expect(writeErrors).toBeGreaterThan(0);
    expect(writeErrors).toBeLessThanOrEqual(lost);
    expect(m('tapwire_proxy_events_dropped_total', { reason: 'over_capacity' })).toBe(0);

    // The cause, once per interval: the full disk, then the directory that is a file; then the recovery.
    const warnings = lines().filter((l) => l.msg === FAILURE_LINE || l.msg === RECOVERY_LINE);
    process.stdout.write(
      `[log-failure] ${JSON.stringify(warnings.map((l) => [l.time, l.dropped, l.err?.message]))}\n`,
    );
    expect(warnings.map((l) => [l.level, l.msg])).toEqual([
      ['warn', FAILURE_LINE],
      ['warn', FAILURE_LINE],
      ['warn', RECOVERY_LINE],
    ]);
    // (pino's error serializer appends the cause's message.)
    const [full, unwritable] = warnings;
    const path = topicDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(full!.err?.message).toMatch(
      new RegExp(
        `^TAPWIRE_LOG_WRITE_FAILED: cannot write ${path}/0{20}\\.log: ENOSPC: no space left on device, write`,
      ),
    );
    expect(unwritable!.err?.message).toMatch(
      new RegExp(
        `^TAPWIRE_LOG_WRITE_FAILED: cannot open the active segment of ${path}: EEXIST: file already exists, mkdir`,
      ),
    );
    const times = warnings.map((l) => Date.parse(l.time));
    for (let i = 1; i < times.length; i++)
      expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(LOG_INTERVAL_MS - 10);
    // The lines account for every dropped event.
    expect(warnings.reduce((n, l) => n + (l.dropped ?? 0), 0)).toBe(lost);

    // On Kafka: each written access log once (a resend keeps its sequence), the sequences gapless.
    const messages = await readTopics(
      kafka,
      [prefix + TOPICS.accessLogs],
      (got) => new Set(got.map((x) => x.seq)).size >= written,
      60_000,
    );
    const seqs = [...new Set(messages.map((x) => x.seq!))].sort((a, b) => (a < b ? -1 : 1));
    expect(new Set(messages.map((x) => x.source)).size).toBe(1);
    expect(seqs.length).toBe(written);
    expect(seqs.at(-1)).toBe(BigInt(written - 1));
    const ids = new Set(messages.map((x) => (JSON.parse(x.value.toString('utf8')) as { id: string }).id));
    expect(ids.size).toBe(written);

    expect(await proxy.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    // What else it said: the shipper, which could not read the moved segment meanwhile, retried.
    const others = lines().filter(
      (l) => l.level !== 'info' && l.msg !== FAILURE_LINE && l.msg !== RECOVERY_LINE,
    );
    process.stdout.write(
      `[log-failure] ${others.length} other warnings: ${[...new Set(others.map((l) => l.msg))].join(' | ')}\n`,
    );
  }, 180_000);
});
