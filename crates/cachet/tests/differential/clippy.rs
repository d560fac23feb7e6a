//! `cargo clippy`: what clippy reports depends on `clippy.toml` and on the lint flags cargo
//! passes in `CLIPPY_ARGS` (`cargo clippy -- -W clippy::pedantic`), which rustc never sees as
//! arguments. Both are in the key (`driver.rs`); a lint that differs by either must show as a
//! plain `cargo clippy` shows it, in the same checkout and restored in a second one.

use cachet_wrapper::journal::Outcome;

use super::{check, write_files, Case, Step, BUILD};
use crate::util::outcomes_for;

const CASE: Case = Case {
    name: "clippy configuration and lint flags",
    files: &[
        (
            "Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        ),
        ("clippy.toml", "too-many-arguments-threshold = 5\n"),
        (
            "src/lib.rs",
            "pub fn three(a: u32, b: u32, c: u32) -> u32 {\n    a + b + c\n}\n\npub fn items(v: &[u32]) -> u32 {\n    let mut t = 0;\n    for i in 0..v.len() {\n        t += v[i];\n    }\n    t\n}\n",
        ),
    ],
    bin: "",
    cargo: &["clippy"],
    messages: true,
    steps: &[
        Step {
            name: "clippy.toml lowers a lint's threshold",
            edit: |r| write_files(r, &[("clippy.toml", "too-many-arguments-threshold = 2\n")]),
        },
        Step {
            name: "CLIPPY_ARGS turns on a lint group (cargo clippy -- -W clippy::pedantic)",
            edit: |r| write_files(r, &[("case.args", "-- -W clippy::pedantic\n")]),
        },
        Step {
            name: "CLIPPY_ARGS allows a lint (cargo clippy -- -A clippy::needless_range_loop)",
            edit: |r| write_files(r, &[("case.args", "-- -A clippy::needless_range_loop\n")]),
        },
    ],
    ..BUILD
};

#[test]
fn clippy_lints_follow_clippy_toml_and_clippy_args() {
    let records = check(&CASE);
    assert_eq!(
        outcomes_for(&records, "app"),
        vec![Outcome::HitLocal],
        "{records:#?}"
    );
}
