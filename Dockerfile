# Coffer's container image: docker build -t coffer . && docker compose up -d
# The images are build arguments so the same file builds on the official images
# anywhere and on bases assembled from Debian packages here (scripts/test-image.sh).
# The runtime stage is plain Debian slim plus the build stage's node binary: no
# npm, no compilers, no headers, and only the files Coffer runs (about 95 MB).
ARG NODE_IMAGE=node:22-bookworm-slim
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${NODE_IMAGE} AS build
# better-sqlite3 compiles from source on install.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# node-gyp compiles against the headers the Node image ships in /usr/local/include/node (no download).
ENV NEXT_TELEMETRY_DISABLED=1 npm_config_nodedir=/usr/local
# Behind a TLS-inspecting proxy, pass its CA bundle for the build (a mounted file; this stage is not shipped).
ARG NODE_EXTRA_CA_CERTS
ARG npm_config_cafile
# Dependencies first, so a source change does not recompile better-sqlite3.
COPY package.json package-lock.json ./
COPY scripts/native-addon.mjs scripts/
# On a Node 24 base, native-addon.mjs recompiles better-sqlite3 against 24.18.1's headers (see there).
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3 \
 && node scripts/native-addon.mjs
COPY . .
# The CLI and server entry (tsc), the production build, then a copy of only what runs
# (the files Next's build traces for its server and routes, and what our entries load).
RUN npx tsc -p tsconfig.cli.json \
 && npx next build \
 && node scripts/runtime-tree.mjs /runtime

FROM ${RUNTIME_IMAGE}
ENV NODE_ENV=production \
    NEXT_TELEMETRY_DISABLED=1 \
    COFFER_DATA_DIR=/data \
    PORT=3000 \
    HOST=0.0.0.0 \
    NODE_OPTIONS="--expose-gc --max-semi-space-size=4" \
    MALLOC_ARENA_MAX=2 \
    UV_THREADPOOL_SIZE=8
WORKDIR /app
# The node user (uid 1000, as in the official Node images) and the build's own Node.
RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/sh --create-home node
COPY --from=build /usr/local/bin/node /usr/local/bin/node
# Root owns the application; the server runs as node and can write /data only.
COPY --from=build /runtime/ ./
RUN ln -s /app/bin/coffer.cjs /usr/local/bin/coffer \
 && mkdir -p /data && chown node:node /data && chmod 700 /data
USER node
VOLUME /data
EXPOSE 3000
# Slim images have no curl: Node's own fetch. 503 (failing) is unhealthy; degraded is not.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:3000/api/health').then((r) => process.exit(r.status < 500 ? 0 : 1), () => process.exit(1))"]
# The server directly (not npm start, which may decide to rebuild).
CMD ["node", "bin/coffer-server.cjs"]
