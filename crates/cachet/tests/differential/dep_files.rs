//! Dep-info files restored into another checkout. cargo reads rustc's `.d` file to know what
//! to watch, and writes its own `target/debug/app.d` from it; a restored one must name this
//! checkout's files. rustc writes a target path as it is (a space is not escaped) and escapes
//! spaces in dependencies as `\ `: the rewrite used to expect `\ ` in targets too, so an
//! out-dir whose path holds a space kept the first build's targets. The second checkout here
//! is under a directory with a space; the crates read generated code from `OUT_DIR`, so their
//! dependencies name the target directory too.

use super::{assert_restored, check, Case, BUILD};

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
