#!/usr/bin/env python3
"""The operational-metrics table of cachet in Docker, measured: one command.

    python3 bench/docker.py            # RUNS=3 by default; prints a markdown table

For each mode (ephemeral: the container's volume; persistent: a host directory), per run:
server start to healthy (docker run until /healthz answers, and until Docker's HEALTHCHECK
says healthy), a cold build of ../shared/workloads/service in a client container (fresh
server), a warm build in a second client container with an empty L1 (fresh target dir, fresh
CACHET_DIR: every hit comes from the server container), and request round trips from a client
container (curl's time_total of 300 GET /healthz and 300 GET of a 1 KiB object). sccache
(upstream, local disk cache, run on the host) gives the cold and warm baseline on the same
workload. Build times are measured inside the containers (not counting `docker run`).

Needs what scripts/setup.sh prepares: the client base image, the musl target; the server image
is built with `cachet docker build --tag cachet-bench:local`.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
WORKLOAD = os.path.abspath(os.path.join(REPO, "..", "shared", "workloads", "service"))
RUNS = int(os.environ.get("RUNS", "3"))
IMAGE = "cachet-bench:local"
BASE = os.environ.get("CACHET_TEST_CLIENT_BASE", "cachet-ci/debian-client:bookworm")
CACHE = os.environ.get("CACHET_CI_CACHE", os.path.expanduser("~/.cache/cachet-ci"))
SCCACHE = os.environ.get("CACHET_TEST_SCCACHE", os.path.join(CACHE, "sccache/bin/sccache"))
HOME = os.path.expanduser("~")
TAG = f"cachet-bench-{os.getpid()}"


def sh(*args, check=True, **kw):
    return subprocess.run(args, check=check, text=True, capture_output=True, **kw)


def cachet_bin():
    b = os.environ.get("CACHET_TEST_BIN")
    if b:
        return b
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    sh("cargo", "build", "--release", "-q", "-p", "cachet", cwd=REPO)
    return os.path.join(target, "release", "cachet")


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http_ok(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            return r.status == 200
    except Exception:
        return False


def start_server(name, net, mode, data):
    """docker run; returns (port, seconds to /healthz, seconds to Docker 'healthy')."""
    port = free_port()
    args = ["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:4226"]
    if mode == "persistent":
        args += ["-v", f"{data}:/var/cachet"]
    t0 = time.monotonic()
    sh(*args, IMAGE)
    while not http_ok(port):
        if time.monotonic() - t0 > 60:
            sys.exit(f"server {name} did not answer /healthz within 60 s")
        time.sleep(0.005)
    t_http = time.monotonic() - t0
    while sh("docker", "inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip() != "healthy":
        if time.monotonic() - t0 > 60:
            sys.exit(f"server {name} did not turn healthy within 60 s")
        time.sleep(0.05)
    t_health = time.monotonic() - t0
    sh("docker", "network", "connect", "--alias", "cachet", net, name)
    return port, t_http, t_health


def client(net, bin_, project, cachet_dir, script):
    return sh(
        "docker", "run", "--rm", "--network", net,
        "-v", f"{HOME}/.rustup:/root/.rustup:ro",
        "-v", f"{HOME}/.cargo/bin:/root/.cargo/bin:ro",
        "-v", f"{HOME}/.cargo/registry:/root/.cargo/registry:ro",
        "-v", f"{bin_}:/usr/local/bin/cachet:ro",
        "-v", f"{project}:/build/service", "-v", f"{cachet_dir}:/cachet-dir",
        "-e", "PATH=/root/.cargo/bin:/usr/local/bin:/usr/bin:/bin",
        "-e", "RUSTC_WRAPPER=/usr/local/bin/cachet", "-e", "CACHET_SERVER=http://cachet:4226",
        "-e", "CACHET_DIR=/cachet-dir", "-e", "CARGO_INCREMENTAL=0",
        "-w", "/build/service", BASE, "sh", "-c", script,
    ).stdout


BUILD = ('s=$(date +%s%N); cargo build --offline --locked -q >/dev/null 2>&1 || exit 1; '
         'e=$(date +%s%N); echo $(( (e - s) / 1000000 ))')
LATENCY = ('curl -s -o /dev/null -X PUT --data-binary @/etc/os-release http://cachet:4226/cachet/v1/e/lat; '
           'for i in $(seq 300); do curl -s -o /dev/null -w "h %{time_total}\\n" http://cachet:4226/healthz; '
           'curl -s -o /dev/null -w "o %{time_total}\\n" http://cachet:4226/cachet/v1/e/lat; done')


def fresh_project(tmp, name):
    p = os.path.join(tmp, name)
    shutil.copytree(WORKLOAD, p, ignore=shutil.ignore_patterns("target"))
    os.makedirs(p + "-cachet")
    return p, p + "-cachet"


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def run_mode(mode, bin_, tmp):
    res = {k: [] for k in ("http", "health", "cold", "warm", "h50", "h99", "o50", "o99")}
    for r in range(RUNS):
        net = f"{TAG}-{mode}-{r}"
        name = f"{TAG}-{mode}-{r}-srv"
        data = os.path.join(tmp, f"data-{mode}-{r}")
        os.makedirs(data)
        os.chown(data, 1000, 1000)
        sh("docker", "network", "create", "--internal", net)
        try:
            _, t_http, t_health = start_server(name, net, mode, data)
            res["http"].append(t_http)
            res["health"].append(t_health)
            p, c = fresh_project(tmp, f"{mode}-{r}-cold")
            res["cold"].append(int(client(net, bin_, p, c, BUILD).split()[-1]) / 1000)
            p, c = fresh_project(tmp, f"{mode}-{r}-warm")
            res["warm"].append(int(client(net, bin_, p, c, BUILD).split()[-1]) / 1000)
            hits = sum(1 for l in open(os.path.join(c, "journal.jsonl")) if '"hit-remote"' in l)
            misses = sum(1 for l in open(os.path.join(c, "journal.jsonl")) if '"outcome":"miss"' in l)
            print(f"  {mode} run {r + 1}: healthz {t_http * 1000:.0f} ms, healthy {t_health:.1f} s, "
                  f"cold {res['cold'][-1]:.1f} s, warm {res['warm'][-1]:.1f} s "
                  f"({hits} remote hits, {misses} misses)", file=sys.stderr)
            lat = client(net, bin_, p, c, LATENCY).split("\n")
            h = [float(l.split()[1]) * 1000 for l in lat if l.startswith("h ")]
            o = [float(l.split()[1]) * 1000 for l in lat if l.startswith("o ")]
            res["h50"].append(pct(h, 0.5)); res["h99"].append(pct(h, 0.99))
            res["o50"].append(pct(o, 0.5)); res["o99"].append(pct(o, 0.99))
        finally:
            sh("docker", "rm", "-f", "-v", name, check=False)
            sh("docker", "network", "rm", net, check=False)
    return {k: statistics.median(v) for k, v in res.items()}


def run_sccache(tmp):
    cold, warm = [], []
    for r in range(RUNS):
        env = dict(os.environ, RUSTC_WRAPPER=SCCACHE, CARGO_INCREMENTAL="0",
                   SCCACHE_DIR=os.path.join(tmp, f"sccache-{r}"), SCCACHE_IDLE_TIMEOUT="0")
        env.pop("CARGO_TARGET_DIR", None)
        subprocess.run([SCCACHE, "--stop-server"], env=env, capture_output=True)
        for kind, out in (("cold", cold), ("warm", warm)):
            p, _ = fresh_project(tmp, f"sccache-{r}-{kind}")
            t0 = time.monotonic()
            subprocess.run(["cargo", "build", "--offline", "--locked", "-q"], cwd=p, env=env,
                           check=True, capture_output=True)
            out.append(time.monotonic() - t0)
        subprocess.run([SCCACHE, "--stop-server"], env=env, capture_output=True)
        print(f"  sccache run {r + 1}: cold {cold[-1]:.1f} s, warm {warm[-1]:.1f} s", file=sys.stderr)
    return statistics.median(cold), statistics.median(warm)


def fmt_s(s):
    return f"{int(s // 60)}m{s % 60:04.1f}s" if s >= 60 else f"{s:.1f} s"


def main():
    bin_ = cachet_bin()
    print(f"building {IMAGE} ...", file=sys.stderr)
    subprocess.run([bin_, "docker", "build", "--tag", IMAGE, "--source", REPO], check=True,
                   stdout=subprocess.DEVNULL)
    size = int(sh("docker", "image", "inspect", "-f", "{{.Size}}", IMAGE).stdout) / 2**20
    tmp = tempfile.mkdtemp(prefix="cachet-bench-docker-")
    try:
        eph = run_mode("ephemeral", bin_, tmp)
        per = run_mode("persistent", bin_, tmp)
        sc = run_sccache(tmp) if os.path.exists(SCCACHE) else None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cpus = os.cpu_count()
    print(f"\ncachet in Docker, workload `service` (debug build), {cpus} cores, medians of {RUNS} runs; "
          f"server image {size:.1f} MiB\n")
    print("| metric | ephemeral | persistent | sccache (host, local disk) | guide's claim (eph / pers) |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| server start to /healthz answering | {eph['http'] * 1000:.0f} ms | {per['http'] * 1000:.0f} ms | | 120 ms / 85 ms |")
    print(f"| server start to Docker `healthy` (5 s check interval) | {eph['health']:.1f} s | {per['health']:.1f} s | | |")
    scc = (fmt_s(sc[0]), fmt_s(sc[1])) if sc else ("n/a", "n/a")
    print(f"| cold build, client container | {fmt_s(eph['cold'])} | {fmt_s(per['cold'])} | {scc[0]} | 8m22s / 8m19s |")
    print(f"| warm build, empty L1 (all hits from the server) | {fmt_s(eph['warm'])} | {fmt_s(per['warm'])} | {scc[1]} | 47 s / 39 s |")
    print(f"| round trip GET /healthz p50 / p99 | {eph['h50']:.2f} / {eph['h99']:.2f} ms | {per['h50']:.2f} / {per['h99']:.2f} ms | | 0.8 / 0.7 ms |")
    print(f"| round trip GET 1 KiB object p50 / p99 | {eph['o50']:.2f} / {eph['o99']:.2f} ms | {per['o50']:.2f} / {per['o99']:.2f} ms | | |")
    print(f"\nReproduce: `RUNS={RUNS} python3 bench/docker.py` (after `scripts/setup.sh`).")


if __name__ == "__main__":
    main()
