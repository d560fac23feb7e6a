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
    bin: "app",
    env: &[(
        "RUSTFLAGS",
        "-L {ROOT}/pre-all -L crate={ROOT}/pre-crate -L dependency={ROOT}/pre-crate",
    )],
    steps: &[
        Step {
            name: "a crate in a `-L DIR` directory, rebuilt",
            edit: |r| {
                replace(r, "prebuilt/found_all.rs", "= 1;", "= 2;");
                prebuild(r, "found_all", "pre-all");
                // cargo does not track the directory: make it recompile the dependent.
                touch(r, "mid/src/lib.rs");
            },
        },
        Step {
            name: "a crate in a `-L crate=DIR` directory, rebuilt",
            edit: |r| {
                replace(r, "prebuilt/found_crate.rs", "= 10;", "= 20;");
                prebuild(r, "found_crate", "pre-crate");
                touch(r, "mid/src/lib.rs");
            },
        },
    ],
    reproducible: false,
    ..super::BUILD
};

#[test]
fn crates_found_in_search_directories_are_keyed() {
    check(&CASE);
}
