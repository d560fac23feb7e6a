#!/usr/bin/env python3
"""The edit loop, A/B: several wrappers (or settings) against plain cargo, interleaved edit by edit.

`bench/build.py --dev-profile` compares cachet with plain cargo in 40 edits; a difference of
one percent between two cachet binaries, or between cachet and a wrapper that only starts
rustc, needs more edits than that. Each variant here gets its own copy of the `members` test
fixture and its own cache directory, is built cold, cleaned and built again (cachet restores
every member), and then every edit (one line of `report/src/lib.rs`) is built by every
variant, one right after the other, the order rotating, so that a slow moment of the machine
falls on all of them. Prints, per variant, the median rebuild and its ratio to plain cargo's
(the ratio of the medians, and the median of the per-edit ratios), from the fourth edit on.

    python3 bench/edit_ab.py --edits 150 --exec-only main=target/release/cachet \\
        disabled=target/release/cachet@CACHET_DISABLE=1

A variant is NAME=WRAPPER, optionally followed by @VAR=VALUE settings for it; plain cargo (no
wrapper) is always measured as `plain`. `--exec-only` adds the least any wrapper costs: a C
program that only replaces itself with rustc (`execv`), compiled with `cc`. No time is
asserted: the numbers are for reading.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "crates/cachet/tests/fixtures/members"
EDITED = "report/src/lib.rs"
SKIPPED = 3  # the first edits after a restored build compile more (see docs/design.md)


def variant(text):
    name, _, spec = text.partition("=")
    wrapper, *settings = spec.split("@")
    if not name or not wrapper:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=WRAPPER[@VAR=VALUE...]")
    env = dict(s.split("=", 1) for s in settings)
    return name, str(Path(wrapper).resolve()) if os.sep in wrapper else wrapper, env


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edits", type=int, default=150)
    parser.add_argument("--scratch", help="directory for the copies (default: a temporary one)")
    parser.add_argument("--exec-only", action="store_true", help="add a wrapper that only execs rustc")
    parser.add_argument("variants", nargs="*", type=variant, metavar="NAME=WRAPPER[@VAR=VALUE]")
    args = parser.parse_args()
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="cachet-edit-ab-"))
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CACHET_", "RUSTC_WRAPPER", "CARGO_INCREMENTAL", "CARGO_TARGET_DIR"))
    }
    variants = list(args.variants)
    if args.exec_only:
        scratch.mkdir(parents=True, exist_ok=True)
        source = scratch / "exec_only.c"
        source.write_text("#include <unistd.h>\nint main(int c, char **v) { execv(v[1], v + 1); return 127; }\n")
        subprocess.run(["cc", "-O2", "-o", str(scratch / "exec_only_wrapper"), str(source)], check=True)
        variants.append(("exec-only", str(scratch / "exec_only_wrapper"), {}))
    if any(name == "plain" for name, _, _ in variants):
        parser.error("`plain` is always measured; name the variants otherwise")
    setups = {}
    for name, wrapper, settings in variants + [("plain", None, {})]:
        copy = scratch / name
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(FIXTURE, copy)
        env = dict(base)
        if wrapper:
            env.update(settings, RUSTC_WRAPPER=wrapper, CACHET_DIR=str(scratch / f"{name}-cache"))
            shutil.rmtree(scratch / f"{name}-cache", ignore_errors=True)
        for step in (["build"], ["clean"], ["build"]):
            subprocess.run(["cargo", *step, "-q"], cwd=copy, env=env, check=True)
        setups[name] = (copy, env)
    times = {name: [] for name in setups}
    names = list(setups)
    for edit in range(1, args.edits + 1):
        turn = edit % len(names)
        order = names[turn:] + names[:turn]
        for name in order if edit % 2 else reversed(order):
            copy, env = setups[name]
            source = copy / EDITED
            source.write_text(re.sub(r'"edit \d+"', f'"edit {edit}"', source.read_text()))
            started = time.perf_counter()
            subprocess.run(["cargo", "build", "-q"], cwd=copy, env=env, check=True)
            times[name].append(time.perf_counter() - started)
    plain = times["plain"][SKIPPED:]
    print(f"Edit loop on the members fixture, {args.edits} edits, from edit {SKIPPED + 1} on")
    print("| variant | median | ratio of medians | paired (median of per-edit ratios) |")
    print("|---|---:|---:|---:|")
    for name, measured in times.items():
        measured = measured[SKIPPED:]
        ratio = statistics.median(measured) / statistics.median(plain)
        paired = statistics.median(a / b for a, b in zip(measured, plain))
        print(f"| {name} | {statistics.median(measured) * 1000:.1f} ms | {ratio:.3f}x | {paired:.3f}x |")
    shown = " ".join(a for a in sys.argv[1:] if "=" in a)
    exec_only = " --exec-only" if args.exec_only else ""
    print(f"\nReproduce: python3 bench/edit_ab.py --edits {args.edits}{exec_only} {shown}")
    if not args.scratch:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
