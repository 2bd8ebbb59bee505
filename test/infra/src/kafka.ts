import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { InfraConfig } from '@tapwire/config';
import { kafkaConfigSchema } from '@tapwire/config';
import { createKafkaClient, waitForKafka } from '@tapwire/kafka';
import { ownedPid, startDetached, stopPid, tail } from './processes.js';

/** ServerStatus is what `infra status` reports for one server. */
export interface ServerStatus {
  name: string;
  /** The running server's version, when it can be told. */
  version?: string;
  pid: number | undefined;
  address: string;
  ready: boolean;
  log: string;
}

const quiet = { error() {}, warn() {}, info() {}, debug() {} };

/**
 * KafkaLogging is how a Kafka line logs: 3.9 through slf4j + reload4j (log4j 1 properties), 4.x
 * through log4j2 (KIP-653), whose Maven artifact ships log4j-core but no slf4j binding.
 */
interface KafkaLogging {
  /** File name of the config in the kafka folder. */
  configFile: string;
  /** JVM option that points the logging backend at that file. */
  jvmOption: (path: string) => string;
  /** The config text, logging to `logFile`. */
  config: (logFile: string) => string;
  /** Whether a jar file name in the libs folder is the slf4j binding this line needs. */
  isBinding: (jar: string) => boolean;
}

const LOG4J1: KafkaLogging = {
  configFile: 'log4j.properties',
  jvmOption: (path) => `-Dlog4j.configuration=file:${path}`,
  config: (logFile) =>
    [
      'log4j.rootLogger=INFO, file',
      'log4j.appender.file=org.apache.log4j.RollingFileAppender',
      `log4j.appender.file.File=${logFile}`,
      'log4j.appender.file.MaxFileSize=50MB',
      'log4j.appender.file.MaxBackupIndex=2',
      'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
      'log4j.logger.kafka.request.logger=WARN',
      'log4j.logger.state.change.logger=WARN',
      '',
    ].join('\n'),
  isBinding: (jar) => jar.startsWith('slf4j-reload4j-'),
};

const LOG4J2: KafkaLogging = {
  configFile: 'log4j2.properties',
  jvmOption: (path) => `-Dlog4j2.configurationFile=${path}`,
  config: (logFile) =>
    [
      'status=warn',
      'appender.file.type=RollingFile',
      'appender.file.name=file',
      `appender.file.fileName=${logFile}`,
      `appender.file.filePattern=${logFile}.%i`,
      'appender.file.layout.type=PatternLayout',
      'appender.file.layout.pattern=[%d] %p %m (%c)%n',
      'appender.file.policies.type=Policies',
      'appender.file.policies.size.type=SizeBasedTriggeringPolicy',
      'appender.file.policies.size.size=50MB',
      'appender.file.strategy.type=DefaultRolloverStrategy',
      'appender.file.strategy.max=2',
      'rootLogger.level=INFO',
      'rootLogger.appenderRef.file.ref=file',
      'logger.request.name=kafka.request.logger',
      'logger.request.level=WARN',
      'logger.state.name=state.change.logger',
      'logger.state.level=WARN',
      '',
    ].join('\n'),
  isBinding: (jar) => jar.startsWith('log4j-slf4j-impl-') || jar.startsWith('log4j-slf4j2-impl-'),
};

function kafkaLogging(version: string): KafkaLogging {
  return version.startsWith('3.') ? LOG4J1 : LOG4J2;
}

function paths(cfg: InfraConfig) {
  const root = resolve(cfg.dir, 'kafka');
  const libs = cfg.kafkaLibsDir || join(homedir(), '.cache', 'tapwire', `kafka-${cfg.kafkaVersion}`);
  return {
    root,
    libs: resolve(libs),
    // One data folder per version: a log dir formatted by 4.x carries a metadata version 3.9
    // cannot read, so switching TAPWIRE_INFRA_KAFKA_VERSION back and forth must not share one.
    data: join(root, `data-${cfg.kafkaVersion}`),
    logs: join(root, 'logs'),
    props: join(root, 'server.properties'),
    logConfig: join(root, kafkaLogging(cfg.kafkaVersion).configFile),
    pid: join(root, 'kafka.pid'),
    out: join(root, 'logs', 'stdout.log'),
  };
}

/** kafkaBrokers returns the bootstrap address of the local broker. */
export function kafkaBrokers(cfg: InfraConfig): string[] {
  return [`127.0.0.1:${cfg.kafkaPort}`];
}

function mvn(args: readonly string[], cwd: string, what: string): void {
  const run = spawnSync('mvn', ['-q', '-B', ...args], { cwd, encoding: 'utf8' });
  if (run.error || run.status !== 0) {
    throw new Error(
      `mvn could not resolve ${what}: ${run.error?.message ?? ''}${run.stdout ?? ''}${run.stderr ?? ''}`,
    );
  }
}

/**
 * ensureKafkaLibs resolves org.apache.kafka:kafka_2.13 and its dependencies from Maven Central
 * into the cache folder once, plus the slf4j binding the release tarball adds; later calls reuse it.
 */
