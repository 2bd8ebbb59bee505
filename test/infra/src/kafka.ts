import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { InfraConfig } from '@tapwire/config';
import { kafkaConfigSchema } from '@tapwire/config';
import { createKafkaClient, waitForKafka } from '@tapwire/kafka';
import { ownedPid, startDetached, stopPid, tail } from './processes.js';

/** ServerStatus is what `infra status` reports for one server. */
export interface ServerStatus {
  name: string;
  pid: number | undefined;
  address: string;
  ready: boolean;
  log: string;
}

const quiet = { error() {}, warn() {}, info() {}, debug() {} };

function paths(cfg: InfraConfig) {
  const root = resolve(cfg.dir, 'kafka');
  const libs = cfg.kafkaLibsDir || join(homedir(), '.cache', 'tapwire', `kafka-${cfg.kafkaVersion}`);
  return {
    root,
    libs: resolve(libs),
    data: join(root, 'data'),
    logs: join(root, 'logs'),
    props: join(root, 'server.properties'),
    log4j: join(root, 'log4j.properties'),
    pid: join(root, 'kafka.pid'),
    out: join(root, 'logs', 'stdout.log'),
  };
}

/** kafkaBrokers returns the bootstrap address of the local broker. */
export function kafkaBrokers(cfg: InfraConfig): string[] {
  return [`127.0.0.1:${cfg.kafkaPort}`];
}

/**
 * ensureKafkaLibs resolves org.apache.kafka:kafka_2.13 and its dependencies from Maven Central
 * into the cache folder once; later calls reuse it.
 */
export function ensureKafkaLibs(cfg: InfraConfig, say: (line: string) => void): string {
  const p = paths(cfg);
  const marker = join(p.libs, '.complete');
  if (existsSync(marker)) return p.libs;
  mkdirSync(p.libs, { recursive: true });
  const pomDir = join(p.libs, '..', `kafka-${cfg.kafkaVersion}-pom`);
  mkdirSync(pomDir, { recursive: true });
  // slf4j-reload4j is what the release tarball ships for logging; the Maven artifact leaves it out.
  writeFileSync(
    join(pomDir, 'pom.xml'),
    `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.tapwire</groupId><artifactId>kafka-libs</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>${cfg.kafkaVersion}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
`,
  );
  say(`resolving Kafka ${cfg.kafkaVersion} jars from Maven Central into ${p.libs}`);
  const mvn = spawnSync('mvn', ['-q', '-B', 'dependency:copy-dependencies', `-DoutputDirectory=${p.libs}`], {
    cwd: pomDir,
    encoding: 'utf8',
  });
  if (mvn.error || mvn.status !== 0) {
    throw new Error(
      `mvn could not resolve Kafka ${cfg.kafkaVersion}: ${mvn.error?.message ?? ''}${mvn.stdout ?? ''}${mvn.stderr ?? ''}`,
    );
  }
  if (!readdirSync(p.libs).some((f) => f.startsWith('kafka_2.13-')))
    throw new Error(`no kafka_2.13 jar in ${p.libs}`);
  writeFileSync(marker, `${new Date().toISOString()}\n`);
  return p.libs;
}

function writeKafkaConfig(cfg: InfraConfig): void {
  const p = paths(cfg);
  mkdirSync(p.logs, { recursive: true });
  mkdirSync(p.data, { recursive: true });
  writeFileSync(
    p.props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${cfg.kafkaControllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${cfg.kafkaPort},CONTROLLER://127.0.0.1:${cfg.kafkaControllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${cfg.kafkaPort}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      `log.dirs=${p.data}`,
      'num.partitions=1',
      'auto.create.topics.enable=false',
      'delete.topic.enable=true',
      'offsets.topic.replication.factor=1',
      // Fewer offsets partitions than the default 50 make the first consumer group start faster.
      'offsets.topic.num.partitions=5',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      'log.retention.check.interval.ms=60000',
      '',
    ].join('\n'),
  );
  writeFileSync(
    p.log4j,
    [
      'log4j.rootLogger=INFO, file',
      'log4j.appender.file=org.apache.log4j.RollingFileAppender',
      `log4j.appender.file.File=${join(p.logs, 'server.log')}`,
      'log4j.appender.file.MaxFileSize=50MB',
      'log4j.appender.file.MaxBackupIndex=2',
      'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
      'log4j.logger.kafka.request.logger=WARN',
      'log4j.logger.state.change.logger=WARN',
      '',
    ].join('\n'),
  );
}

