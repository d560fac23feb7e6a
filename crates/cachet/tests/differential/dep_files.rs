//! Dep-info files restored into another checkout. cargo reads rustc's `.d` file to know what
//! to watch, and writes its own `target/debug/app.d` from it; a restored one must name this
//! checkout's files. rustc writes a target path as it is (a space is not escaped) and escapes
//! spaces in dependencies as `\ `: the rewrite used to expect `\ ` in targets too, so an
//! out-dir whose path holds a space kept the first build's targets. The second checkout here
//! is under a directory with a space; the crates read generated code from `OUT_DIR`, so their
//! dependencies name the target directory too.

use std::path::Path;

use cachet_wrapper::journal::Outcome;

use super::{assert_restored, check, leak_files, Case, Step, BUILD};
use crate::util::outcomes_for;

const GEN_BUILD_RS: &str = r#"
fn main() {
    let out = std::env::var("OUT_DIR").unwrap();
    std::fs::write(format!("{out}/gen.rs"), "pub const GENERATED: u32 = 7;\n").unwrap();
}
"#;

const CASE: Case = Case {
    name: "dep-info files relocated",
    files: &[
        (
            "Cargo.toml",
            "[workspace]\nmembers = [\"gen\", \"app\"]\nresolver = \"2\"\n",
        ),
        (
            "gen/Cargo.toml",
            "[package]\nname = \"gen\"\nversion = \"0.1.0\"\nedition = \"2021\"\nbuild = \"build.rs\"\n",
        ),
        ("gen/build.rs", GEN_BUILD_RS),
        (
            "gen/src/lib.rs",
            "include!(concat!(env!(\"OUT_DIR\"), \"/gen.rs\"));\npub mod more;\n",
        ),
        ("gen/src/more.rs", "pub const MORE: u32 = 1;\n"),
        (
            "app/Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ngen = { path = \"../gen\" }\n",
        ),
        (
            "app/src/main.rs",
            "fn main() { println!(\"{}\", gen::GENERATED + gen::more::MORE); }\n",
        ),
    ],
    dep_info: true,
    reproducible: true,
    second: "two/with space/proj",
    ..BUILD
};

#[test]
fn restored_dep_info_names_this_checkouts_files() {
    assert_restored(&check(&CASE), &["gen"]);
}

/// The second form: a second checkout under directories named with characters that make's
/// syntax gives a meaning (`#`, `$`) but rustc does not escape, where `gen` is restored; and a
/// crate that reads a file outside the workspace (`include_str!` of an absolute path, under no
/// directory of the build): its dep-info names that file in both checkouts, a change to it is
/// seen, and its result is not stored (`input outside the build's directories`).
#[test]
fn restored_dep_info_names_files_outside_the_workspace_and_odd_paths() {
    let outside = tempfile::tempdir().unwrap();
    let text = outside.path().join("outside.txt");
    std::fs::write(&text, "first").unwrap();
    let files = leak_files(vec![
        (
            "Cargo.toml".into(),
            "[workspace]\nmembers = [\"gen\", \"outside\", \"app\"]\nresolver = \"2\"\n".into(),
        ),
        (
            "gen/Cargo.toml".into(),
            "[package]\nname = \"gen\"\nversion = \"0.1.0\"\nedition = \"2021\"\nbuild = \"build.rs\"\n".into(),
        ),
        ("gen/build.rs".into(), GEN_BUILD_RS.into()),
        (
            "gen/src/lib.rs".into(),
            "include!(concat!(env!(\"OUT_DIR\"), \"/gen.rs\"));\npub mod more;\n".into(),
        ),
        ("gen/src/more.rs".into(), "pub const MORE: u32 = 1;\n".into()),
        (
            "outside/Cargo.toml".into(),
            "[package]\nname = \"outside\"\nversion = \"0.1.0\"\nedition = \"2021\"\n".into(),
        ),
        (
            "outside/src/lib.rs".into(),
            format!("pub const TEXT: &str = include_str!({:?});\n", text.display()),
        ),
        (
            "app/Cargo.toml".into(),
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ngen = { path = \"../gen\" }\noutside = { path = \"../outside\" }\n".into(),
        ),
        (
            "app/src/main.rs".into(),
            "fn main() { println!(\"{} {}\", gen::GENERATED + gen::more::MORE, outside::TEXT); }\n".into(),
        ),
    ]);
    let records = check(&Case {
        name: "dep-info in an odd path, and naming a file outside the workspace",
        files,
        steps: OUTSIDE_STEPS,
        dep_info: true,
        reproducible: true,
        second: "two/odd#dir$x/proj",
        ..BUILD
    });
    assert_restored(&records, &["gen"]);
    assert_eq!(
        outcomes_for(&records, "outside"),
        vec![Outcome::MissNotStored]
    );
}

const OUTSIDE_STEPS: &[Step] = &[Step::run(
    "the file outside the workspace changes",
    change_outside_file,
)];

/// Changes the file `outside/src/lib.rs` includes by absolute path.
fn change_outside_file(root: &Path) {
    let lib = std::fs::read_to_string(root.join("outside/src/lib.rs")).unwrap();
    let path = lib.split("include_str!(\"").nth(1).unwrap();
    std::fs::write(&path[..path.find('"').unwrap()], "second").unwrap();
}
