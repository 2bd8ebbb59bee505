import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kafkaBrokers } from '@tapwire/infra';
import { createKafkaClient, ensureTopics, topicSpecs } from '@tapwire/kafka';
import { TOPICS } from '@tapwire/schema';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  deletePrefixedTopics,
  infraConfig,
  silentLogger,
  testKafkaConfig,
  uniqueName,
} from '../support/infra.js';
import { type RawMessage, readTopics } from '../support/kafka-read.js';
import {
  bareEnv,
  killHard,
  metricSamples,
  scrape,
  spawnTapwire,
  type TapwireProcess,
} from '../support/tapwire-child.js';
import { freePort, startUpstream, type TestUpstream } from '../support/upstream.js';

// Issue #18, item 6: several `tapwire proxy` processes on one machine, each with its own local log
// folder (proxy.emit.logDir), each shipping its own log to Kafka under its own source id. A second
// process on a folder in use is refused, naming the owner; the lock dies with its owner, so a
// proxy started after a SIGKILL takes the folder over and ships what the killed one left.

const kafka = createKafkaClient(testKafkaConfig(), silentLogger, 'proxies-test');
const prefix = `${uniqueName('proxies')}.`;
const home = mkdtempSync(join(tmpdir(), 'tapwire-proxies-'));
const running: TapwireProcess[] = [];
let upstream: TestUpstream | undefined;

afterAll(async () => {
  for (const p of running) await killHard(p);
  await upstream?.close();
  await deletePrefixedTopics(prefix);
  rmSync(home, { recursive: true, force: true });
});

/**
 * Proxy A ships full batches at once and holds a partial one for a minute: a kill leaves those
 * events unshipped. It records no spans, whose full batches would take the partial one along.
 */
const A_BATCH = 50;
const A_REQUESTS = 120;
const B_REQUESTS = 30;

interface ProxyPorts {
  listen: number;
  admin: number;
}

/** proxyConfig writes the config file of one proxy process: its ports, its local log folder, how it ships. */
function proxyConfig(name: string, ports: ProxyPorts, logDir: string, emit: string, spanRatio = 1): string {
  const file = join(home, `${name}.yaml`);
  writeFileSync(
    file,
    `log: { kind: kafka }
kafka: { brokers: [${kafkaBrokers(infraConfig()).join(', ')}] }
proxy:
  listen: { host: 127.0.0.1, port: ${ports.listen} }
  admin: { host: 127.0.0.1, port: ${ports.admin} }
  emit: { logDir: ${logDir}, topicPrefix: "${prefix}"${emit} }
  sampling: { spanRatio: ${spanRatio} }
  upstreams:
    - { name: shop, url: ${upstream!.url}, routes: ["/a/:n", "/b/:n"] }
`,
  );
  return file;
}

async function startProxy(config: string, ports: ProxyPorts): Promise<TapwireProcess> {
  const p = spawnTapwire(['-c', config, 'proxy'], bareEnv());
  running.push(p);
  await vi.waitFor(
    async () => {
      if (p.child.exitCode !== null)
        throw new Error(`tapwire proxy exited ${p.child.exitCode}: ${p.output()}`);
      expect((await fetch(`http://127.0.0.1:${ports.admin}/readyz`)).status).toBe(200);
    },
    { timeout: 60_000, interval: 200 },
  );
  return p;
}

async function send(ports: ProxyPorts, paths: string[]): Promise<void> {
  for (const path of paths) {
    const res = await fetch(`http://127.0.0.1:${ports.listen}${path}`);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  }
}

