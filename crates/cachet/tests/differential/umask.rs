//! Permission bits of restored files. A plain build under `umask 077` makes `700` programs and
//! `600` libraries; cachet restored the bits recorded by the build that stored the entry
//! (`755`/`644` under the usual `022`). Now a restored file is created with the mode the
//! compiler asks for (`0o777` for an executable, `0o666` otherwise) and this build's umask
//! applies (`restore.rs`, `creation_mode`).
//!
//! Two forms: a library and a program stored under `022` and restored under `077` in the second
//! checkout; and a build script, a library and a program restored under `027` (stored under
//! `022`) and under `002` (stored under `027`), where a group-writable program is expected.

use std::path::Path;

use super::{assert_restored, check, replace, write_files, Case, Step, BUILD};

const CASE: Case = Case {
    name: "umask on restore",
    files: &[
        (
            "Cargo.toml",
            "[workspace]\nmembers = [\"lib\", \"app\"]\nresolver = \"2\"\n",
        ),
        (
            "lib/Cargo.toml",
            "[package]\nname = \"lib\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        ),
        ("lib/src/lib.rs", "pub fn value() -> u32 { 7 }\n"),
        (
            "app/Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nlib = { path = \"../lib\" }\n",
        ),
        (
            "app/src/main.rs",
            "fn main() { println!(\"{}\", lib::value()); }\n",
        ),
    ],
    steps: &[Step::run("umask 077 from now on (the second checkout restores under it)", |r| write_files(r, &[("case.env", "UMASK=077\n")]))],
    modes: true,
    reproducible: true,
    ..BUILD
};

#[test]
fn restored_files_get_this_builds_umask() {
    assert_restored(&check(&CASE), &["lib"]);
}

/// A build script whose value the library and the program show: changing it makes cargo
/// rebuild all three, and changing it back restores all three.
const BUILD_RS: &str = "fn main() { println!(\"cargo:rustc-env=VALUE=first\"); }\n";

/// Sets the builds' umask and changes the build script's value (`from` to `to`).
fn umask_and_value(root: &Path, umask: &str, from: &str, to: &str) {
    write_files(root, &[("case.env", &format!("UMASK={umask}\n"))]);
    replace(root, "lib/build.rs", from, to);
}

const WITH_BUILD_SCRIPT: Case = Case {
    name: "umask on restore of a build script and a program",
    files: &[
        (
            "Cargo.toml",
            "[workspace]\nmembers = [\"lib\", \"app\"]\nresolver = \"2\"\n",
        ),
        (
            "lib/Cargo.toml",
            "[package]\nname = \"lib\"\nversion = \"0.1.0\"\nedition = \"2021\"\nbuild = \"build.rs\"\n",
        ),
        ("lib/build.rs", BUILD_RS),
        ("lib/src/lib.rs", "pub fn value() -> &'static str { env!(\"VALUE\") }\n"),
        (
            "app/Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nlib = { path = \"../lib\" }\n",
        ),
        (
            "app/src/main.rs",
            "fn main() { println!(\"{}\", lib::value()); }\n",
        ),
    ],
    steps: &[
        Step::run("umask 027, a new value (compiled, stored under 027)", |r| {
            umask_and_value(r, "027", "first", "second")
        }),
        Step::run("the first value again (restored under 027)", |r| {
            umask_and_value(r, "027", "second", "first")
        }),
        Step::run("umask 002, the second value (restored under 002)", |r| {
            umask_and_value(r, "002", "first", "second")
        }),
    ],
    modes: true,
    reproducible: true,
    ..BUILD
};

#[test]
fn restored_build_scripts_and_programs_get_this_builds_umask() {
    assert_restored(
        &check(&WITH_BUILD_SCRIPT),
        &["build_script_build", "lib", "app"],
    );
}
