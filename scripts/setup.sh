#!/usr/bin/env bash
# Installs what the test suite and the benchmarks need on a fresh machine (Debian packages,
# peer binaries such as sccache, the pinned workloads' crates). Idempotent: slow artifacts are
# cached outside the repository in $CACHET_CI_CACHE (default ~/.cache/cachet-ci), so a second
# run takes seconds. Each part lives in scripts/setup.d/ and is sourced in name order.
set -euo pipefail
cd "$(dirname "$0")/.."
export CACHET_CI_CACHE="${CACHET_CI_CACHE:-$HOME/.cache/cachet-ci}"
mkdir -p "$CACHET_CI_CACHE"

# apt_install PKG...: installs the Debian packages that are missing (one `apt-get update` at most).
apt_updated=""
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ -z "$apt_updated" ]; then $sudo apt-get update -qq; apt_updated=1; fi
  echo "setup: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

for part in scripts/setup.d/*.sh; do
  # shellcheck source=/dev/null
  source "$part"
done
echo "setup: done (cache: $CACHET_CI_CACHE)"
