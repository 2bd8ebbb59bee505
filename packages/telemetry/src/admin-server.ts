import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { listenAt } from './listen.js';

/** Readiness is what /readyz reports: 200 when ready, 503 otherwise, with details either way. */
export interface Readiness {
  ready: boolean;
  [detail: string]: unknown;
}

/** AdminServer serves /healthz, /readyz and /metrics for one process. */
export interface AdminServer {
  readonly app: FastifyInstance;
  listen(): Promise<string>;
  close(): Promise<void>;
}

/**
 * createAdminServer builds the admin endpoints every Tapwire service has: /healthz (the process
 * answers), /readyz (it can do its job: 503 with the reason otherwise) and /metrics (Prometheus text).
 * A port that cannot be bound is a ListenError naming `section`'s settings.
 */
export function createAdminServer(options: {
  /** Dotted config path of the host and port settings, e.g. ingest.admin. */
  section: string;
  host: string;
  port: number;
  registry: Registry;
  readiness: () => Readiness | Promise<Readiness>;
}): AdminServer {
  const app = Fastify({ logger: false });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const r = await options.readiness();
    return reply.code(r.ready ? 200 : 503).send({ ...r, status: r.ready ? 'ready' : 'not ready' });
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', options.registry.contentType);
    return options.registry.metrics();
  });
  return {
    app,
    listen: () => listenAt(options, () => app.listen({ host: options.host, port: options.port })),
    close: () => app.close(),
  };
}
