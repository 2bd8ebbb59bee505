import { buildProxy, proxyConfigSchema, type TapwireProxy } from '@tapwire/proxy';
import { createLogger, type Logger } from '@tapwire/telemetry';
import { createMemorySink, type MemorySink } from '../../../test/support/memory-sink.js';

/** ProxyUnderTest is a started proxy with an in-memory sink. */
export interface ProxyUnderTest {
  proxy: TapwireProxy;
  sink: MemorySink;
  url: string;
  adminUrl: string;
}

/**
 * startProxy builds and starts a proxy on free loopback ports from a partial proxy config; `deps`
 * may replace its (silent) logger and its clock.
 */
export async function startProxy(
  config: Record<string, unknown>,
  deps: { logger?: Logger; now?: () => number } = {},
): Promise<ProxyUnderTest> {
  const sink = createMemorySink();
  const parsed = proxyConfigSchema.parse({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    shutdownGraceMs: 2000,
    ...config,
  });
  const proxy = buildProxy(
    {
      sink,
      logger: deps.logger ?? createLogger({ name: 'test', level: 'silent' }),
      ...(deps.now ? { now: deps.now } : {}),
    },
    parsed,
  );
  const { proxyUrl, adminUrl } = await proxy.start();
  return { proxy, sink, url: proxyUrl, adminUrl };
}