export function ensureKafkaLibs(cfg: InfraConfig, say: (line: string) => void): string {
  const p = paths(cfg);
  const logging = kafkaLogging(cfg.kafkaVersion);
  const marker = join(p.libs, '.complete');
  if (existsSync(marker) && readdirSync(p.libs).some(logging.isBinding)) return p.libs;
  mkdirSync(p.libs, { recursive: true });
  const pomDir = join(p.libs, '..', `kafka-${cfg.kafkaVersion}-pom`);
  mkdirSync(pomDir, { recursive: true });
  // 3.9: slf4j-reload4j is what the release tarball ships for logging; the Maven artifact leaves it out.
  const reload4j =
    logging === LOG4J1
      ? '\n    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>'
      : '';
  writeFileSync(
    join(pomDir, 'pom.xml'),
    `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.tapwire</groupId><artifactId>kafka-libs</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>${cfg.kafkaVersion}</version></dependency>${reload4j}
  </dependencies>
</project>
`,
  );
  say(`resolving Kafka ${cfg.kafkaVersion} jars from Maven Central into ${p.libs}`);
  mvn(['dependency:copy-dependencies', `-DoutputDirectory=${p.libs}`], pomDir, `Kafka ${cfg.kafkaVersion}`);
  const jars = readdirSync(p.libs);
  if (!jars.some((f) => f.startsWith('kafka_2.13-'))) throw new Error(`no kafka_2.13 jar in ${p.libs}`);
  if (logging === LOG4J2 && !jars.some(logging.isBinding)) {
    // 4.x: the broker logs through slf4j and ships log4j-core, but the slf4j → log4j2 binding is
    // added only to the release tarball. Take the one of the same log4j release and slf4j major, alone.
    const versionOf = (name: string) =>
      jars.map((f) => new RegExp(`^${name}-(\\d.*)\\.jar$`).exec(f)?.[1]).find((v) => v !== undefined);
    const log4j = versionOf('log4j-api');
    const slf4j = versionOf('slf4j-api');
    if (log4j === undefined || slf4j === undefined)
      throw new Error(`no log4j-api or slf4j-api jar in ${p.libs}`);
    const binding = slf4j.startsWith('1.') ? 'log4j-slf4j-impl' : 'log4j-slf4j2-impl';
    mvn(
      [
        'dependency:copy',
        `-Dartifact=org.apache.logging.log4j:${binding}:${log4j}`,
        `-DoutputDirectory=${p.libs}`,
      ],
      pomDir,
      `${binding} ${log4j}`,
    );
  }
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
  writeFileSync(p.logConfig, kafkaLogging(cfg.kafkaVersion).config(join(p.logs, 'server.log')));
}

/** runningKafkaVersion reads the version of a running broker from the kafka_2.13 jar on its classpath. */
function runningKafkaVersion(pid: number): string | undefined {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const classpath = args[args.indexOf('-cp') + 1] ?? '';
    const jar = readdirSync(classpath.replace(/\/\*$/, '')).find((f) => /^kafka_2\.13-[\d.]+\.jar$/.test(f));
    return jar?.slice('kafka_2.13-'.length, -'.jar'.length);
  } catch {
    return undefined;
  }
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
      const version = runningKafkaVersion(running) ?? 'of unknown version';
      say(`kafka ${version} already running (pid ${running}) on 127.0.0.1:${cfg.kafkaPort}`);
      if (version !== cfg.kafkaVersion)
        say(
          `warning: the configured Kafka is ${cfg.kafkaVersion}; run \`tapwire infra down\` and \`up\` again to switch`,
        );
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
  const logging = kafkaLogging(cfg.kafkaVersion);
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
        logging.jvmOption(p.logConfig),
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
      logging.jvmOption(p.logConfig),
      `-Dkafka.logs.dir=${p.logs}`,
      '-cp',
      classpath,
      'kafka.Kafka',
      p.props,
    ],
    p.out,
    p.pid,
  );
  say(
    `kafka ${cfg.kafkaVersion} starting (pid ${pid}), waiting for a metadata answer on 127.0.0.1:${cfg.kafkaPort}`,
  );
  if (!(await kafkaReady(cfg, cfg.startTimeoutS * 1000))) {
    throw new Error(
      `kafka did not answer within ${cfg.startTimeoutS} s; last log lines:\n${tail(join(p.logs, 'server.log'))}\n${tail(p.out)}`,
    );
  }
  say(`kafka ${cfg.kafkaVersion} ready on 127.0.0.1:${cfg.kafkaPort}`);
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
  const version = pid === undefined ? undefined : runningKafkaVersion(pid);
  return {
    name: 'kafka',
    ...(version === undefined ? {} : { version }),
    pid,
    address: `127.0.0.1:${cfg.kafkaPort}`,
    ready: pid !== undefined && (await kafkaReady(cfg, 3000)),
    log: join(p.logs, 'server.log'),
  };
}