async function kafkaReady(cfg: InfraConfig, timeoutMs: number): Promise<boolean> {
  const kafka = createKafkaClient(
    kafkaConfigSchema.parse({
      brokers: kafkaBrokers(cfg),
      connectionTimeoutMs: 1000,
      requestTimeoutMs: 5000,
    }),
    quiet,
    'infra',
  );
  try {
    await waitForKafka(kafka, timeoutMs);
    return true;
  } catch {
    return false;
  }
}

/** kafkaUp formats storage once, starts the broker if it is not running, and waits for a metadata answer. */
export async function kafkaUp(cfg: InfraConfig, say: (line: string) => void): Promise<void> {
  const p = paths(cfg);
  const running = ownedPid(p.pid, p.props);
  if (running !== undefined) {
    if (await kafkaReady(cfg, cfg.startTimeoutS * 1000)) {
      say(`kafka already running (pid ${running}) on 127.0.0.1:${cfg.kafkaPort}`);
      return;
    }
    throw new Error(`kafka pid ${running} is running but not answering; see ${join(p.logs, 'server.log')}`);
  }
  if (await kafkaReady(cfg, 1500)) {
    throw new Error(
      `port ${cfg.kafkaPort} already has a Kafka broker that infra did not start; stop it or set TAPWIRE_INFRA_KAFKA_PORT`,
    );
  }
  const libs = ensureKafkaLibs(cfg, say);
  writeKafkaConfig(cfg);
  const classpath = `${libs}/*`;
  if (!existsSync(join(p.data, 'meta.properties'))) {
    // A Kafka cluster id is 16 random bytes in URL-safe base64 without padding; it may start with
    // '-', so it goes as --cluster-id=<id>, never as a separate argument an option parser would misread.
    const clusterId = randomBytes(16).toString('base64url');
    const format = spawnSync(
      'java',
      [
        '-cp',
        classpath,
        `-Dlog4j.configuration=file:${p.log4j}`,
        'kafka.tools.StorageTool',
        'format',
        `--cluster-id=${clusterId}`,
        '-c',
        p.props,
        '--ignore-formatted',
      ],
      { encoding: 'utf8' },
    );
    if (format.error || format.status !== 0) {
      throw new Error(
        `kafka storage format failed: ${format.error?.message ?? ''}${format.stdout}${format.stderr}`,
      );
    }
  }
  const pid = startDetached(
    'java',
    [
      `-Xmx${cfg.kafkaHeapMb}m`,
      `-Xms${Math.min(256, cfg.kafkaHeapMb)}m`,
      '-XX:+UseG1GC',
      '-XX:MaxGCPauseMillis=20',
      '-Djava.awt.headless=true',
      `-Dlog4j.configuration=file:${p.log4j}`,
      `-Dkafka.logs.dir=${p.logs}`,
      '-cp',
      classpath,
      'kafka.Kafka',
      p.props,
    ],
    p.out,
    p.pid,
  );
  say(`kafka starting (pid ${pid}), waiting for a metadata answer on 127.0.0.1:${cfg.kafkaPort}`);
  if (!(await kafkaReady(cfg, cfg.startTimeoutS * 1000))) {
    throw new Error(
      `kafka did not answer within ${cfg.startTimeoutS} s; last log lines:\n${tail(join(p.logs, 'server.log'))}\n${tail(p.out)}`,
    );
  }
  say(`kafka ready on 127.0.0.1:${cfg.kafkaPort}`);
}

/** kafkaDown stops the broker that kafkaUp started, and nothing else. */
export async function kafkaDown(cfg: InfraConfig, say: (line: string) => void): Promise<void> {
  const p = paths(cfg);
  const pid = ownedPid(p.pid, p.props);
  if (pid === undefined) {
    say('kafka not running');
    return;
  }
  say(`kafka ${await stopPid(pid, 30_000)} (pid ${pid})`);
}

/** kafkaStatus reports whether the broker runs and answers. */
export async function kafkaStatus(cfg: InfraConfig): Promise<ServerStatus> {
  const p = paths(cfg);
  const pid = ownedPid(p.pid, p.props);
  return {
    name: 'kafka',
    pid,
    address: `127.0.0.1:${cfg.kafkaPort}`,
    ready: pid !== undefined && (await kafkaReady(cfg, 3000)),
    log: join(p.logs, 'server.log'),
  };
}
