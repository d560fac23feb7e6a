#!/usr/bin/env bash
# Builds cachet-client:local from docker/client/Dockerfile.local with the static binary that
# `cachet docker build` produced (target/x86_64-unknown-linux-musl/release/cachet). No pull.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/release/cachet"
[ -x "$bin" ] || { echo "no static binary at $bin: run \`cachet docker build\` first" >&2; exit 1; }
ctx="$(mktemp -d)"; trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/cachet"; cp docker/client/Dockerfile.local "$ctx/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "${1:-cachet-client:local}" "$ctx"
