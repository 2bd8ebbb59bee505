# One image for every Tapwire service: `docker run tapwire <command>` (proxy, otlp, ingest, api,
# alerter, start, migrate, topics, demo). Multi-stage: build with dev dependencies, ship only
# production dependencies and compiled JavaScript, run as the unprivileged `node` user.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json tsconfig.build.json ./
COPY packages ./packages
COPY services ./services
COPY test/infra ./test/infra
RUN npm ci --ignore-scripts && npm run build

FROM node:20-bookworm-slim AS runtime-deps
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/packages ./packages
COPY --from=build /app/services ./services
COPY --from=build /app/test/infra ./test/infra
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=runtime-deps --chown=node:node /app ./
COPY --chown=node:node migrations ./migrations
COPY --chown=node:node examples ./examples
# The proxy's and the OTLP receiver's local logs (every event is written there first): mount a
# volume on each so a restarted container ships what the last one left.
RUN mkdir -p /var/lib/tapwire/proxy-log /var/lib/tapwire/otlp-log && chown -R node:node /var/lib/tapwire
ENV TAPWIRE_PROXY_EMIT_LOG_DIR=/var/lib/tapwire/proxy-log
ENV TAPWIRE_OTLP_EMIT_LOG_DIR=/var/lib/tapwire/otlp-log
USER node
EXPOSE 8080 8081 4317 4318 9464 9465 9466 9467 9468
# Each service's admin port answers /healthz; compose sets the port per service.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HEALTH_PORT || '9464') + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "services/cli/dist/main.js"]
CMD ["--help"]
