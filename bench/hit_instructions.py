#!/usr/bin/env python3
"""The wrapper's hit path, old binary against new: instructions and system calls per hit.

Wall time on a shared machine is noise; the instructions a process executes (valgrind's
callgrind) and the system calls it makes (strace) are not. This benchmark counts both for
every wrapper call of a warm build of a workload, for two cachet binaries, and compares the
same calls. Usage (from the repository root; needs valgrind, strace and callgrind_annotate):

    python3 bench/hit_instructions.py --old-ref 41dddda
    python3 bench/hit_instructions.py --old /path/to/old/cachet [--new target/release/cachet]
    python3 bench/hit_instructions.py --old-ref 41dddda --server   # reports spooled, as build.py

--old-ref REF checks REF out in a git worktree under the scratch directory and builds it
there with its own target directory (seeded once by a copy of this tree's target/, so only
what differs compiles). --new defaults to this tree's target/release/cachet.

For each binary, in the same scratch copy of the workload (same path, so every rustc
argument is the same for both): a fresh CACHET_DIR; with CARGO_INCREMENTAL=0 a cold build
through the binary (filling the cache); then warm builds after `cargo clean`, each with
RUSTC_WRAPPER (and the C compilers, set up as bench/build.py does) pointing at a small script
that runs the binary under a tool, with `cargo build -j1` so calls run one at a time:

  callgrind, first hits   valgrind --tool=callgrind --trace-children=no; the hit records of
                          explain/ (written the first time an entry is restored) removed first
  callgrind, repeat hits  the same with those records left from the build before
  strace, first / repeat  strace -f -C -y -T on the same calls (counts as strace -c -f, plus
                          each call's trace, to tell which file each call touches)

A call is matched to its journal record by order (one call at a time), and between binaries
by crate name plus a hash of its arguments. Only calls that hit in both are compared. It
prints the total and per-hit instructions, the crates that changed most, the functions whose
inclusive instructions changed most, the share of a hit taken by its bookkeeping (the hit
record, the statistics update, the journal append, the call report), and the system calls by
name and by the file they touch. rustc itself is never traced: a hit does not run it, and a
pass-through call's exec'd rustc runs natively (--trace-children=no).

--server runs each binary's own `cachet server` (ephemeral store) on loopback and sets
CACHET_SERVER, as bench/build.py's `cachet warm` does: hits are still local, but each call
also appends its dashboard report to the spool.
"""

import argparse
import collections
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build  # noqa: E402  (bench/build.py: the environment and server helpers)

ROOT = build.ROOT
sh = build.sh

# Inclusive instructions of these functions are a hit's bookkeeping (the names as callgrind
# shows them; a function that is inlined into its caller does not show, and counts as 0).
BOOKKEEPING = {
    "hit record": "cachet_wrapper::explain::remember_hit",
    "statistics": "cachet_wrapper::stats::apply",
    "journal": "cachet_wrapper::journal::append",
    "call report": "cachet_wrapper::reports::call_done",
}

# What a system call touches, by the paths in its line of the trace (first match wins).
FILE_KINDS = [
    ("hit record", re.compile(r"/explain/")),
    ("statistics", re.compile(r"/stats(\.json|\.lock)|/locks/stats|\.stats\.json")),
    ("journal", re.compile(r"/journal")),
    ("call report", re.compile(r"/reports?/|/spool|/outbox")),
    ("target/", re.compile(r"/work-(old|new)/target/")),
    ("rest of the cache", re.compile(r"/cache-(old|new)/")),
]

WRAPPER = """#!/bin/sh
# Written by bench/hit_instructions.py: one wrapper call under {tool}.
d='{out}'
printf '%s\\n' "$$" >> "$d/calls"
printf '%s\\0' "$@" > "$d/$$.args"
exec {command} '{binary}' "$@"
"""

TOOLS = {
    "callgrind": "valgrind --tool=callgrind --trace-children=no --log-file=\"$d/$$.vg\" "
                 "--callgrind-out-file=\"$d/$$.cg\"",
    "strace": "strace -f -C -y -T -qq -o \"$d/$$.st\"",
}


