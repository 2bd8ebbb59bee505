import type { UpstreamConfig } from '@tapwire/proxy/config';
import { DEMO_UPSTREAM } from './start-upstreams.js';

/** BannerFacts is what `tapwire start` tells its user once everything listens. */
export interface BannerFacts {
  /** Where events go and are stored, e.g. "the embedded log and DuckDB". */
  readonly deployment: string;
  readonly proxyUrl: string;
  readonly upstreams: readonly UpstreamConfig[];
  /** Demo traffic, when the demo runs: requests per second sent through the proxy. */
  readonly demoRate?: number;
  readonly apiUrl: string;
  /** The OTLP receiver: gRPC host:port, the OTLP/HTTP traces URL, and the token it takes when it is this data directory's. */
  readonly otlp?: { readonly grpc: string; readonly http: string; readonly token?: string };
  /** What the demo's SLO does, when the demo's alerting file is loaded. */
  readonly slo?: string;
  /** The local token and the file keeping it; undefined when the configured api.tokens are the only ones. */
  readonly token?: { readonly value: string; readonly file: string };
  /** `demo token` when the demo runs (what tests and CI read), else `token`. */
  readonly tokenLabel: 'token' | 'demo token';
  /** Where data lives, one entry per part. */
  readonly data: readonly string[];
  /** Start of the window the printed curl asks about: when traffic could first arrive. */
  readonly since: Date;
  /** ANSI emphasis, for a terminal. */
  readonly color: boolean;
}

function matchOf(u: UpstreamConfig): string {
  const where = [
    u.match.host ? `Host ${u.match.host}` : undefined,
    u.match.pathPrefix !== '/' ? `paths ${u.match.pathPrefix}` : undefined,
  ].filter((x) => x !== undefined);
  return where.length === 0 ? 'every request' : where.join(', ');
}

/** windowStart is the printed curl's `from`: RFC 3339 to the second, rounded down. */
export function windowStart(since: Date): string {
  return `${new Date(Math.floor(since.getTime() / 1000) * 1000).toISOString().slice(0, 19)}Z`;
}

/**
 * renderBanner is the short block `tapwire start` prints on stdout: the proxy and its upstreams,
 * the API and its docs, the OTLP receiver and the header its exporters send, the token, where data lives and one curl whose window starts now (raw
 * rows, so rate_rps is the rate since then, not over a longer window). Every line is
 * `label: value`, so tests and scripts can read it off a terminal too.
 */
export function renderBanner(f: BannerFacts): string {
  const bold = (s: string) => (f.color ? `\u001b[1m${s}\u001b[22m` : s);
  const dim = (s: string) => (f.color ? `\u001b[2m${s}\u001b[22m` : s);
  const width = 'demo token: '.length;
  const line = (label: string, value: string) => `  ${bold(`${label}:`.padEnd(width))}${value}`;
  const indent = ' '.repeat(width + 2);
  const upstreams = f.upstreams.map((u) => {
    const demo =
      u.name === DEMO_UPSTREAM && f.demoRate !== undefined
        ? `, ${f.demoRate} requests/s of demo traffic`
        : '';
    return `${indent}${u.name} → ${u.url} ${dim(`(${matchOf(u)}${demo})`)}`;
  });
  const auth = f.token
    ? `'Authorization: Bearer ${f.token.value}'`
    : `"Authorization: Bearer $TAPWIRE_TOKEN"`;
  const query = `from=${windowStart(f.since)}&group_by=route&source=raw`;
  return `${[
    bold(`tapwire running on ${f.deployment} (Ctrl-C or SIGTERM stops it)`),
    line('proxy', f.proxyUrl),
    ...(upstreams.length > 0
      ? upstreams
      : [`${indent}${dim('no upstream: give --upstream http://host:port')}`]),
    line('api', `${f.apiUrl} ${dim(`(docs ${f.apiUrl}/docs)`)}`),
    ...(f.otlp
      ? [
          line(
            'otlp',
            `grpc ${f.otlp.grpc} · http ${f.otlp.http} ${dim(
              f.otlp.token
                ? `(send 'Authorization: Bearer ${f.otlp.token}'; spans go to tenant default)`
                : '(send "Authorization: Bearer <token>" with one of otlp.tokens)',
            )}`,
          ),
        ]
      : []),
    line(
      f.tokenLabel,
      f.token
        ? `${f.token.value} ${dim(`(kept in ${f.token.file})`)}`
        : 'one of api.tokens in your configuration',
    ),
    line('data', f.data.join(', ')),
    line('try', `curl -H ${auth} '${f.apiUrl}/v1/overview?${query}'`),
    ...(f.slo !== undefined ? [line('slo', f.slo)] : []),
  ].join('\n')}\n`;
}
