#!/usr/bin/env bash
# Side-by-side throughput, latency and peak memory of `cachet server` and nginx's WebDAV module
# (the same objects, GET and PUT over loopback), printed as a table with the command lines.
#
#   bench/server.sh                 # default: the whole grid, 8 s per run (about 6 minutes)
#   SECONDS_PER_RUN=5 bench/server.sh
#   SCENARIOS="get 1M 64;put 16M 8" bench/server.sh   # a subset
#   CACHET_BIN=/old/cachet TARGETS=cachet bench/server.sh   # another build, without nginx
#   FLOOD=1 FLOOD_ROUNDS=5 TARGETS=cachet SCENARIOS="get 4K 8;get 1M 8;put 1M 8" bench/server.sh
#       # each scenario three times per round, FLOOD_ROUNDS rounds interleaved: alone, beside a
#       # flood of dashboard call reports from clients that wait for Retry-After as the wrapper
#       # does (cachet+flood), and beside hostile ones that ignore 429 (cachet+hostile)
#       # (bench/report_flood.py, FLOOD_CLIENTS=4 clients POSTing 500-record batches), then
#       # one line per scenario and flood with the median over the rounds of the flooded run's
#       # numbers over the same round's lone run's (req/s, p50, p99: 1.00 is unchanged)
#
# Each scenario starts a fresh server (so peak RSS belongs to that scenario alone) and runs the
# load generator (crates/cachet-server/examples/loadgen.rs). Needs nginx-light
# (scripts/setup.sh installs it). Nothing leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${SECONDS_PER_RUN:-8}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
[ -n "${CACHET_BIN:-}" ] || cargo build --release -q -p cachet --bin cachet
cargo build --release -q -p cachet-server --example loadgen
CACHET="${CACHET_BIN:-$CARGO_TARGET_DIR/release/cachet}"
TARGETS="${TARGETS:-cachet nginx}"
if [ -n "${FLOOD:-}" ]; then TARGETS="${TARGETS/cachet/cachet cachet+flood cachet+hostile}"; fi
ROUNDS="${FLOOD_ROUNDS:-1}"; [ -n "${FLOOD:-}" ] || ROUNDS=1
LOADGEN="$CARGO_TARGET_DIR/release/examples/loadgen"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
case " $TARGETS " in *" nginx "*)
  [ -x "$NGINX" ] || { echo "nginx is missing: run scripts/setup.sh" >&2; exit 1; } ;;
esac
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

start_cachet() { # sets URL and SERVER_PIDS
  local port; port=$(free_port)
  rm -rf "$WORK/cachet"; mkdir -p "$WORK/cachet"
  CACHET_LOG=warn "$CACHET" server --listen "127.0.0.1:$port" --storage "dir:$WORK/cachet" \
    --max-size 40G --max-object-size 100M &
  PIDS+=($!); SERVER_PIDS="--pid $!"; wait_port "$port"; URL="http://127.0.0.1:$port/bench"
  BASE="http://127.0.0.1:$port"
}

# `cachet` beside a flood of call reports: the same server, with bench/report_flood.py
# POSTing records for the whole run (its own line reports the records per second it got in).
start_cachet+flood() {
  start_cachet
  python3 bench/report_flood.py --url "$BASE" --clients "${FLOOD_CLIENTS:-4}" \
    --seconds "$((SECS + 2))" "$@" &
  FLOOD_PID=$!; PIDS+=($!)
  sleep 1  # the flood is under way before the measured run starts
}
# The same with clients that ignore 429 and send again at once.
start_cachet+hostile() { start_cachet+flood --ignore-429; }

start_nginx() {
  local port; port=$(free_port)
  rm -rf "$WORK/nginx"; mkdir -p "$WORK/nginx/root/bench" "$WORK/nginx/tmp"
  local user=""; [ "$(id -u)" -eq 0 ] && user="user root;"
  cat > "$WORK/nginx/nginx.conf" <<CONF
$user
worker_processes 2;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/tmp;
  proxy_temp_path $WORK/nginx/tmp; fastcgi_temp_path $WORK/nginx/tmp;
  uwsgi_temp_path $WORK/nginx/tmp; scgi_temp_path $WORK/nginx/tmp;
  client_max_body_size 0;
  sendfile on;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$port;
    root $WORK/nginx/root;
    location / { dav_methods PUT DELETE; create_full_put_path on; }
  }
}
CONF
  "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
  local master=$!; PIDS+=($master); wait_port "$port"
  SERVER_PIDS="--pid $master"
  for w in $(pgrep -P "$master"); do SERVER_PIDS="$SERVER_PIDS --pid $w"; done
  URL="http://127.0.0.1:$port/bench"
}

