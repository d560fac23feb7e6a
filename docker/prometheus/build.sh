#!/usr/bin/env bash
# Builds the Prometheus image of the compose `metrics` profile without a registry, from the
# host's Debian `prometheus` package (`apt-get install prometheus`) and the debootstrapped base
# image (scripts/setup.d/40-docker.sh):
#   docker/prometheus/build.sh [TAG]           # default TAG: cachet-prometheus:local
#   PROMETHEUS_IMAGE=TAG docker compose --profile metrics up -d
# Does nothing when TAG was built from the same binary, files and base (label cachet.inputs).
# PROMETHEUS_BIN overrides the binary, CACHET_TEST_CLIENT_BASE the base image.
set -euo pipefail
cd "$(dirname "$0")/../.."
tag="${1:-cachet-prometheus:local}"
base="${CACHET_TEST_CLIENT_BASE:-cachet-ci/debian-client:bookworm}"
prom="${PROMETHEUS_BIN:-$(command -v prometheus || true)}"
[ -n "$prom" ] && [ -x "$prom" ] \
  || { echo "no prometheus binary: run \`apt-get install prometheus\` (or set PROMETHEUS_BIN)" >&2; exit 1; }
promtool="$(dirname "$prom")/promtool"
docker image inspect "$base" >/dev/null 2>&1 \
  || { echo "base image $base is missing: run scripts/setup.sh (scripts/setup.d/40-docker.sh makes it)" >&2; exit 1; }
web=/usr/share/prometheus/web
inputs="$( {
  sha256sum "$prom" docker/prometheus/Dockerfile.local docker/prometheus/prometheus.yml | cut -d' ' -f1
  [ -x "$promtool" ] && sha256sum "$promtool" | cut -d' ' -f1
  docker image inspect -f '{{.Id}}' "$base"
} | sha256sum | cut -c1-16)"
if [ "$(docker image inspect -f '{{index .Config.Labels "cachet.inputs"}}' "$tag" 2>/dev/null)" = "$inputs" ]; then
  echo "$tag is up to date"
  exit 0
fi
ctx="$(mktemp -d)"; trap 'rm -rf "$ctx"' EXIT
cp "$prom" "$ctx/prometheus"
if [ -x "$promtool" ]; then cp "$promtool" "$ctx/promtool"; else printf '#!/bin/sh\necho promtool is not installed >&2; exit 1\n' >"$ctx/promtool"; chmod +x "$ctx/promtool"; fi
mkdir -p "$ctx/web" "$ctx/data"
[ -d "$web" ] && cp -r "$web/." "$ctx/web/"
cp docker/prometheus/prometheus.yml "$ctx/prometheus.yml"
cp docker/prometheus/Dockerfile.local "$ctx/Dockerfile"
echo "building $tag from $prom on $base"
DOCKER_BUILDKIT=0 docker build -q --build-arg BASE="$base" --label cachet.inputs="$inputs" \
  -t "$tag" "$ctx" >/dev/null
echo "built $tag"
