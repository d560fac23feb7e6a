#!/usr/bin/env python3
"""What checking signatures costs a warm build: the same builds with CACHET_TRUSTED_KEYS unset and set.

A writer holding a signing key fills a `cachet server` on loopback with the workload (one cold
build, every entry and manifest signed). Then, alternately and several times, with signature
checking off and on:

  via server   after `cargo clean`, with an empty local cache: every entry comes from the
               server and, with checking on, is verified once as it arrives
  warm (L1)    after `cargo clean`, with the local cache the previous build filled (entries
               there are trusted: nothing is verified)

For each it reports the wall time (noisy on a loaded machine: `uptime` is printed) and the CPU
time (user + sys) of the whole build, cargo and every wrapper call, which load disturbs much
less; and it checks that every lookup hit and that nothing was refused.

    python3 bench/signing.py [--runs 3] [--workload ../shared/workloads/service]

`cargo run --release -p cachet-wrapper --example verify_cost -- ENTRY` times one verification.
"""

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sh(cmd, env=None, cwd=None, check=True):
    out = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    if check and out.returncode != 0:
        sys.exit(f"command failed: {' '.join(map(str, cmd))}\n{out.stdout}\n{out.stderr}")
    return out


def measured(cmd, env, cwd):
    """(wall seconds, CPU seconds of the command and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    sh(cmd, env=env, cwd=cwd)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workload", default=str(ROOT.parent / "shared/workloads/service"))
    ap.add_argument("--cachet", default=str(ROOT / "target/release/cachet"))
    ap.add_argument("--scratch", default="/tmp/cachet-bench-signing")
    args = ap.parse_args()

    scratch = Path(args.scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    work = scratch / "work"
    shutil.copytree(args.workload, work, ignore=shutil.ignore_patterns("target"))
    env0 = {k: v for k, v in os.environ.items()
            if not k.startswith(("CACHET_", "CARGO_BUILD_", "CARGO_PROFILE_"))
            and k not in ("RUSTFLAGS", "RUSTC_WRAPPER", "CARGO_TARGET_DIR")}
    env0.update(CARGO_INCREMENTAL="0", CARGO_TERM_COLOR="never", XDG_CONFIG_HOME=str(scratch / "no-config"))
    sh(["cargo", "fetch", "--locked"], env=env0, cwd=work)
    build = ["cargo", "build", "--locked", "--offline"]

    key_file = scratch / "ci.key"
    public = sh([args.cachet, "key", "generate", "--name", "bench", "--out", str(key_file)],
                env=env0).stdout.strip().split()[-1]
    port = free_port()
    server = subprocess.Popen([args.cachet, "server", "--listen", f"127.0.0.1:{port}",
                               "--storage", "ephemeral"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env0)
    try:
        for _ in range(400):
            if sh(["curl", "-sf", f"http://127.0.0.1:{port}/healthz"], check=False).returncode == 0:
                break
            time.sleep(0.05)
        base = dict(env0, RUSTC_WRAPPER=args.cachet, CACHET_SERVER=f"http://127.0.0.1:{port}")
        writer = dict(base, CACHET_DIR=str(scratch / "writer"), CACHET_SIGNING_KEY=str(key_file))
        print("filling the server (cold build, signed)", file=sys.stderr)
        sh(build, env=writer, cwd=work)
        stats = json.loads(sh([args.cachet, "stats", "--json"], env=writer).stdout)["stats"]
        entries = stats["entries_written"]

        times = {f"{s}, checking {c}": [] for s in ("via server", "warm (L1)") for c in ("off", "on")}
        for run in range(args.runs):
            order = ["off", "on"] if run % 2 == 0 else ["on", "off"]
            for checking in order:
                print(f"run {run + 1}/{args.runs}: checking {checking}", file=sys.stderr)
                env = dict(base, CACHET_DIR=str(scratch / f"client-{checking}"))
                if checking == "on":
                    env["CACHET_TRUSTED_KEYS"] = public
                shutil.rmtree(env["CACHET_DIR"], ignore_errors=True)
                shutil.rmtree(work / "target", ignore_errors=True)
                times[f"via server, checking {checking}"].append(measured(build, env, work))
                s = json.loads(sh([args.cachet, "stats", "--json"], env=env).stdout)["stats"]
                assert s["hits_remote"] == entries and not s["errors"], f"checking {checking}: {s}"
                shutil.rmtree(work / "target", ignore_errors=True)
                sh([args.cachet, "zero-stats"], env=env)
                times[f"warm (L1), checking {checking}"].append(measured(build, env, work))
                s = json.loads(sh([args.cachet, "stats", "--json"], env=env).stdout)["stats"]
                assert s["hits_local"] == entries and not s["errors"], f"checking {checking}: {s}"
    finally:
        server.terminate()
        server.wait()

    print()
    print(f"Workload: {Path(args.workload).name} (debug, CARGO_INCREMENTAL=0), {entries} entries, "
          f"{args.runs} runs, medians; load: {os.getloadavg()[0]:.1f} (1-min average at the end)")
    print()
    print("| scenario | wall | CPU (user+sys) | runs: wall / CPU (s) |")
    print("|---|---:|---:|---|")
    med = {}
    for k, v in times.items():
        med[k] = (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        runs = ", ".join(f"{w:.1f}/{c:.1f}" for w, c in v)
        print(f"| {k} | {med[k][0]:.1f} s | {med[k][1]:.2f} s | {runs} |")
    print()
    for s in ("via server", "warm (L1)"):
        on, off = med[f"{s}, checking on"], med[f"{s}, checking off"]
        print(f"{s}: checking on / off: wall {on[0] / off[0]:.3f}x, CPU {on[1] / off[1]:.3f}x")
    print()
    print("Reproduce: python3 bench/signing.py --runs", args.runs)


if __name__ == "__main__":
    main()
