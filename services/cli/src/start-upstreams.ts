import { type UpstreamConfig, upstreamSchema } from '@tapwire/proxy/config';
import { DEMO_ROUTES } from './demo.js';
import { CommandFailure } from './io.js';

/** DEMO_UPSTREAM is the demo shop's upstream name (and service name) beside the others. */
export const DEMO_UPSTREAM = 'demo-shop';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** One `--upstream [name=]url` as given: a URL, `host:port` or a bare port (on localhost). */
function parseFlag(text: string): { name: string; url: string } {
  const named = /^([A-Za-z0-9][A-Za-z0-9_.-]*)=(.+)$/.exec(text);
  const raw = (named ? named[2] : text)?.trim() ?? '';
  const withScheme = /^\d+$/.test(raw)
    ? `http://localhost:${raw}`
    : raw.includes('://')
      ? raw
      : `http://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new CommandFailure(
      `--upstream ${text}: not a URL; give http://host:port, host:port, a port, or name=http://host:port`,
      2,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new CommandFailure(`--upstream ${text}: the URL must be http or https`, 2);
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const name =
    named?.[1] ?? `${url.hostname.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^-+|-+$/g, '')}-${port}`;
  if (!NAME.test(name))
    throw new CommandFailure(
      `--upstream ${text}: name it (name=${withScheme}); "${name}" is not a valid name`,
      2,
    );
  return { name, url: url.pathname === '/' && !url.search ? url.origin : url.href };
}

/**
 * upstreamsForStart is what `tapwire start` proxies: the configured upstreams unchanged, then one
 * per `--upstream` flag, then the demo shop. Each upstream from the command line answers requests
 * whose Host is `<name>.localhost`; the first of them (a flag, else the demo) also takes every
 * request no configured upstream takes (any host, path /), unless a configured one already does.
 * A name used twice is refused (exit 2), before anything is started.
 */
export function upstreamsForStart(
  configured: readonly UpstreamConfig[],
  flags: readonly string[],
  demo?: { url: string },
): UpstreamConfig[] {
  const added: { name: string; url: string; service?: string; routes?: readonly string[] }[] =
    flags.map(parseFlag);
  if (demo) added.push({ name: DEMO_UPSTREAM, url: demo.url, service: DEMO_UPSTREAM, routes: DEMO_ROUTES });
  const seen = new Set(configured.map((u) => u.name));
  for (const u of added) {
    if (seen.has(u.name))
      throw new CommandFailure(
        u.name === DEMO_UPSTREAM && demo
          ? `an upstream is already named ${DEMO_UPSTREAM}: the demo needs that name; rename that upstream or start without --demo`
          : `upstream name ${u.name} is used twice; name the --upstream (name=http://host:port)`,
        2,
      );
    seen.add(u.name);
  }
  const catchAllTaken = configured.some((u) => u.match.host === undefined && u.match.pathPrefix === '/');
  return [
    ...configured,
    ...added.map((u, i) =>
      upstreamSchema.parse({
        name: u.name,
        url: u.url,
        ...(u.service ? { service: u.service } : {}),
        ...(u.routes ? { routes: [...u.routes] } : {}),
        match: i === 0 && !catchAllTaken ? {} : { host: `${u.name}.localhost` },
      }),
    ),
  ];
}
