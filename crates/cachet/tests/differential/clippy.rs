//! `cargo clippy`: what clippy reports depends on `clippy.toml` and on the lint flags cargo
//! passes in `CLIPPY_ARGS` (`cargo clippy -- -W clippy::pedantic`), which rustc never sees as
//! arguments. Both are in the key (`driver.rs`); a lint that differs by either must show as a
//! plain `cargo clippy` shows it, in the same checkout and restored in a second one.
//!
//! clippy-driver also lists `clippy.toml` and `CLIPPY_ARGS` in its own dep-info, a second
//! layer. The first step adds a `clippy.toml` where there was none, which no dep-info names:
//! only the key's own search sees it. `CLIPPY_ARGS` is in every dep-info clippy-driver writes
//! (`# env-dep:CLIPPY_ARGS=`, even without flags), so its two layers cannot be told apart here.

use std::path::Path;

use super::{assert_restored, check, touch, write_files, Case, Step, BUILD};

/// Writes `clippy.toml` with a `too-many-arguments-threshold`; cargo reruns clippy only for
/// what the last dep-info names, so the source is touched when the file is new.
fn threshold(root: &Path, value: u32) {
    write_files(
        root,
        &[(
            "clippy.toml",
            &format!("too-many-arguments-threshold = {value}\n"),
        )],
    );
    touch(root, "src/lib.rs");
}

/// Passes `flags` after `--`: cargo clippy hands them to the driver in `CLIPPY_ARGS`.
fn clippy_args(root: &Path, flags: &str) {
    write_files(root, &[("case.args", &format!("-- {flags}\n"))]);
}

const CASE: Case = Case {
    name: "clippy configuration and lint flags",
    files: &[
        (
            "Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        ),
        (
            "src/lib.rs",
            "pub fn three(a: u32, b: u32, c: u32) -> u32 {\n    a + b + c\n}\n\npub fn items(v: &[u32]) -> u32 {\n    let mut t = 0;\n    for i in 0..v.len() {\n        t += v[i];\n    }\n    t\n}\n",
        ),
    ],
    bin: "",
    cargo: &["clippy"],
    messages: true,
    steps: &[
        Step::run("cargo clippy -- -W clippy::pedantic", |r| {
            clippy_args(r, "-W clippy::pedantic")
        }),
        Step::run("cargo clippy -- -A clippy::needless_range_loop", |r| {
            clippy_args(r, "-A clippy::needless_range_loop")
        }),
        // No dep-info names a file that did not exist: only the key's own search for the
        // configuration (driver.rs) sees this one.
        Step::run("a clippy.toml appears and lowers a threshold", |r| {
            threshold(r, 2)
        }),
        Step::run("clippy.toml raises it again", |r| threshold(r, 5)),
    ],
    ..BUILD
};

#[test]
fn clippy_lints_follow_clippy_toml_and_clippy_args() {
    assert_restored(&check(&CASE), &["app"]);
}