def build_old(ref, scratch):
    """The release binary of `ref`, built in its own worktree and target directory."""
    src = scratch / f"old-{ref}"
    binary = src / "target/release/cachet"
    if not binary.is_file():
        if not src.exists():
            sh(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(src), ref])
        if not (src / "target").exists() and (ROOT / "target").exists():
            print(f"seeding {src}/target from {ROOT}/target", file=sys.stderr)
            sh(["cp", "-a", str(ROOT / "target"), str(src / "target")])
        print(f"building {ref} in {src}", file=sys.stderr)
        sh(["cargo", "build", "--release", "-p", "cachet"], cwd=src, quiet=False,
           env=dict(build.base_env(), CARGO_TARGET_DIR=str(src / "target")))
    return binary


class Server:
    """A `cachet server` of the measured binary on a free loopback port (older binaries have
    no --port-file), with an ephemeral store; stopped at exit."""

    def __init__(self, binary, log):
        port = build.free_port()
        self.url = f"http://127.0.0.1:{port}"
        with open(log, "w") as f:
            self.proc = subprocess.Popen(
                [str(binary), "server", "--listen", f"127.0.0.1:{port}", "--storage", "ephemeral"],
                stdout=subprocess.DEVNULL, stderr=f, start_new_session=True)
        build.stop_on_exit(self.stop)
        deadline = time.monotonic() + 60
        while sh(["curl", "-sf", f"{self.url}/healthz"], check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"cachet server did not start:\n{Path(log).read_text()}")
            time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


def crate_name(args):
    for i, a in enumerate(args):
        if a == "--crate-name" and i + 1 < len(args):
            return args[i + 1]
    return None


def read_args(path):
    return path.read_bytes().decode(errors="replace").split("\0")[:-1]


def journal_lines(cache):
    p = cache / "journal.jsonl"
    return p.read_text().splitlines() if p.exists() else []


