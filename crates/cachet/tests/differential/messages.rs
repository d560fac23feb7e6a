//! What cargo prints. cachet compiles with `--remap-path-prefix`, which rustc applies to
//! diagnostics too: before the fix, a warning in a path dependency outside the workspace named
//! `./src/lib.rs` (a workspace file), generated code under `OUT_DIR` showed as `$TARGET/...`,
//! and a note pointing into a registry crate as `$CARGO_HOME/registry/src/...`, in human
//! output and in JSON `file_name` fields that editors follow. Messages must name the files of
//! this build, as a plain build's do, on a miss (the first checkout) and on a hit (the second
//! one, at another path, where the crates that only warn are restored and their warnings
//! replayed).
//!
//! The workspace warns in a member, in its generated code and in a path dependency outside the
//! workspace, and fails in a member (`bad`) whose errors have notes pointing into each of
//! those and into the registry crate `itoa` (`cargo build --keep-going -j1`: every crate is
//! built, one at a time, so messages come in a fixed order).

use super::{assert_restored, check, Case, BUILD};

const GEN_BUILD_RS: &str = r#"
fn main() {
    let out = std::env::var("OUT_DIR").unwrap();
    std::fs::write(
        format!("{out}/gen.rs"),
        "pub const GENERATED: u32 = 7;\npub fn takes_one(x: u32) -> u32 {\n    x\n}\nfn generated_but_unused() {}\n",
    )
    .unwrap();
}
"#;

const BAD_MAIN_RS: &str = r#"fn main() {
    let unused_bad = 1;
    let _a = gen::takes_one(1, 2);
    let _b = outside::g(5);
    let mut buf = itoa::Buffer::new();
    let _c = buf.format("x");
}
"#;

const FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        "[workspace]\nmembers = [\"gen\", \"app\", \"side\", \"bad\"]\nexclude = [\"vendor\"]\nresolver = \"2\"\n",
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
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ngen = { path = \"../gen\" }\nitoa = \"=1.0.10\"\n",
    ),
    (
        "app/src/main.rs",
        "fn main() {\n    let unused_in_member = 1;\n    let mut buf = itoa::Buffer::new();\n    println!(\"{}\", buf.format(gen::GENERATED));\n}\n",
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
    (
        "bad/Cargo.toml",
        "[package]\nname = \"bad\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ngen = { path = \"../gen\" }\noutside = { path = \"../vendor/outside\" }\nitoa = \"=1.0.10\"\n",
    ),
    ("bad/src/main.rs", BAD_MAIN_RS),
];

/// The crates restored in the second checkout, their warnings replayed (the path dependency
/// outside the workspace keys its real paths, so it is compiled again there; `bad` fails and
/// is never stored).
const RESTORED: &[&str] = &["gen", "app", "side", "itoa"];

const CASE: Case = Case {
    name: "messages",
    files: FILES,
    bin: "",
    cargo: &["build", "--keep-going", "-j1"],
    messages: true,
    fails: true,
    reproducible: true,
    ..BUILD
};

#[test]
fn human_messages_name_this_builds_files() {
    assert_restored(&check(&CASE), RESTORED);
}

#[test]
fn json_messages_name_this_builds_files() {
    let records = check(&Case {
        name: "JSON messages",
        cargo: &["build", "--keep-going", "-j1", "--message-format=json"],
        ..CASE
    });
    assert_restored(&records, RESTORED);
}