const pathOf = (m: RawMessage) => (JSON.parse(m.value.toString('utf8')) as { path: string }).path;
const bySource = (messages: RawMessage[], source: string) => messages.filter((m) => m.source === source);
const seqs = (messages: RawMessage[]) => messages.map((m) => Number(m.seq)).sort((x, y) => x - y);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('several tapwire proxy processes on one machine', () => {
  it('each ships its own local log under its own source id; a second process on a folder is refused naming the owner; after a SIGKILL a new proxy takes the folder over and ships what was left', async () => {
    await ensureTopics(
      kafka,
      topicSpecs(
        { partitions: 3, replicationFactor: 1, retentionMs: 3_600_000, dlqRetentionMs: 3_600_000 },
        prefix,
      ),
    );
    upstream = await startUpstream();
    const [a, b, c] = await Promise.all(
      [0, 1, 2].map(async () => ({ listen: await freePort(), admin: await freePort() })),
    );
    const dirA = join(home, 'proxy-a');
    const dirB = join(home, 'proxy-b');
    const proxyA = await startProxy(
      proxyConfig('a', a!, dirA, `, lingerMs: 60000, maxBatchEvents: ${A_BATCH}`, 0),
      a!,
    );
    const proxyB = await startProxy(proxyConfig('b', b!, dirB, ''), b!);
    const idA = readFileSync(join(dirA, 'ID'), 'utf8').trim();
    const idB = readFileSync(join(dirB, 'ID'), 'utf8').trim();
    expect(idA).not.toBe(idB);

    // A third process on A's folder (its own ports) is refused, naming A and the setting to change.
    const third = spawnTapwire(['-c', proxyConfig('c', c!, dirA, ''), 'proxy'], bareEnv());
    running.push(third);
    const refused = await third.exited();
    expect(refused.code, third.output()).not.toBe(0);
    expect(refused.code).not.toBeNull();
    expect(third.output()).toContain('TAPWIRE_LOG_LOCKED');
    expect(third.output()).toContain(`process ${proxyA.pid}`);
    expect(third.output()).toContain('proxy.emit.logDir');
    expect((await fetch(`http://127.0.0.1:${a!.admin}/readyz`)).status).toBe(200);

    await Promise.all([
      send(
        a!,
        range(A_REQUESTS).map((i) => `/a/${i}`),
      ),
      send(
        b!,
        range(B_REQUESTS).map((i) => `/b/${i}`),
      ),
    ]);
    const shippedA = Math.floor(A_REQUESTS / A_BATCH) * A_BATCH;
    const topic = prefix + TOPICS.accessLogs;
    const before = await readTopics(
      kafka,
      [topic],
      (m) => bySource(m, idA).length >= shippedA && bySource(m, idB).length >= B_REQUESTS,
    );
    expect(before.every((m) => m.source === idA || m.source === idB)).toBe(true);
    expect(before.every((m) => m.key === m.source)).toBe(true);
    expect(bySource(before, idB).map(pathOf).sort()).toEqual(
      range(B_REQUESTS)
        .map((i) => `/b/${i}`)
        .sort(),
    );
    expect(seqs(bySource(before, idB))).toEqual(range(B_REQUESTS));
    // A sent its full batches; the last partial one waits in its local log.
    expect(seqs(bySource(before, idA))).toEqual(range(shippedA));
    await vi.waitFor(
      async () => {
        const unshipped = metricSamples(
          await scrape(`http://127.0.0.1:${a!.admin}/metrics`),
          'tapwire_proxy_unshipped_events',
        );
        expect(unshipped[0]).toBeGreaterThanOrEqual(A_REQUESTS - shippedA);
      },
      { timeout: 10_000, interval: 100 },
    );

    await killHard(proxyA);
    expect(existsSync(join(dirA, 'LOCK'))).toBe(true);
    // Same folder, same ports, shipping at once this time.
    const restarted = await startProxy(proxyConfig('a-again', a!, dirA, '', 0), a!);
    expect(restarted.output()).not.toContain('TAPWIRE_LOG_LOCKED');
    expect(readFileSync(join(dirA, 'ID'), 'utf8').trim()).toBe(idA);
    const after = await readTopics(
      kafka,
      [topic],
      (m) => new Set(seqs(bySource(m, idA))).size >= A_REQUESTS && bySource(m, idB).length >= B_REQUESTS,
    );
    const fromA = bySource(after, idA);
    expect([...new Set(seqs(fromA))]).toEqual(range(A_REQUESTS));
    expect([...new Set(fromA.map(pathOf))].sort()).toEqual(
      range(A_REQUESTS)
        .map((i) => `/a/${i}`)
        .sort(),
    );
    expect(fromA.every((m) => m.key === idA)).toBe(true);
    expect(seqs(bySource(after, idB))).toEqual(range(B_REQUESTS));

    for (const p of [restarted, proxyB]) {
      p.child.kill('SIGTERM');
      expect(await p.exited(), p.output()).toEqual({ code: 0, signal: null });
    }
  }, 180_000);
});
