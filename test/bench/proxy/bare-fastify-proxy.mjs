// Contender (b): a bare @fastify/http-proxy with no telemetry at all.
import proxy from '@fastify/http-proxy';
import Fastify from 'fastify';

const app = Fastify({ logger: false });
await app.register(proxy, { upstream: process.env.UPSTREAM, http: {} });
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
process.send?.('ready');
