//! Permission bits of restored files. A plain build under `umask 077` makes `700` programs and
//! `600` libraries; cachet restored the bits recorded by the build that stored the entry
//! (`755`/`644` under the usual `022`). Now a restored file is created with the mode the
//! compiler asks for (`0o777` for an executable, `0o666` otherwise) and this build's umask
//! applies (`restore.rs`, `creation_mode`). The first checkout stores under `022`, the second
//! restores under `077`.

use super::{assert_restored, check, write_files, Case, Step, BUILD};

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
