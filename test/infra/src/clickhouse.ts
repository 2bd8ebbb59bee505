import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { InfraConfig } from '@tapwire/config';
import type { ServerStatus } from './kafka.js';
import { ownedPid, startDetached, stopPid, tail } from './processes.js';

function paths(cfg: InfraConfig) {
  const root = resolve(cfg.dir, 'clickhouse');
  return {
    root,
    data: join(root, 'data'),
    tmp: join(root, 'tmp'),
    logs: join(root, 'logs'),
    config: join(root, 'config.xml'),
    users: join(root, 'users.xml'),
    pid: join(root, 'clickhouse.pid'),
    out: join(root, 'logs', 'stdout.log'),
  };
}

/** clickhouseUrl returns the HTTP URL of the local ClickHouse. */
export function clickhouseUrl(cfg: InfraConfig): string {
  return `http://127.0.0.1:${cfg.clickhouseHttpPort}`;
}

/** CLICKHOUSE_READONLY_USER can read and set per-query limits but never write (profile readonly=2). */
export const CLICKHOUSE_READONLY_USER = 'tapwire_ro';

function writeClickHouseConfig(cfg: InfraConfig): void {
  const p = paths(cfg);
  for (const d of [p.data, p.tmp, p.logs, join(p.root, 'user_files'), join(p.root, 'format_schemas')]) {
    mkdirSync(d, { recursive: true });
  }
  // Root element <yandex>: 18.16 requires it; modern servers still accept it.
  writeFileSync(
    p.config,
    `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>${join(p.logs, 'server.log')}</log>
    <errorlog>${join(p.logs, 'server.err.log')}</errorlog>
    <size>100M</size>
    <count>2</count>
  </logger>
  <http_port>${cfg.clickhouseHttpPort}</http_port>
  <tcp_port>${cfg.clickhouseTcpPort}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>${p.data}/</path>
  <tmp_path>${p.tmp}/</tmp_path>
  <user_files_path>${join(p.root, 'user_files')}/</user_files_path>
  <format_schema_path>${join(p.root, 'format_schemas')}/</format_schema_path>
  <users_config>${p.users}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>536870912</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <keep_alive_timeout>10</keep_alive_timeout>
</yandex>
`,
  );
  writeFileSync(
    p.users,
    `<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <load_balancing>random</load_balancing>
    </default>
    <readonly>
      <readonly>2</readonly>
    </readonly>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
    <${CLICKHOUSE_READONLY_USER}>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>readonly</profile>
      <quota>default</quota>
    </${CLICKHOUSE_READONLY_USER}>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
`,
  );
}

async function ping(cfg: InfraConfig): Promise<boolean> {
  try {
    const res = await fetch(`${clickhouseUrl(cfg)}/ping`, { signal: AbortSignal.timeout(2000) });
    return res.ok && (await res.text()).startsWith('Ok.');
  } catch {
    return false;
  }
}

async function waitForPing(cfg: InfraConfig, timeoutMs: number, pid: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await ping(cfg)) return true;
    if (ownedPid(paths(cfg).pid, paths(cfg).config) !== pid) return false;
    await new Promise((r) => setTimeout(r, 300));
  }
  return false;
}

/** clickhouseUp writes a private config, starts clickhouse-server if needed and waits for /ping. */
export async function clickhouseUp(cfg: InfraConfig, say: (line: string) => void): Promise<void> {
  const p = paths(cfg);
  const running = ownedPid(p.pid, p.config);
  if (running !== undefined) {
    if (await waitForPing(cfg, cfg.startTimeoutS * 1000, running)) {
      say(`clickhouse already running (pid ${running}) on ${clickhouseUrl(cfg)}`);
      return;
    }
    throw new Error(
      `clickhouse pid ${running} is running but not answering /ping; see ${join(p.logs, 'server.err.log')}`,
    );
  }
  if (await ping(cfg)) {
    throw new Error(
      `port ${cfg.clickhouseHttpPort} already has a ClickHouse that infra did not start; stop it or set TAPWIRE_INFRA_CLICKHOUSE_HTTP_PORT`,
    );
  }
  const probe = spawnSync(cfg.clickhouseServerBin, ['--help'], { encoding: 'utf8' });
  if (probe.error) {
    throw new Error(
      `${cfg.clickhouseServerBin} not found (${probe.error.message}); install it: apt-get install -y clickhouse-server clickhouse-client`,
    );
  }
  writeClickHouseConfig(cfg);
  const pid = startDetached(cfg.clickhouseServerBin, [`--config-file=${p.config}`], p.out, p.pid);
  say(`clickhouse starting (pid ${pid}), waiting for ${clickhouseUrl(cfg)}/ping`);
  if (!(await waitForPing(cfg, cfg.startTimeoutS * 1000, pid))) {
    throw new Error(
      `clickhouse did not answer /ping within ${cfg.startTimeoutS} s; last log lines:\n${tail(join(p.logs, 'server.err.log'))}\n${tail(p.out)}`,
    );
  }
  say(`clickhouse ready on ${clickhouseUrl(cfg)}`);
}

/** clickhouseDown stops the server that clickhouseUp started, and nothing else. */
export async function clickhouseDown(cfg: InfraConfig, say: (line: string) => void): Promise<void> {
  const p = paths(cfg);
  const pid = ownedPid(p.pid, p.config);
  if (pid === undefined) {
    say('clickhouse not running');
    return;
  }
  say(`clickhouse ${await stopPid(pid, 30_000)} (pid ${pid})`);
}

/** clickhouseStatus reports whether the server runs and answers /ping. */
export async function clickhouseStatus(cfg: InfraConfig): Promise<ServerStatus> {
  const p = paths(cfg);
  const pid = ownedPid(p.pid, p.config);
  return {
    name: 'clickhouse',
    pid,
    address: clickhouseUrl(cfg),
    ready: pid !== undefined && (await ping(cfg)),
    log: join(p.logs, 'server.err.log'),
  };
}
