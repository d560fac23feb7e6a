//! Crates found by `extern crate foo;` through a `-L` directory given in `RUSTFLAGS` rather
//! than `--extern`: neither an argument's file nor in dep-info. Before the fix a library that
//! inlines a constant of such a crate was restored stale after the crate was rebuilt.

use std::path::Path;
use std::process::Command;

use super::{check, replace, touch, Case, Step};

/// Compiles `prebuilt/NAME.rs` into `DIR/libNAME.rlib` with the real rustc.
fn prebuild(root: &Path, name: &str, dir: &str) {
    std::fs::create_dir_all(root.join(dir)).unwrap();
    let status = Command::new("rustc")
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "rlib",
            "--crate-name",
            name,
        ])
        .arg(root.join(format!("prebuilt/{name}.rs")))
        .arg("--out-dir")
        .arg(root.join(dir))
        .status()
        .unwrap();
    assert!(status.success());
}

/// Changes `prebuilt/NAME.rs` (`from` becomes `to`) and rebuilds it into `dir`; cargo does not
/// track the directory, so the dependent is touched to make cargo recompile it.
fn rebuild(root: &Path, name: &str, dir: &str, from: &str, to: &str) {
    replace(root, &format!("prebuilt/{name}.rs"), from, to);
    prebuild(root, name, dir);
    touch(root, "mid/src/lib.rs");
}

fn setup(root: &Path) {
    prebuild(root, "found_all", "pre-all");
    prebuild(root, "found_crate", "pre-crate");
}

const CASE: Case = Case {
    name: "crates found through -L search directories",
    files: &[
        (
            "Cargo.toml",
            "[workspace]\nmembers = [\"mid\", \"app\"]\nresolver = \"2\"\n",
        ),
        ("prebuilt/found_all.rs", "pub const VALUE: u32 = 1;\n"),
        ("prebuilt/found_crate.rs", "pub const VALUE: u32 = 10;\n"),
        (
            "mid/Cargo.toml",
            "[package]\nname = \"mid\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        ),
        (
            "mid/src/lib.rs",
            "extern crate found_all;\nextern crate found_crate;\npub fn values() -> (u32, u32) { (found_all::VALUE, found_crate::VALUE) }\n",
        ),
        (
            "app/Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nmid = { path = \"../mid\" }\n",
        ),
        (
            "app/src/main.rs",
            "fn main() { println!(\"{:?}\", mid::values()); }\n",
        ),
    ],
    setup: Some(setup),
    env: &[(
        "RUSTFLAGS",
        "-L {ROOT}/pre-all -L crate={ROOT}/pre-crate -L dependency={ROOT}/pre-crate",
    )],
    steps: &[
        Step::run("a crate in a `-L DIR` directory, rebuilt", |r| {
            rebuild(r, "found_all", "pre-all", "= 1;", "= 2;")
        }),
        Step::run("a crate in a `-L crate=DIR` directory, rebuilt", |r| {
            rebuild(r, "found_crate", "pre-crate", "= 10;", "= 20;")
        }),
    ],
    // Not compared byte for byte: `RUSTFLAGS` names directories of the checkout, and cargo
    // hashes `RUSTFLAGS` into every crate's `-C metadata`, so in the second checkout every
    // crate has other symbol and file names: nothing is restored there (by design).
    reproducible: false,
    ..super::BUILD
};

#[test]
fn crates_found_in_search_directories_are_keyed() {
    check(&CASE);
}