stop_all() {
  # The flood (if any) ends by itself: wait for it so its line is printed, then stop the rest.
  if [ -n "${FLOOD_PID:-}" ]; then wait "$FLOOD_PID" 2>/dev/null || true; FLOOD_PID=; fi
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true; PIDS=()
}

# Every operation at 1, 8 and 64 clients and 4 KiB, 1 MiB and 16 MiB objects
# (SCENARIOS="get 1M 64;put 16M 8" runs only those).
scenarios=()
if [ -n "${SCENARIOS:-}" ]; then
  IFS=';' read -r -a scenarios <<<"$SCENARIOS"
else
  for op in get put; do
    for size in 4K 1M 16M; do
      for clients in 1 8 64; do scenarios+=("$op $size $clients"); done
    done
  done
fi
echo "# cachet server vs nginx WebDAV, loopback, ${SECS}s per run, $(nproc) cores"
echo "# reproduce: SECONDS_PER_RUN=$SECS bench/server.sh ($(uptime | sed 's/.*load/load/'))"
# The flooded runs' req/s, p50 and p99 over the lone runs' of the same rounds, from pairs of
# loadgen lines (alone, flooded, alone, flooded, ...): the median over the rounds.
flood_ratio() {
  python3 - "$@" <<'PY'
import re, statistics, sys
scenario, label, lines = sys.argv[1], sys.argv[2], sys.argv[3:]
def nums(line):
    m = re.search(r"\(\s*([\d.]+) req/s\) p50=\s*([\d.]+) ms p99=\s*([\d.]+) ms", line)
    return [float(x) for x in m.groups()] if m else None
rounds = []
for alone, flooded in zip(lines[0::2], lines[1::2]):
    a, f = nums(alone), nums(flooded)
    if a and f and 0.0 not in a:
        rounds.append([x / y for x, y in zip(f, a)])
if not rounds:
    print(f"{label}/alone {scenario:<12} n/a (a run failed)")
else:
    med = [statistics.median(r[i] for r in rounds) for i in range(3)]
    each = " ".join(f"{r[0]:.2f}" for r in rounds)
    print(f"{label}/alone {scenario:<12} req/s x{med[0]:.2f}  p50 x{med[1]:.2f}  p99 x{med[2]:.2f}"
          f"  (median of {len(rounds)} rounds; req/s each: {each})")
PY
}

RATIOS=()
for s in "${scenarios[@]}"; do
  read -r op size clients <<<"$s"
  declare -A PAIRS=()
  for _round in $(seq 1 "$ROUNDS"); do
    declare -A LINE=()
    for target in $TARGETS; do
      "start_$target"
      # shellcheck disable=SC2086
      LINE[$target]=$("$LOADGEN" --url "$URL" --op "$op" --size "$size" --clients "$clients" \
        --seconds "$SECS" --label "$target" $SERVER_PIDS)
      echo "${LINE[$target]}" | tee -a "$WORK/results"
      stop_all
    done
    for flood in cachet+flood cachet+hostile; do
      if [ -n "${LINE[$flood]:-}" ]; then
        PAIRS[$flood]+="${LINE[cachet]}"$'\n'"${LINE[$flood]}"$'\n'
      fi
    done
    unset LINE
  done
  for flood in cachet+flood cachet+hostile; do
    if [ -n "${PAIRS[$flood]:-}" ]; then
      mapfile -t pair_lines < <(printf '%s' "${PAIRS[$flood]}")
      RATIOS+=("$(flood_ratio "$s" "$flood" "${pair_lines[@]}")")
    fi
  done
  unset PAIRS
done
if [ "${#RATIOS[@]}" -gt 0 ]; then
  echo "# object requests during a record flood, flooded run / lone run (1.00 = unchanged);"
  echo "# cachet+flood: flooders that wait for Retry-After (as the wrapper does), cachet+hostile: ones that ignore 429:"
  printf '%s\n' "${RATIOS[@]}"
fi
# The same lines as a Markdown table, ready for BENCHMARKS.md.
echo
echo "| server | op | size | clients | MiB/s | req/s | p50 ms | p99 ms | peak RSS | server CPU |"
echo "|---|---|---|---|---:|---:|---:|---:|---:|---:|"
perl -ne 'print "| ", join(" | ", @m), " |\n" if (@m = /^(\S+) +op=(\S+) +size=(\S+) +clients=(\S+) .*throughput= *(\S+) MiB\/s \( *(\S+) req\/s\) p50= *(\S+) ms p99= *(\S+) ms peak_rss=(.+?) server_cpu=(.+)$/)' "$WORK/results"
