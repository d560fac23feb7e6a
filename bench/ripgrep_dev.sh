#!/usr/bin/env bash
# ripgrep's workspace in the default dev profile, as issue 13 first measured it: warm rebuilds
# after removing target/ through cachet, cachet with CARGO_INCREMENTAL=0, sccache and no cache,
# then the edit loop (a documented constant appended to grep-searcher's library, rebuilt) through
# cachet and plain cargo, alternating. Prints times; asserts nothing.
#
#   bash bench/ripgrep_dev.sh [RUNS]      (after scripts/setup.sh and cargo build --release)
#
# The workspace is ripgrep 15.1.0's ten members (ripgrep, grep, grep-cli, grep-matcher,
# grep-pcre2, grep-printer, grep-regex, grep-searcher, globset, ignore) as published in the
# registry, put back together as one workspace (members by path, the registry's copies patched
# out), so that cargo compiles them all with -C incremental as in a checkout of ripgrep.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHET=${CACHET:-$ROOT/target/release/cachet}
SCCACHE=${SCCACHE:-${CACHET_CI_CACHE:-$HOME/.cache/cachet-ci}/sccache/bin/sccache}
RUNS=${1:-3}
for tool in "$CACHET" "$SCCACHE"; do
  [ -x "$tool" ] || { echo "$tool is missing: run scripts/setup.sh and cargo build --release" >&2; exit 1; }
done
unset CARGO_INCREMENTAL RUSTC_WRAPPER CARGO_TARGET_DIR
scratch=$(mktemp -d)
trap '"$SCCACHE" --stop-server >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT
members="ripgrep grep grep-cli grep-matcher grep-pcre2 grep-printer grep-regex grep-searcher globset ignore"

# The members' published sources: vendored from a probe that depends on ripgrep with pcre2.
mkdir -p "$scratch/probe/src" "$scratch/ws"
printf '[package]\nname = "probe"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\nripgrep = { version = "=15.1.0", features = ["pcre2"] }\n' \
  > "$scratch/probe/Cargo.toml"
echo 'fn main() {}' > "$scratch/probe/src/main.rs"
(cd "$scratch/probe" && cargo vendor -q "$scratch/vendor" >/dev/null)
{
  printf '[workspace]\nresolver = "2"\nmembers = ['
  for m in $members; do printf '"%s", ' "$m"; done
  printf ']\n\n[patch.crates-io]\n'
  for m in $members; do [ "$m" = ripgrep ] || printf '%s = { path = "%s" }\n' "$m" "$m"; done
} > "$scratch/ws/Cargo.toml"
for m in $members; do
  cp -r "$scratch/vendor/$m" "$scratch/ws/$m"
  rm -f "$scratch/ws/$m/.cargo-checksum.json"
  # Dev-dependencies are not published with the sources' dependencies; a build needs none.
  python3 - "$scratch/ws/$m/Cargo.toml" <<'PY'
import sys
path = sys.argv[1]
kept, skipping = [], False
for line in open(path).read().splitlines():
    if line.startswith("["):
        skipping = "dev-dependencies" in line
    if not skipping:
        kept.append(line)
open(path, "w").write("\n".join(kept) + "\n")
PY
done
cd "$scratch/ws"
cargo generate-lockfile -q && cargo fetch -q

export CACHET_DIR=$scratch/cachet SCCACHE_DIR=$scratch/sccache
export SCCACHE_SERVER_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$SCCACHE" --start-server >/dev/null
timed() { # seconds a build took; its output only when it fails
  local start; start=$(date +%s.%N)
  if ! "$@" >"$scratch/out" 2>&1; then cat "$scratch/out" >&2; exit 1; fi
  echo "$(date +%s.%N) - $start" | bc
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
target_of() { case $1 in plain) echo target-plain ;; cachet) echo target ;; cachet-inc0) echo target-inc0 ;; sccache) echo target-sccache ;; esac; }
build() {
  local wrapper=
  case $1 in cachet | cachet-inc0) wrapper=$CACHET ;; sccache) wrapper=$SCCACHE ;; esac
  if [ "$1" = cachet-inc0 ]; then export CARGO_INCREMENTAL=0; else unset CARGO_INCREMENTAL; fi
  RUSTC_WRAPPER=$wrapper CARGO_TARGET_DIR=$(target_of "$1") cargo build --offline
}
tools="plain cachet cachet-inc0 sccache"
for tool in $tools; do echo "$tool cold: $(timed build $tool) s"; done
declare -A warm
for _ in $(seq "$RUNS"); do
  for tool in $tools; do rm -rf "$(target_of $tool)"; warm[$tool]+="$(timed build $tool) "; done
done
for tool in $tools; do echo "$tool rebuild after rm -rf target: median $(median ${warm[$tool]}) s (${warm[$tool]})"; done
sccache_warm=$(median ${warm[sccache]})
echo "cachet / sccache: $(echo "scale=3; $(median ${warm[cachet]}) / $sccache_warm" | bc)x"

file=grep-searcher/src/lib.rs
cp "$file" "$scratch/pristine"
ratios=()
for n in $(seq 9); do
  cp "$scratch/pristine" "$file"
  printf '/// An edit.\npub const BENCH_EDIT: u32 = %s;\n' "$n" >>"$file"
  if [ $((n % 2)) = 1 ]; then c=$(timed build cachet); p=$(timed build plain)
  else p=$(timed build plain); c=$(timed build cachet); fi
  echo "edit $n: cachet $c s, plain $p s"
  [ "$n" = 1 ] || ratios+=("$(echo "scale=4; $c / $p" | bc)")
done
cp "$scratch/pristine" "$file"
echo "edits 2..9, paired (median of cachet/plain per edit): $(median "${ratios[@]}")x"
echo "Reproduce: bash bench/ripgrep_dev.sh $RUNS"
