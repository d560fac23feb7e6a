//! Native archives a Rust library bundles because its source says
//! `#[link(name = "foo", kind = "static")]` (the `-sys` crate pattern), built by its build
//! script. No argument names the archive; rustc finds it in the `-L native=` directory and
//! copies it into the rlib. Before the fix only `-l static=` arguments were hashed: the C file
//! changed, the build script re-ran, and cachet restored the rlib bundling the old archive.

use super::{check, Case, Step};

const BUILD_RS: &str = r#"
use std::process::Command;
fn archive(out: &str, src: &str, obj: &str, lib: &str) {
    let o = format!("{out}/{obj}");
    assert!(Command::new("cc").args(["-c", "-fPIC", src, "-o", &o]).status().unwrap().success());
    let _ = std::fs::remove_file(format!("{out}/{lib}"));
    assert!(Command::new("ar").args(["crs", &format!("{out}/{lib}"), &o]).status().unwrap().success());
}
fn main() {
    let out = std::env::var("OUT_DIR").unwrap();
    println!("cargo:rerun-if-changed=c");
    archive(&out, "c/foo.c", "foo.o", "libfoo.a");
    archive(&out, "c/bar.c", "bar.o", "bar.archive");
    println!("cargo:rustc-link-search=native={out}");
}
"#;

const CASE: Case = Case {
    name: "bundled #[link] archives",
    files: &[
        (
            "Cargo.toml",
            "[workspace]\nmembers = [\"sys\", \"app\"]\nresolver = \"2\"\n",
        ),
        (
            "sys/Cargo.toml",
            "[package]\nname = \"sys\"\nversion = \"0.1.0\"\nedition = \"2021\"\nbuild = \"build.rs\"\n",
        ),
        ("sys/build.rs", BUILD_RS),
        ("sys/c/foo.c", "int foo_value(void) { return 1; }\n"),
        ("sys/c/bar.c", "int bar_value(void) { return 10; }\n"),
        (
            "sys/src/lib.rs",
            r#"
#[link(name = "foo", kind = "static")]
extern "C" { fn foo_value() -> i32; }
#[link(name = "bar.archive", kind = "static", modifiers = "+verbatim")]
extern "C" { fn bar_value() -> i32; }
pub fn values() -> (i32, i32) { unsafe { (foo_value(), bar_value()) } }
"#,
        ),
        (
            "app/Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nsys = { path = \"../sys\" }\n",
        ),
        (
            "app/src/main.rs",
            "fn main() { println!(\"{:?}\", sys::values()); }\n",
        ),
    ],
    steps: &[
        Step::replace("a `kind = \"static\"` library's C source", "sys/c/foo.c", "1;", "2;"),
        Step::replace("a `+verbatim` static library's C source", "sys/c/bar.c", "10;", "20;"),
    ],
    reproducible: true,
    ..super::BUILD
};

#[test]
fn archives_bundled_by_link_attributes_are_keyed_by_content() {
    check(&CASE);
}
