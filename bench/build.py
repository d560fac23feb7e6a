#!/usr/bin/env python3
"""Cold and warm builds of a pinned workload: no cache vs cachet vs upstream sccache.

Runs every scenario alternately, several times, and prints medians and ratios measured side
by side in one run. Usage (from the repository root; `scripts/setup.sh` builds sccache):

    python3 bench/build.py [--runs 3] [--workload ../shared/workloads/service]
    python3 bench/build.py --runs 5 --workload ../shared/workloads/native

cachet also caches the C, C++ and assembly that build scripts compile, set up as `cachet setup`
does (`CC_KNOWN_WRAPPER_CUSTOM=cachet`, `CC_<host>="cachet cc"`); sccache gets them through the
`cc` crate's own fallback for a `RUSTC_WRAPPER` named sccache.

Scenarios (all with CARGO_INCREMENTAL=0, debug profile):
  plain cold     cargo build, no wrapper, empty target/
  cachet cold    through cachet with an empty local cache and no server
  cachet cold + upload  the same, also uploading every entry to a `cachet server` on loopback
  cachet warm    through cachet after `cargo clean` (cache filled by the cold run)
  cachet warm, reports off  the same with CACHET_REPORTS=0: the difference is what appending
                 each call's dashboard report to the spool costs the hit path
  cachet warm, server unreachable  the same with CACHET_SERVER pointing at a port that accepts
                 connections and never answers (the slow way to be unreachable)
  cachet via server  after `cargo clean`, with an empty local cache: every hit comes from a
                 `cachet server` on loopback that the cold run uploaded to
  sccache cold   through sccache with an empty cache (its server restarted)
  sccache warm   through sccache after `cargo clean`
  copy limit     restore a saved copy of target/ and run a no-op cargo build

With --dev-profile, the default dev profile instead (no CARGO_INCREMENTAL: cargo compiles
workspace members with -C incremental), on the `members` test fixture (several members) and on
the workload (one member):
  plain rebuild  cargo clean, cargo build, no wrapper
  cachet warm    cargo clean, then a build through cachet with the filled local cache
  cachet warm, CARGO_INCREMENTAL=0   the same with incremental off (workload only)
  sccache warm   cargo clean, then a build through sccache with its filled cache
  edit N         from a fresh build (cachet: restored after clean; plain: compiled), change one
                 line of one member and rebuild, N = 1..--edits; cachet vs plain. The two loops
                 run interleaved, each in its own target directory: every edit is built by
                 both, one right after the other (the order alternating), so a slow moment of
                 the machine falls on both and not on one tool's whole loop. The edit loop's
                 ratio is also given paired: the median, over every edit from the second on,
                 of cachet's time over plain cargo's for that same edit. The two builds of a
                 pair run seconds apart, so a phase of the machine that makes a whole stretch
                 of builds slower (seen here as plain edits of 0.19 s in one run and 0.24 s in
                 the next) divides out; the ratio of the two medians does not have that
                 property when the stretch falls on one side of the median

No fixed ports: the cachet server binds 127.0.0.1:0 and writes the port it got to a port file;
sccache's server gets a port picked free just before. Both are stopped however the benchmark
ends (an error, Ctrl-C, SIGTERM), so two benchmarks, or a benchmark beside the test suite, can
run at once.
"""

import argparse
import atexit
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sh(cmd, env=None, cwd=None, check=True, quiet=True):
    out = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE if quiet else None,
                         stderr=subprocess.PIPE if quiet else None, text=True)
    if check and out.returncode != 0:
        sys.exit(f"command failed: {' '.join(map(str, cmd))}\n{out.stdout}\n{out.stderr}")
    return out


