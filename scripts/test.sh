#!/usr/bin/env bash
# The whole test suite: set-up, formatting, lints, then every test (unit, integration, real
# builds of real crate graphs, real peer clients). This is the README's test command and what
# .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== import cycles between modules"
# Every crate of the workspace (no directory: all of them); exits 1 and names the lines of a cycle.
python3 scripts/module_cycles.py
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo build --release --locked -p cachet
export CACHET_TEST_BIN="$PWD/target/release/cachet"
cargo test --workspace --locked -- --test-threads="${CACHET_TEST_THREADS:-2}"