def traced_build(label, tool, binary, work, env, out, cache, journal_from):
    """One warm build with every wrapper call under `tool`. Returns {call key: (outcome, file)}."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    wrap_dir = out / "bin"
    wrap_dir.mkdir()
    # Named cachet, so that the cc crate knows the wrapper (CC_KNOWN_WRAPPER_CUSTOM).
    script = wrap_dir / "cachet"
    script.write_text(WRAPPER.format(tool=tool, out=out, command=TOOLS[tool], binary=binary))
    script.chmod(0o755)
    traced = dict(env, RUSTC_WRAPPER=str(script))
    for k in list(traced):
        if k.startswith(("CC_", "CXX_")) and k != "CC_KNOWN_WRAPPER_CUSTOM":
            traced[k] = traced[k].replace(str(binary), str(script))
    shutil.rmtree(work / "target", ignore_errors=True)
    print(f"{label}: warm build under {tool} ({out.name})", file=sys.stderr)
    sh(["cargo", "build", "--locked", "--offline", "-j1"], env=traced, cwd=work)
    pids = (out / "calls").read_text().split()
    records = [json.loads(line) for line in journal_lines(cache)[journal_from:]]
    if len(pids) != len(records):
        sys.exit(f"{label}: {len(pids)} wrapper calls but {len(records)} journal records")
    calls, seen = {}, collections.Counter()
    suffix = {"callgrind": "cg", "strace": "st"}[tool]
    for pid, record in zip(pids, records):
        args = read_args(out / f"{pid}.args")
        name = crate_name(args) or record.get("krate") or "?"
        if record.get("krate") and crate_name(args) and record["krate"] != crate_name(args):
            sys.exit(f"{label}: call {pid} is {crate_name(args)}, its record {record['krate']}")
        # The scratch copy's path is the label's own: compared as one placeholder.
        same = "\0".join(args).replace(str(work), "<work>")
        digest = hashlib.sha256(same.encode()).hexdigest()[:12]
        key = f"{name} {digest}"
        seen[key] += 1
        if seen[key] > 1:
            key += f" #{seen[key]}"
        calls[key] = (record["outcome"], str(out / f"{pid}.{suffix}"))
    return calls


def callgrind_total(path):
    for line in Path(path).read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    return 0


ANNOTATED = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(.+?)(?:\s+\[[^\]]*\])?\s*$")


def callgrind_functions(path):
    """Inclusive instructions per function (file prefix and object suffix dropped)."""
    out = sh(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(path)]).stdout
    funcs = collections.Counter()
    for line in out.splitlines():
        m = ANNOTATED.match(line)
        if not m or ":" not in m.group(2):
            continue
        name = m.group(2).split(":", 1)[1] if not m.group(2).startswith(("<", "0x")) else m.group(2)
        if name.startswith(("0x", "???")):
            continue  # an address: not comparable between binaries
        name = re.sub(r"::h[0-9a-f]{16}$", "", name)
        ir = int(m.group(1).replace(",", ""))
        funcs[name] = max(funcs[name], ir)
        # Modules moved between versions (entry::EntryHead, entry::read::EntryHead): also
        # counted under the name without its lower-case module path.
        short = MODULES.sub("", name)
        if short != name:
            funcs["~" + short] = max(funcs["~" + short], ir)
    return funcs


MODULES = re.compile(r"\b[a-z_][a-z0-9_]*::")
SYSCALL = re.compile(r"^(?:\d+\s+)?([a-z_0-9]+)\(")
SUMMARY_ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?([a-z_0-9]+)\s*$")
DURATION = re.compile(r"<([\d.]+)>\s*$")


def strace_counts(path):
    """(calls by syscall as strace -c counts them, calls by file kind, seconds by file kind)."""
    by_name, by_kind, secs = collections.Counter(), collections.Counter(), collections.Counter()
    summary = False
    for line in Path(path).read_text(errors="replace").splitlines():
        if "% time" in line:
            summary = True
            continue
        if summary:
            m = SUMMARY_ROW.match(line)
            if m and m.group(3) != "total":
                by_name[m.group(3)] += int(m.group(1))
            continue
        m = SYSCALL.match(line)
        if not m or "resumed>" in line:
            continue
        kind = next((k for k, pat in FILE_KINDS if pat.search(line)), "other")
        by_kind[kind] += 1
        d = DURATION.search(line)
        if d:
            secs[kind] += float(d.group(1))
    return by_name, by_kind, secs


def file_digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def measure(label, binary, args, scratch, env0):
    """Cold build, then the traced warm builds, in the label's own copy of the workload.
    Returns {mode: {tool: calls}}, saved beside the traces and reused while the binary, the
    modes and the tools are the same (so a label can be measured in a separate process)."""
    saved = scratch / f"{label}.json"
    wanted = {"binary": file_digest(binary), "modes": args.modes, "tools": args.tools,
              "server": args.server}
    if saved.exists():
        previous = json.loads(saved.read_text())
        if previous["wanted"] == wanted:
            print(f"{label}: reusing {saved}", file=sys.stderr)
            return previous["results"]
    # Both labels' copies have paths of one length (old/new), so their keys hash alike.
    work = scratch / f"work-{label}"
    if not work.exists():
        shutil.copytree(args.workload, work, ignore=shutil.ignore_patterns("target"))
        sh(["cargo", "fetch", "--locked"], env=env0, cwd=work)
    cache = scratch / f"cache-{label}"
    shutil.rmtree(cache, ignore_errors=True)
    env = dict(env0, RUSTC_WRAPPER=str(binary), CACHET_DIR=str(cache))
    host = next(l.split()[1] for l in sh(["rustc", "-vV"]).stdout.splitlines()
                if l.startswith("host:"))
    host_u = host.replace("-", "_").replace(".", "_")
    env.update({"CC_KNOWN_WRAPPER_CUSTOM": "cachet", f"CC_{host_u}": f"{binary} cc",
                f"CXX_{host_u}": f"{binary} c++"})
    server = None
    if args.server:
        server = Server(binary, scratch / f"server-{label}.log")
        env["CACHET_SERVER"] = server.url
    shutil.rmtree(work / "target", ignore_errors=True)
    print(f"{label}: cold build", file=sys.stderr)
    sh(["cargo", "build", "--locked", "--offline"], env=env, cwd=work)
    results = {}
    warmed = False
    for tool in args.tools:
        for mode in args.modes:
            if mode == "first":
                for record in cache.glob("explain/*/hit-*.json"):
                    record.unlink()
            elif not warmed:
                # Repeat hits: one warm build first leaves the hits' records.
                shutil.rmtree(work / "target", ignore_errors=True)
                sh(["cargo", "build", "--locked", "--offline"], env=env, cwd=work)
            warmed = True
            start = len(journal_lines(cache))
            out = scratch / f"{label}-{tool}-{mode}"
            calls = traced_build(label, tool, binary, work, env, out, cache, start)
            results.setdefault(mode, {})[tool] = calls
    if server:
        server.stop()
    saved.write_text(json.dumps({"wanted": wanted, "results": results}))
    return results


def fmt(n):
    return f"{n / 1e6:,.1f} M"


def report(results, labels):
    old, new = labels
    summary = {}
    for mode in results[old]:
        print(f"\n## {mode} hits\n")
        if "callgrind" in results[old][mode]:
            summary[mode] = compare_instructions(results, labels, mode)
        if "strace" in results[old][mode]:
            compare_syscalls(results, labels, mode)
    return summary


def hits_in_both(results, labels, mode, tool):
    old, new = (results[label][mode][tool] for label in labels)
    both = sorted(k for k in old if k in new and old[k][0].startswith("hit")
                  and new[k][0].startswith("hit"))
    only = {label: sum(1 for k, (o, _) in results[label][mode][tool].items()
                       if o.startswith("hit") and k not in both) for label in labels}
    return both, old, new, only


def compare_instructions(results, labels, mode):
    both, old, new, only = hits_in_both(results, labels, mode, "callgrind")
    per_call = {k: (callgrind_total(old[k][1]), callgrind_total(new[k][1])) for k in both}
    total_old = sum(o for o, _ in per_call.values())
    total_new = sum(n for _, n in per_call.values())
    n = len(both)
    print(f"Instructions over the {n} calls that hit in both (hits in one only: {only}):\n")
    print("| binary | total | per hit |")
    print("|---|---:|---:|")
    for label, total in zip(labels, (total_old, total_new)):
        print(f"| {label} | {fmt(total)} | {fmt(total / max(n, 1))} |")
    print(f"\nnew / old: {total_new / max(total_old, 1):.4f}\n")
    ranked = sorted(per_call.items(), key=lambda kv: kv[1][1] - kv[1][0])
    print("Crates whose hit changed most (old -> new instructions):\n")
    shown = ranked if len(ranked) <= 10 else ranked[:5] + ranked[-5:]
    for k, (o, nw) in shown:
        print(f"  {k:44} {fmt(o):>10} -> {fmt(nw):>10} ({(nw - o) / max(o, 1):+.1%})")
    biggest = max(per_call.items(), key=lambda kv: kv[1][1], default=None)
    if biggest:
        print(f"  largest hit (new): {biggest[0]} {fmt(biggest[1][1])}")
    funcs = {}
    for label, calls in zip(labels, (old, new)):
        total = collections.Counter()
        for k in both:
            for name, ir in callgrind_functions(calls[k][1]).items():
                total[name] += ir
        funcs[label] = total
    names = set(funcs[labels[0]]) | set(funcs[labels[1]])
    delta = sorted(names, key=lambda f: abs(funcs[labels[1]][f] - funcs[labels[0]][f]),
                   reverse=True)
    print("\nFunctions whose inclusive instructions changed most (summed over these hits; ~: "
          "without module paths, so that a function that moved is matched):\n")
    for f in [f for f in delta if f.startswith("~")][:20]:
        o, nw = funcs[labels[0]][f], funcs[labels[1]][f]
        print(f"  {nw - o:>+14,} {o:>14,} -> {nw:>14,}  {f[:110]}")
    print("\nShare of a hit's instructions (inclusive, summed over these hits):\n")
    for label, total in zip(labels, (total_old, total_new)):
        parts = ", ".join(f"{what} {funcs[label][fn] / max(total, 1):.2%} "
                          f"({funcs[label][fn] / max(n, 1) / 1e3:,.0f} k/hit)"
                          for what, fn in BOOKKEEPING.items())
        print(f"  {label}: {parts}")
    return {"hits": n, "old": total_old, "new": total_new, "per_call": per_call}


def compare_syscalls(results, labels, mode):
    both, old, new, only = hits_in_both(results, labels, mode, "strace")
    n = len(both)
    print(f"\nSystem calls over the {n} calls that hit in both (strace -f -C; hits in one only: "
          f"{only}):\n")
    counted = {}
    for label, calls in zip(labels, (old, new)):
        names, kinds, secs = collections.Counter(), collections.Counter(), collections.Counter()
        for k in both:
            a, b, c = strace_counts(calls[k][1])
            names.update(a)
            kinds.update(b)
            secs.update(c)
        counted[label] = (names, kinds, secs)
    (on, ok, os_), (nn, nk, ns) = counted[labels[0]], counted[labels[1]]
    print(f"| syscall | {labels[0]} | {labels[1]} |")
    print("|---|---:|---:|")
    print(f"| **all** | {sum(on.values()):,} | {sum(nn.values()):,} |")
    print(f"| per hit | {sum(on.values()) / max(n, 1):.1f} | {sum(nn.values()) / max(n, 1):.1f} |")
    for name in sorted(set(on) | set(nn), key=lambda s: -(on[s] + nn[s])):
        if on[name] != nn[name] or on[name] + nn[name] >= n:
            print(f"| {name} | {on[name]:,} | {nn[name]:,} |")
    print("\nBy what the call touches (calls; seconds in them, under strace, noisy):\n")
    print(f"| file | {labels[0]} | {labels[1]} |")
    print("|---|---:|---:|")
    for kind in [k for k, _ in FILE_KINDS] + ["other"]:
        print(f"| {kind} | {ok[kind]:,} ({os_[kind]:.3f} s) | {nk[kind]:,} ({ns[kind]:.3f} s) |")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    old = ap.add_mutually_exclusive_group(required=True)
    old.add_argument("--old", help="the old cachet binary")
    old.add_argument("--old-ref", help="a commit to build as the old binary")
    ap.add_argument("--new", default=str(ROOT / "target/release/cachet"))
    ap.add_argument("--workload", default=str(ROOT.parent / "shared/workloads/service"))
    ap.add_argument("--scratch", default="/tmp/cachet-hit-instructions")
    ap.add_argument("--server", action="store_true",
                    help="with a cachet server on loopback (call reports spooled)")
    ap.add_argument("--modes", default="first,repeat",
                    help="first (hit records removed before), repeat, or both")
    ap.add_argument("--tools", default="callgrind,strace")
    ap.add_argument("--json", help="also write per-call instructions to this file")
    ap.add_argument("--only", choices=["old", "new"],
                    help="measure one binary and save it (a later run without --only reuses it)")
    args = ap.parse_args()
    args.modes = args.modes.split(",")
    args.tools = args.tools.split(",")
    for tool in ("valgrind", "strace", "callgrind_annotate"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing")
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    old_bin = Path(args.old) if args.old else build_old(args.old_ref, scratch)
    labels = (f"old ({args.old_ref or old_bin})", "new")
    binaries = {labels[0]: old_bin.resolve(), labels[1]: Path(args.new).resolve()}
    env0 = build.base_env()
    results = {}
    for label, binary in binaries.items():
        safe = "old" if label != "new" else "new"
        if args.only in (None, safe):
            results[label] = measure(safe, binary, args, scratch, env0)
    if args.only:
        return
    print(f"\nWorkload: {Path(args.workload).name} (debug, CARGO_INCREMENTAL=0, cargo -j1), "
          f"{'with a cachet server (reports spooled)' if args.server else 'local cache only'}")
    print(f"old: {binaries[labels[0]]}\nnew: {binaries[labels[1]]}")
    summary = report(results, labels)
    print(f"\nReproduce: python3 bench/hit_instructions.py "
          f"{'--old-ref ' + args.old_ref if args.old_ref else '--old ' + args.old} "
          f"--new {args.new} --modes {','.join(args.modes)}{' --server' if args.server else ''}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
