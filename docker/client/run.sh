#!/usr/bin/env bash
# Runs a command in a client container on NETWORK with the host's Rust toolchain and crates
# mounted read-only, the current directory at /build/project:
#   docker/client/run.sh NETWORK cargo build --locked --offline
set -euo pipefail
net="$1"; shift
exec docker run --rm --network "$net" \
  -v "$HOME/.rustup:/root/.rustup:ro" -v "$HOME/.cargo/bin:/root/.cargo/bin:ro" \
  -v "$HOME/.cargo/registry:/root/.cargo/registry:ro" \
  -v "$PWD:/build/project" -w /build/project \
  "${CACHET_CLIENT_IMAGE:-cachet-client:local}" "$@"
