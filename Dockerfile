# chatd: one Node.js process, one SQLite database.
#
#   docker build -t chatd .
#   docker run -d --name chatd -p 8080:8080 -v chatd-data:/data chatd
#   docker exec -it chatd chatd user add alice
#
# Configuration: CHATD_<SECTION>_<KEY> environment variables (see config.example.toml),
# or a file mounted into the container and named by CHATD_CONFIG.
# Several nodes on PostgreSQL and Redis (CHATD_STORAGE_URL, CHATD_BUS_URL): examples/compose/.
#
# Node 24 (LTS) on Debian 13: uWebSockets.js's only registry build for Node 22/24 needs glibc 2.38,
# which Debian 12 lacks (docs/node-versions.md). `--build-arg NODE_MAJOR=22` (or 20) builds on that Node.
ARG NODE_MAJOR=24

# ---- build: compile TypeScript and native addons, then keep production dependencies only ----
FROM node:${NODE_MAJOR}-trixie AS build
WORKDIR /app

# Dependencies first, so this layer (mostly compiling better-sqlite3) is cached while only src/ changes.
# --ignore-scripts skips every install script (and the root's `prepare`, which needs src/);
# the two native addons the server needs are then built explicitly.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3 argon2

COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
# The web client (docs/web.md), bundled into dist/web by the same build.
COPY web/ web/
COPY scripts/build-web.ts scripts/
COPY licenses/ licenses/
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# The two uWebSockets.js packages ship binaries for every platform and Node ABI (about 230 MB).
# Ask chatd's own loader (src/transport/uws/load.ts) which one this Node loads, keep that file and
# delete the rest; the build fails, saying why, if none loads (the image never runs without uWS).
# @btc-vision/uwebsockets.js has no licence files of its own: put the project's beside it (licenses/).
# better-sqlite3 loads only build/Release/better_sqlite3.node: drop the SQLite sources and objects.
RUN keep=$(node --input-type=module -e "const r = (await import('/app/dist/transport/uws/load.js')).loadNativeUws(); if (!r.ok) { console.error(r.reason); process.exit(1); } console.log(r.file)") \
 && echo "uWebSockets.js addon for Node $(node --version): $keep" \
 && uws="/app/node_modules/uWebSockets.js $(ls -d /app/node_modules/@btc-vision/uwebsockets.js 2>/dev/null || true)" \
 && find $uws -name '*.node' ! -path "$keep" -delete \
 && test "$(find $uws -name '*.node' | wc -l)" = 1 \
 && if [ -d node_modules/@btc-vision/uwebsockets.js ]; then cp licenses/uWebSockets.js/LICENSE licenses/uWebSockets.js/NOTICE node_modules/@btc-vision/uwebsockets.js/; fi \
 && cd node_modules/better-sqlite3 \
 && find build -mindepth 1 ! -path build/Release ! -path build/Release/better_sqlite3.node -prune -exec rm -rf {} + \
 && rm -rf deps src \
 && cd /app && node -e "require('better-sqlite3')(':memory:').close(); require('argon2')"

# ---- run ----
FROM node:${NODE_MAJOR}-trixie-slim

# NODE_OPTIONS: 64 MB semi-spaces for V8's young generation. Under load far less of the
# server's time goes to garbage collection, for about 85 MB more memory (docs/performance.md);
# `docker run -e NODE_OPTIONS= …` returns to V8's default. bench/lib/server.ts runs its
# servers with the same flag.
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=64 \
    CHATD_STORAGE_DIR=/data

WORKDIR /app
# The application stays owned by root (read-only for the server); only /data is writable.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules/ node_modules/
COPY --from=build /app/dist/ dist/
COPY bin/ bin/
COPY migrations/ migrations/
COPY config.example.toml ./
COPY licenses/ licenses/

# The official node images have the user node (uid 1000); create it if this base lacks it.
RUN (id node >/dev/null 2>&1 || useradd --uid 1000 --user-group --create-home --shell /bin/bash node) \
 && chmod 0755 /app/bin/chatd \
 && ln -s /app/bin/chatd /usr/local/bin/chatd \
 && mkdir -p /data \
 && chown node:node /data

USER node
VOLUME /data
EXPOSE 8080

# `chatd health` finds the server as it runs (its port, address and scheme in /data/chatd.lock.json), so a
# port, host or [tls] set in a mounted config file keeps the check right; a server given another --data needs its own.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "/app/bin/chatd", "health", "--timeout", "4000"]

ENTRYPOINT ["node", "/app/bin/chatd"]
CMD ["serve"]
