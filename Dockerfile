# One image for every role: ROLE=gateway | worker | all selects what a container runs.

# Build: dev dependencies compile the server (tsc) and bundle the dashboard (esbuild),
# then are pruned so only production dependencies are copied on.
#
# Gateway engines: the image carries GATEWAY_ENGINE=fastify (the default) only. The
# optional uWebSockets.js package (GATEWAY_ENGINE=uws) ships native binaries for Node 16,
# 18 and 20, none for this image's Node 24, so it is pruned too; a container started with
# GATEWAY_ENGINE=uws stops at start saying the package is not installed.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY shared shared
COPY services services
COPY scripts scripts
COPY web web
RUN npm run build && npm prune --omit=dev --omit=optional --no-audit --no-fund

FROM node:24-slim
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    DATA_DIR=/data \
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=build /app/web/dist web/dist
# The embedded mode's journal and dynalite files; unused in cluster mode.
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 3000
# The slim image has no curl: Node's fetch probes liveness (workers answer /healthz too).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["node", "dist/services/main.js"]
