//! What cargo prints. cachet compiles with `--remap-path-prefix`, which rustc applies to
//! diagnostics too: before the fix, a warning in a path dependency outside the workspace named
//! `./src/lib.rs` (a workspace file), and generated code under `OUT_DIR` showed as
//! `$TARGET/...`, in human output and in JSON `file_name` fields that editors follow. Messages
//! must name the files of this build, as a plain build's do, on a miss (the first checkout) and
//! on a hit (the second one, at another path, where the workspace members are restored and
//! their warnings replayed).

use cachet_wrapper::journal::Outcome;

use super::{check, Case, BUILD};
use crate::util::outcomes_for;

const GEN_BUILD_RS: &str = r#"
fn main() {
    let out = std::env::var("OUT_DIR").unwrap();
    std::fs::write(
        format!("{out}/gen.rs"),
        "pub const GENERATED: u32 = 7;\nfn generated_but_unused() {}\n",
    )
    .unwrap();
}
"#;

const FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        "[workspace]\nmembers = [\"gen\", \"app\", \"side\"]\nexclude = [\"vendor\"]\nresolver = \"2\"\n",
    ),
    (
        "gen/Cargo.toml",
        "[package]\nname = \"gen\"\nversion = \"0.1.0\"\nedition = \"2021\"\nbuild = \"build.rs\"\n",
    ),
    ("gen/build.rs", GEN_BUILD_RS),
    (
        "gen/src/lib.rs",
        "include!(concat!(env!(\"OUT_DIR\"), \"/gen.rs\"));\n",
    ),
    (
        "app/Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ngen = { path = \"../gen\" }\n",
    ),
    (
        "app/src/main.rs",
        "fn main() {\n    let unused_in_member = 1;\n    println!(\"{}\", gen::GENERATED);\n}\n",
    ),
    (
        "side/Cargo.toml",
        "[package]\nname = \"side\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\noutside = { path = \"../vendor/outside\" }\n",
    ),
    ("side/src/lib.rs", "pub fn f() -> u32 { outside::g() }\n"),
    (
        "vendor/outside/Cargo.toml",
        "[package]\nname = \"outside\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    ),
    (
        "vendor/outside/src/lib.rs",
        "pub fn g() -> u32 {\n    let unused_outside = 2;\n    3\n}\n",
    ),
];

fn assert_restored(records: &[cachet_wrapper::journal::Record]) {
    // The warnings of the restored crates were replayed, not produced by a compile.
    for krate in ["gen", "app"] {
        assert_eq!(
            outcomes_for(records, krate),
            vec![Outcome::HitLocal],
            "{krate}: {records:#?}"
        );
    }
}

#[test]
fn human_messages_name_this_builds_files() {
    let records = check(&Case {
        name: "human messages",
        files: FILES,
        messages: true,
        reproducible: true,
        ..BUILD
    });
    assert_restored(&records);
}

#[test]
fn json_messages_name_this_builds_files() {
    let records = check(&Case {
        name: "JSON messages",
        files: FILES,
        cargo: &["build", "--message-format=json"],
        messages: true,
        ..BUILD
    });
    assert_restored(&records);
}
