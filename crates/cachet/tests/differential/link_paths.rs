//! Paths of the checkout that reach the link and are written into the program: an rpath to a
//! build script's out-dir (`cargo:rustc-link-arg=-Wl,-rpath,$OUT_DIR`), and the `$ORIGIN`
//! rpaths of `-C rpath` with `-C prefer-dynamic`, relative to the checkout's depth. Before the
//! fix the link argument was keyed relative to the target directory, and a second checkout
//! restored a program pointing into the first one, which failed to load once it was gone.

use super::{assert_restored, check, Case};

const BUILD_RS: &str = r#"
use std::process::Command;
fn main() {
    let out = std::env::var("OUT_DIR").unwrap();
    println!("cargo:rerun-if-changed=dyn.c");
    let lib = format!("{out}/libdyn.so");
    assert!(Command::new("cc").args(["-shared", "-fPIC", "dyn.c", "-o", &lib]).status().unwrap().success());
    println!("cargo:rustc-link-search=native={out}");
    println!("cargo:rustc-link-lib=dylib=dyn");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{out}");
}
"#;

#[test]
fn an_rpath_into_the_target_directory_is_not_reused_elsewhere() {
    let records = check(&Case {
        name: "rpath to a build script's out-dir",
        files: &[
            (
                "Cargo.toml",
                "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\nbuild = \"build.rs\"\n",
            ),
            ("build.rs", BUILD_RS),
            ("dyn.c", "int dyn_value(void) { return 5; }\n"),
            (
                "src/main.rs",
                "extern \"C\" { fn dyn_value() -> i32; }\nfn main() { println!(\"{}\", unsafe { dyn_value() }); }\n",
            ),
        ],
        reproducible: true,
        ..super::BUILD
    });
    // The build script itself embeds no path of the checkout: it is still restored.
    assert_restored(&records, &["build_script_build"]);
}

#[test]
fn origin_rpaths_of_prefer_dynamic_are_not_reused_at_another_depth() {
    check(&Case {
        name: "-C rpath -C prefer-dynamic",
        files: &[
            (
                "Cargo.toml",
                "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
            ),
            ("src/main.rs", "fn main() { println!(\"hello\"); }\n"),
        ],
        env: &[("RUSTFLAGS", "-C rpath -C prefer-dynamic")],
        // Not compared byte for byte: the program is the only crate, and its `$ORIGIN` rpath
        // depends on the checkout's depth, so nothing is restored in the second checkout.
        reproducible: false,
        ..super::BUILD
    });
}
