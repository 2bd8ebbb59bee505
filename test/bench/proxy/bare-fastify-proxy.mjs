// Contender (b): a bare @fastify/http-proxy with no telemetry at all, in its default configuration
// (undici to the upstream), as a user who adds it to a fastify app would run it.
import proxy from '@fastify/http-proxy';
import Fastify from 'fastify';

const app = Fastify({ logger: false });
await app.register(proxy, { upstream: process.env.UPSTREAM });
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
process.send?.('ready');
