#!/usr/bin/env python3
"""Storage tiers: warm builds through a server on each shared backend, and GET/PUT throughput
per backend with the load generator. Prints figures; asserts nothing about time.

    python3 bench/tiers.py [--runs 3] [--seconds 5]

Needs redis-server, redis-cli and moto (scripts/setup.sh installs them) and a release build of
cachet (`cargo build --release -p cachet`; the load generator is built here). Every process
listens on 127.0.0.1 only.

Builds of ../shared/workloads/service (debug, CARGO_INCREMENTAL=0), each after `cargo clean`
with an empty local cache (L1), so every library crate comes from the server. Per run and
backend, a fresh key prefix is filled by one cold build through a server on the backend alone,
then:
  BACKEND only          a server with no local tier: every hit is read from Redis or S3
  local tier cold       a new replica `dir:NEW,BACKEND`: every hit is read from the backend
                        and copied into the local tier on the way
  local tier warm       the same replica again: every hit comes from its local tier
                        (the same as a server on a disk)

Throughput: the load generator (crates/cachet-server/examples/loadgen.rs) against a fresh
server per row, on each backend alone and behind a local tier (for a chain, GETs are answered
by the local tier the generator's uploads filled; PUTs return once the local tier has the
object, the copy to the backend happens in the background).
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from build import base_env  # bench/build.py: the same clean build environment

ROOT = Path(__file__).resolve().parent.parent
CI_CACHE = Path(os.environ.get("CACHET_CI_CACHE", Path.home() / ".cache/cachet-ci"))
S3_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret",
          "AWS_REGION": "us-east-1"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    sys.exit(f"{what} never listened on {port}")


def tool(env, name, cached=None):
    if os.environ.get(env):
        return os.environ[env]
    if cached and Path(cached).exists():
        return str(cached)
    found = shutil.which(name)
    if not found:
        sys.exit(f"{name} is missing: run scripts/setup.sh")
    return found


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, cmd, env=None, cwd=None):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=env, cwd=cwd)
        self.procs.append(p)
        return p

    def stop(self, p):
        p.kill()
        p.wait()
        self.procs.remove(p)

    def stop_all(self):
        for p in list(self.procs):
            self.stop(p)


def start_backends(procs, scratch):
    """Starts redis-server, a 3-node Redis Cluster and moto; returns {name: spec(prefix)}."""
    redis_server = tool("CACHET_TEST_REDIS_SERVER", "redis-server")
    redis_cli = tool("CACHET_TEST_REDIS_CLI", "redis-cli")
    moto = tool("CACHET_TEST_MOTO", "moto_server", CI_CACHE / "moto/bin/moto_server")

    def redis_node(cluster):
        port = free_port()
        d = Path(tempfile.mkdtemp(dir=scratch))
        cmd = [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no"]
        if cluster:
            cmd += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        procs.start(cmd, cwd=d)
        wait_port(port, "redis-server")
        return port

    single = redis_node(False)
    nodes = [redis_node(True) for _ in range(3)]
    subprocess.run([redis_cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in nodes],
                    "--cluster-replicas", "0", "--cluster-yes"], check=True,
                   stdout=subprocess.DEVNULL)
    for p in nodes:
        while b"cluster_state:ok" not in subprocess.run(
                [redis_cli, "-p", str(p), "cluster", "info"], capture_output=True).stdout:
            time.sleep(0.1)
    s3_port = free_port()
    procs.start([moto, "-H", "127.0.0.1", "-p", str(s3_port)])
    wait_port(s3_port, "moto")
    urllib.request.urlopen(urllib.request.Request(
        f"http://127.0.0.1:{s3_port}/bench", method="PUT"))
    return {
        "redis": lambda prefix: f"redis://127.0.0.1:{single}/0?prefix={prefix}/",
        "redis cluster": lambda prefix: (
            f"redis+cluster://127.0.0.1:{nodes[0]},127.0.0.1:{nodes[1]}?prefix={prefix}/"),
        "s3 (moto)": lambda prefix: (
            f"s3://bench/{prefix}?endpoint=http://127.0.0.1:{s3_port}&region=us-east-1"),
    }


def start_server(procs, cachet, storage, extra=()):
    port = free_port()
    env = dict(os.environ, CACHET_LOG="warn", **S3_ENV)
    p = procs.start([cachet, "server", "--listen", f"127.0.0.1:{port}", "--storage", storage,
                     "--max-size", "40G", "--max-object-size", "100M", *extra], env=env)
    wait_port(port, "cachet server")
    return p, port


def stats(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats") as r:
        return json.load(r)


def builds(args, procs, specs, scratch):
    work = scratch / "work"
    shutil.copytree(args.workload, work, ignore=shutil.ignore_patterns("target"))
    env0 = base_env()
    subprocess.run(["cargo", "fetch", "--locked"], env=env0, cwd=work, check=True,
                   capture_output=True)
    clients = [0]

    def build(port):
        """cargo clean + a build with an empty L1 through the server on `port`; seconds."""
        clients[0] += 1
        env = dict(env0, RUSTC_WRAPPER=args.cachet,
                   CACHET_DIR=str(scratch / f"l1-{clients[0]}"),
                   CACHET_SERVER=f"http://127.0.0.1:{port}")
        subprocess.run(["cargo", "clean"], env=env0, cwd=work, check=True, capture_output=True)
        start = time.monotonic()
        out = subprocess.run(["cargo", "build", "--locked", "--offline"], env=env, cwd=work,
                             capture_output=True, text=True)
        took = time.monotonic() - start
        if out.returncode != 0:
            sys.exit(f"build failed:\n{out.stderr}")
        return took

    times = {}
    for run in range(args.runs):
        for name, spec in specs.items():
            prefix = f"run{run}"
            fill, fill_port = start_server(procs, args.cachet, spec(prefix))
            build(fill_port)  # cold: fills the backend
            procs.stop(fill)
            only, only_port = start_server(procs, args.cachet, spec(prefix))
            times.setdefault((name, f"{name} only"), []).append(build(only_port))
            procs.stop(only)
            local = Path(tempfile.mkdtemp(dir=scratch))
            replica, port = start_server(procs, args.cachet, f"dir:{local},{spec(prefix)}")
            times.setdefault((name, "local tier cold"), []).append(build(port))
            times.setdefault((name, "local tier warm"), []).append(build(port))
            s = stats(port)
            shared = next(t for t in s["tiers"] if t["tier"] == "shared")
            print(f"# run {run + 1} {name}: shared tier hits {shared['hits']}, "
                  f"get {shared['latency_ms'].get('get', 0):.2f} ms avg", flush=True)
            procs.stop(replica)
    print()
    print("Workload: service (debug, CARGO_INCREMENTAL=0), empty L1 after cargo clean, "
          f"{args.runs} runs, medians")
    print()
    print("| backend | scenario | median | runs (s) |")
    print("|---|---|---:|---|")
    for (name, scenario), ts in times.items():
        print(f"| {name} | {scenario} | {statistics.median(ts):.1f} s | "
              f"{', '.join(f'{t:.1f}' for t in ts)} |")


def throughput(args, procs, specs, scratch):
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "cachet-server", "--example",
                    "loadgen"], cwd=ROOT, check=True)
    loadgen = ROOT / "target/release/examples/loadgen"
    scenarios = [("get", "10K", 16), ("get", "1M", 16), ("put", "1M", 16)]
    storages = [("dir", lambda p: f"dir:{tempfile.mkdtemp(dir=scratch)}")]
    for name, spec in specs.items():
        storages.append((name, spec))
        storages.append((f"dir,{name}",
                         lambda p, spec=spec: f"dir:{tempfile.mkdtemp(dir=scratch)},{spec(p)}"))
    print()
    print(f"# load generator, {args.seconds} s per row, fresh server per row, loopback")
    n = 0
    for op, size, clients in scenarios:
        for name, spec in storages:
            n += 1
            server, port = start_server(procs, args.cachet, spec(f"load{n}"))
            out = subprocess.run([str(loadgen), "--url", f"http://127.0.0.1:{port}/bench",
                                  "--op", op, "--size", size, "--clients", str(clients),
                                  "--seconds", str(args.seconds), "--label", name,
                                  "--pid", str(server.pid)],
                                 capture_output=True, text=True)
            line = out.stdout.strip() or out.stderr.strip()
            print(f"{name:<16} {line}", flush=True)
            procs.stop(server)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--workload", default=str(ROOT.parent / "shared/workloads/service"))
    ap.add_argument("--cachet", default=str(ROOT / "target/release/cachet"))
    ap.add_argument("--scratch", default="/tmp/cachet-bench-tiers")
    ap.add_argument("--skip-builds", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    if not Path(args.cachet).is_file():
        sys.exit(f"{args.cachet} is missing: cargo build --release -p cachet")
    scratch = Path(args.scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    procs = Procs()
    try:
        specs = start_backends(procs, scratch)
        print(f"# {os.cpu_count()} cores; reproduce: python3 bench/tiers.py --runs {args.runs} "
              f"--seconds {args.seconds}", flush=True)
        if not args.skip_throughput:
            throughput(args, procs, specs, scratch)
        if not args.skip_builds:
            builds(args, procs, specs, scratch)
    finally:
        procs.stop_all()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