def free_port():
    """A loopback port the system picked a moment ago, for sccache's server, which cannot bind
    port 0 and say which it got (cachet's server does: see CachetServer). If another process
    takes it in between, `sccache --start-server` fails loudly; it never measures the wrong
    server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_on_exit(stop):
    """Runs `stop` however the benchmark ends: normally, on an error or `sys.exit`, on Ctrl-C
    (KeyboardInterrupt) and on SIGTERM (turned into an exit so that atexit handlers run)."""
    atexit.register(stop)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


class CachetServer:
    """A `cachet server` on 127.0.0.1:0 with an ephemeral store: it writes the port it bound to
    a port file, so no port is chosen for it. It runs in its own process group (a Ctrl-C in the
    terminal reaches the benchmark, which then stops the server) and is stopped at exit."""

    def __init__(self, cachet, scratch, env):
        port_file = scratch / "server.port"
        self.log = scratch / "server.log"
        port_file.unlink(missing_ok=True)
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [cachet, "server", "--listen", "127.0.0.1:0", "--storage", "ephemeral",
                 "--port-file", str(port_file)],
                stdout=subprocess.DEVNULL, stderr=log, env=env, start_new_session=True)
        stop_on_exit(self.stop)
        deadline = time.monotonic() + 60
        while not port_file.exists():
            if self.proc.poll() is not None:
                sys.exit(f"cachet server exited ({self.proc.returncode}):\n{self.log.read_text()}")
            if time.monotonic() > deadline:
                sys.exit(f"cachet server wrote no port file within 60 s:\n{self.log.read_text()}")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{int(port_file.read_text())}"
        for _ in range(600):
            if sh(["curl", "-sf", f"{self.url}/healthz"], check=False).returncode == 0:
                return
            time.sleep(0.05)
        sys.exit(f"cachet server at {self.url} does not answer /healthz:\n{self.log.read_text()}")

    def stop(self):
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass


class Blackhole:
    """A loopback port that accepts connections into its backlog and never answers: a server
    that is unreachable the slow way (every request waits for the client's timeout)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"


def hit_ms(cachet, env):
    """Milliseconds per hit inside the wrapper since the last zero-stats."""
    stats = json.loads(sh([cachet, "stats", "--json"], env=env).stdout)["stats"]
    hits = stats["hits_local"] + stats["hits_remote"]
    return (stats["hit_millis"] / hits if hits else float("nan")), hits


def sccache_env_for(env0, sccache, cache_dir):
    """sccache's environment on a free port; its server is stopped at exit."""
    env = dict(env0, RUSTC_WRAPPER=sccache, SCCACHE_DIR=str(cache_dir),
               SCCACHE_SERVER_PORT=str(free_port()), SCCACHE_IDLE_TIMEOUT="0",
               SCCACHE_CACHE_SIZE="10G")
    stop_on_exit(lambda: sh([sccache, "--stop-server"], env=env, check=False))
    return env


def timed(cmd, env, cwd):
    start = time.monotonic()
    sh(cmd, env=env, cwd=cwd)
    return time.monotonic() - start


def base_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CACHET_", "SCCACHE_", "CARGO_BUILD_", "CARGO_PROFILE_"))
           and k not in ("RUSTFLAGS", "RUSTC_WRAPPER", "CARGO_TARGET_DIR")}
    env["CARGO_INCREMENTAL"] = "0"
    env["CARGO_TERM_COLOR"] = "never"
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workload", default=str(ROOT.parent / "shared/workloads/service"))
    ap.add_argument("--cachet", default=str(ROOT / "target/release/cachet"))
    ap.add_argument("--sccache", default=os.environ.get(
        "CACHET_TEST_SCCACHE", str(Path.home() / ".cache/cachet-ci/sccache/bin/sccache")))
    ap.add_argument("--scratch", default="/tmp/cachet-bench")
    ap.add_argument("--json", help="also write the raw timings to this file")
    ap.add_argument("--dev-profile", action="store_true",
                    help="measure the default dev profile (incremental) and the edit loop instead")
    ap.add_argument("--edits", type=int, default=5, help="edits per edit loop (--dev-profile)")
    args = ap.parse_args()
    if args.dev_profile:
        return dev_profile(args)

    for tool in (args.cachet, args.sccache):
        if not Path(tool).is_file():
            sys.exit(f"{tool} is missing: run scripts/setup.sh and cargo build --release -p cachet")

    scratch = Path(args.scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    work = scratch / "work"
    shutil.copytree(args.workload, work, ignore=shutil.ignore_patterns("target"))
    env0 = base_env()
    sh(["cargo", "fetch", "--locked"], env=env0, cwd=work)
    build = ["cargo", "build", "--locked", "--offline"]
    target = work / "target"
    saved = scratch / "saved-target"

    cachet_env = dict(env0, RUSTC_WRAPPER=args.cachet, CACHET_DIR=str(scratch / "cachet-cache"))
    host = next(l.split()[1] for l in sh(["rustc", "-vV"]).stdout.splitlines() if l.startswith("host:"))
    host_u = host.replace("-", "_").replace(".", "_")
    cachet_env.update({"CC_KNOWN_WRAPPER_CUSTOM": "cachet", f"CC_{host_u}": f"{args.cachet} cc",
                       f"CXX_{host_u}": f"{args.cachet} c++"})
    program = next(l.split('"')[1] for l in (work / "Cargo.toml").read_text().splitlines()
                   if l.startswith("name"))
    sccache_env = sccache_env_for(env0, args.sccache, scratch / "sccache-cache")

    def clean():
        shutil.rmtree(target, ignore_errors=True)

    def program_output():
        return sh([str(target / "debug" / program)]).stdout

    warm_variants = {"cachet warm, reports off": {"CACHET_REPORTS": "0"},
                     "cachet warm, server unreachable": {"CACHET_SERVER": Blackhole().url}}
    times = {k: [] for k in ["plain cold", "cachet cold", "cachet cold + upload", "cachet warm",
                             *warm_variants, "cachet via server",
                             "sccache cold", "sccache warm", "copy limit"]}
    server = CachetServer(args.cachet, scratch, env0)
    cachet_env["CACHET_SERVER"] = server.url
    per_hit_ms = []
    variant_hit_ms = {k: [] for k in warm_variants}
    expected = None
    for run in range(args.runs):
        print(f"run {run + 1}/{args.runs}", file=sys.stderr)
        # Alternate the order of the tools between runs so drift hits both alike.
        order = ["plain", "cachet", "sccache"] if run % 2 == 0 else ["sccache", "cachet", "plain"]
        for tool in order:
            if tool == "plain":
                clean()
                times["plain cold"].append(timed(build, env0, work))
                expected = expected or program_output()
                shutil.rmtree(saved, ignore_errors=True)
                shutil.copytree(target, saved, symlinks=True)
                clean()
                start = time.monotonic()
                shutil.copytree(saved, target, symlinks=True)
                sh(build, env=env0, cwd=work)
                times["copy limit"].append(time.monotonic() - start)
            elif tool == "cachet":
                local_env = {k: v for k, v in cachet_env.items() if k != "CACHET_SERVER"}
                local_env["CACHET_DIR"] = str(scratch / "cachet-cache-local")
                shutil.rmtree(local_env["CACHET_DIR"], ignore_errors=True)
                clean()
                times["cachet cold"].append(timed(build, local_env, work))
                shutil.rmtree(cachet_env["CACHET_DIR"], ignore_errors=True)
                clean()
                times["cachet cold + upload"].append(timed(build, cachet_env, work))
                clean()
                sh([args.cachet, "zero-stats"], env=cachet_env)
                times["cachet warm"].append(timed(build, cachet_env, work))
                ms, hits = hit_ms(args.cachet, cachet_env)
                per_hit_ms.append(ms)
                assert program_output() == (expected or program_output()), "cachet changed the output"
                for name, extra in warm_variants.items():
                    clean()
                    variant_env = dict(cachet_env, **extra)
                    sh([args.cachet, "zero-stats"], env=variant_env)
                    times[name].append(timed(build, variant_env, work))
                    ms, variant_hits = hit_ms(args.cachet, variant_env)
                    variant_hit_ms[name].append(ms)
                    assert variant_hits == hits, f"{name}: {variant_hits} hits, not {hits}"
                    assert program_output() == (expected or program_output()), name
                clean()
                remote_env = dict(cachet_env, CACHET_DIR=str(scratch / "cachet-cache-empty"))
                shutil.rmtree(remote_env["CACHET_DIR"], ignore_errors=True)
                times["cachet via server"].append(timed(build, remote_env, work))
                rstats = json.loads(sh([args.cachet, "stats", "--json"], env=remote_env).stdout)["stats"]
                assert rstats["hits_remote"] == hits, f"expected {hits} remote hits, got {rstats}"
                sh(["curl", "-sf", "-X", "DELETE", f"{server.url}/_admin/namespaces/cachet"])
            else:
                sh([args.sccache, "--stop-server"], env=sccache_env, check=False)
                shutil.rmtree(sccache_env["SCCACHE_DIR"], ignore_errors=True)
                sh([args.sccache, "--start-server"], env=sccache_env)
                clean()
                times["sccache cold"].append(timed(build, sccache_env, work))
                clean()
                times["sccache warm"].append(timed(build, sccache_env, work))
                sh([args.sccache, "--stop-server"], env=sccache_env, check=False)

    server.stop()
    med = {k: statistics.median(v) for k, v in times.items()}
    plain = med["plain cold"]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    rustc = sh(["rustc", "--version"]).stdout.strip()
    print()
    print(f"Workload: {Path(args.workload).name} (debug, CARGO_INCREMENTAL=0), {args.runs} runs, medians")
    print(f"Machine: {os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}; {rustc}")
    print()
    print("| scenario | median | vs plain cold | runs (s) |")
    print("|---|---:|---:|---|")
    for k, v in times.items():
        print(f"| {k} | {med[k]:.1f} s | {med[k] / plain:.2f}x | {', '.join(f'{x:.1f}' for x in v)} |")
    print()
    print(f"cachet cold / plain cold:   {med['cachet cold'] / plain:.3f}x")
    print(f"cachet cold + upload / plain cold: {med['cachet cold + upload'] / plain:.3f}x")
    print(f"cachet warm / sccache warm: {med['cachet warm'] / med['sccache warm']:.3f}x")
    print(f"cachet warm / copy limit:   {med['cachet warm'] / med['copy limit']:.2f}x")
    print(f"cachet via server (empty L1) / cachet warm (L1): {med['cachet via server'] / med['cachet warm']:.2f}x")
    print(f"cachet time per hit (inside the wrapper, median of runs): {statistics.median(per_hit_ms):.1f} ms")
    for name in warm_variants:
        print(f"{name} / cachet warm: {med[name] / med['cachet warm']:.3f}x; "
              f"per hit {statistics.median(variant_hit_ms[name]):.2f} ms "
              f"(with reports and a live server: {statistics.median(per_hit_ms):.2f} ms)")
    print()
    print("Reproduce: python3 bench/build.py --runs", args.runs)
    if args.json:
        Path(args.json).write_text(json.dumps({"times": times, "per_hit_ms": per_hit_ms,
                                               "variant_hit_ms": variant_hit_ms}, indent=2))


# The line each edit changes: (file, original text, text with {n}).
EDITS = {
    "members": ("report/src/lib.rs", '"edit 0"', '"edit {n}"'),
    "service": ("src/main.rs", None, "\nconst _BENCH_EDIT: u32 = {n};\n"),
}


def dev_profile(args):
    """The default dev profile: warm rebuilds with members compiled incrementally, and the edit
    loop. Prints medians and ratios measured side by side."""
    for tool in (args.cachet, args.sccache):
        if not Path(tool).is_file():
            sys.exit(f"{tool} is missing: run scripts/setup.sh and cargo build --release -p cachet")
    scratch = Path(args.scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    env0 = base_env()
    del env0["CARGO_INCREMENTAL"]
    workloads = {
        "members": (ROOT / "crates/cachet/tests/fixtures/members", "app"),
        "service": (Path(args.workload), "wl-service"),
    }
    results = {}
    for name, (source, program) in workloads.items():
        work = scratch / name
        shutil.copytree(source, work, ignore=shutil.ignore_patterns("target"))
        if (work / "Cargo.lock").exists():
            sh(["cargo", "fetch", "--locked"], env=env0, cwd=work)
            build = ["cargo", "build", "--locked", "--offline"]
        else:
            build = ["cargo", "build", "--offline"]
        # cachet builds in target/ (as a user's build does); plain and sccache in their own
        # directories, so the two edit loops can alternate build by build.
        targets = {"cachet": work / "target", "plain": work / "target-plain",
                   "sccache": work / "target-sccache"}
        edit_file, original, template = EDITS[name]
        pristine = (work / edit_file).read_text()

        def set_edit(n):
            text = pristine if n == 0 else (
                pristine.replace(original, template.format(n=n)) if original
                else pristine + template.format(n=n))
            (work / edit_file).write_text(text)

        def output(tool):
            return sh([str(targets[tool] / "debug" / program)]).stdout

        cachet_env = dict(env0, RUSTC_WRAPPER=args.cachet, CACHET_DIR=str(scratch / f"cachet-{name}"))
        off_env = dict(cachet_env, CARGO_INCREMENTAL="0")
        plain_env = dict(env0, CARGO_TARGET_DIR=str(targets["plain"]))
        sccache_env = dict(sccache_env_for(env0, args.sccache, scratch / f"sccache-{name}"),
                           CARGO_TARGET_DIR=str(targets["sccache"]))
        keys = ["plain rebuild", "cachet warm", "sccache warm"]
        if name == "service":
            keys.insert(2, "cachet warm, CARGO_INCREMENTAL=0")
        keys += [f"{tool} edit {n}" for tool in ("plain", "cachet") for n in range(1, args.edits + 1)]
        times = {k: [] for k in keys}

        def clean(tool):
            shutil.rmtree(targets[tool], ignore_errors=True)

        # Fill the caches once (cold builds are measured by the default mode).
        set_edit(0)
        clean("cachet")
        sh(build, env=cachet_env, cwd=work)
        expected = output("cachet")
        clean("cachet")
        sh(build, env=off_env, cwd=work)
        sh([args.sccache, "--stop-server"], env=sccache_env, check=False)
        sh([args.sccache, "--start-server"], env=sccache_env)
        clean("sccache")
        sh(build, env=sccache_env, cwd=work)
        for run in range(args.runs):
            print(f"{name}: run {run + 1}/{args.runs}", file=sys.stderr)
            order = ["plain", "cachet", "sccache"] if run % 2 == 0 else ["sccache", "cachet", "plain"]
            set_edit(0)
            for tool in order:
                clean(tool)
                if tool == "plain":
                    times["plain rebuild"].append(timed(build, plain_env, work))
                elif tool == "sccache":
                    times["sccache warm"].append(timed(build, sccache_env, work))
                else:
                    if name == "service":
                        times["cachet warm, CARGO_INCREMENTAL=0"].append(timed(build, off_env, work))
                        clean(tool)
                    times["cachet warm"].append(timed(build, cachet_env, work))
                assert output(tool) == expected, f"{tool} changed the output"
            # The edit loops from these fresh builds: one changed line, then each tool rebuilds.
            for n in range(1, args.edits + 1):
                # New values each run, so no edit is a state cachet stored in an earlier run.
                value = run * 1000 + n
                set_edit(value)
                pair = ["plain", "cachet"] if (run + n) % 2 == 0 else ["cachet", "plain"]
                for tool in pair:
                    env = plain_env if tool == "plain" else cachet_env
                    times[f"{tool} edit {n}"].append(timed(build, env, work))
                    if name == "members":
                        assert f"edit {value}" in output(tool), f"{tool}: the edit does not show"
        sh([args.sccache, "--stop-server"], env=sccache_env, check=False)
        set_edit(0)
        results[name] = times

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    rustc = sh(["rustc", "--version"]).stdout.strip()
    load = open("/proc/loadavg").read().split()[:3]
    print()
    print(f"Default dev profile (incremental on), {args.runs} runs, medians")
    print(f"Machine: {os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}; {rustc}; "
          f"load average at the end {' '.join(load)}")
    for name, times in results.items():
        med = {k: statistics.median(v) for k, v in times.items()}
        print()
        print(f"### {name}")
        print()
        print("| scenario | median | runs (s) |")
        print("|---|---:|---|")
        for k, v in times.items():
            print(f"| {k} | {med[k]:.2f} s | {', '.join(f'{x:.2f}' for x in v)} |")
        print()
        target = " (target: at most 0.25x)" if name == "members" else ""
        print(f"cachet warm / sccache warm: {med['cachet warm'] / med['sccache warm']:.3f}x{target}")
        print(f"cachet warm / plain rebuild: {med['cachet warm'] / med['plain rebuild']:.3f}x")
        if "cachet warm, CARGO_INCREMENTAL=0" in med:
            print(f"cachet warm / cachet warm with CARGO_INCREMENTAL=0: "
                  f"{med['cachet warm'] / med['cachet warm, CARGO_INCREMENTAL=0']:.3f}x "
                  f"(target: no worse)")
        print(f"edit 1 (first after a restored build): cachet / plain: "
              f"{med['cachet edit 1'] / med['plain edit 1']:.3f}x")
        later = range(2, args.edits + 1)
        if later:
            cachet_later = statistics.median([x for n in later for x in times[f"cachet edit {n}"]])
            plain_later = statistics.median([x for n in later for x in times[f"plain edit {n}"]])
            paired = statistics.median([c / p for n in later
                                        for c, p in zip(times[f"cachet edit {n}"], times[f"plain edit {n}"])])
            print(f"edits 2..{args.edits}: cachet {cachet_later:.3f} s, plain {plain_later:.3f} s, "
                  f"ratio of medians {cachet_later / plain_later:.3f}x; "
                  f"paired (median of per-edit ratios, {len(later) * args.runs} edits): {paired:.3f}x "
                  f"(target: at most 1.05x)")
    print()
    print(f"Reproduce: python3 bench/build.py --dev-profile --runs {args.runs} --edits {args.edits}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
