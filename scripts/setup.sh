#!/usr/bin/env bash
# Installs what the test suite and the benchmarks need on a fresh machine (Debian or Ubuntu
# packages, peer binaries such as sccache, the pinned workloads' crates). Idempotent: slow
# artifacts are cached outside the repository in $CACHET_CI_CACHE (default ~/.cache/cachet-ci),
# so a second run takes seconds. Each part lives in scripts/setup.d/ and is sourced in name order.
#
# Run it (`scripts/setup.sh`, `bash /path/to/scripts/setup.sh`, `bash -c ...`) from any
# directory, or source it (`source scripts/setup.sh`, as scripts/test.sh does) to keep the
# CACHET_TEST_* variables it exports. The parts run from the repository's root, found from this
# file's own path (BASH_SOURCE, not $0, which names the caller when sourced); a sourcing
# shell gets its working directory back at the end.
set -euo pipefail
cachet_setup_caller_dir="$PWD"
cachet_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$cachet_root"
export CACHET_CI_CACHE="${CACHET_CI_CACHE:-$HOME/.cache/cachet-ci}"
mkdir -p "$CACHET_CI_CACHE"

# apt_install PKG...: installs the packages that are missing (one `apt-get update` at most).
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

# apt_mirror: the archive this machine installs its own release from (e.g.
# http://deb.debian.org/debian or http://archive.ubuntu.com/ubuntu), as apt itself reads the
# configured sources (one-line .list and deb822 .sources alike): the site of the `main`
# component of the suite named like the release (not -updates or -security). Falls back to the
# distribution's default archive.
apt_mirror() {
  local codename id site
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  id="$(. /etc/os-release && echo "${ID:-debian}")"
  site="$(apt-get indextargets --no-release-info --format '$(SITE) $(RELEASE) $(COMPONENT)' 2>/dev/null \
    | awk -v suite="$codename" '$2 == suite && $3 == "main" { print $1; exit }')"
  if [ -z "$site" ]; then
    case "$id" in
      ubuntu) site="http://archive.ubuntu.com/ubuntu" ;;
      *) site="http://deb.debian.org/debian" ;;
    esac
  fi
  echo "${site%/}"
}

# One set-up at a time per cache: parallel runs (two worktrees, two test shells) would install
# into the same virtualenv or cargo root at once and break each other. A second run waits.
exec {cachet_setup_lock}>"$CACHET_CI_CACHE/.setup.lock"
if ! flock -n "$cachet_setup_lock"; then
  echo "setup: waiting for another set-up run to finish (lock: $CACHET_CI_CACHE/.setup.lock)"
  flock "$cachet_setup_lock"
fi
for part in scripts/setup.d/*.sh; do
  # shellcheck source=/dev/null
  source "$part"
done
flock -u "$cachet_setup_lock"
exec {cachet_setup_lock}>&-
cd "$cachet_setup_caller_dir"
echo "setup: done (cache: $CACHET_CI_CACHE)"
