//! Every word of the link command that names a file. The link-command parser used to follow
//! only a few spellings; a file named any other way could change and cachet restored the old
//! link. Each form below links one object (or list) whose change the program shows.

use std::path::Path;

use super::{check, Case, Step};

const BUILD_RS: &str = r#"
use std::process::Command;
fn object(out: &str, name: &str) -> String {
    let o = format!("{out}/{name}.o");
    let src = format!("c/{name}.c");
    assert!(Command::new("cc").args(["-c", "-fPIC", &src, "-o", &o]).status().unwrap().success());
    o
}
fn arg(a: &str) { println!("cargo:rustc-link-arg-bins={a}"); }
fn main() {
    let out = std::env::var("OUT_DIR").unwrap();
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo:rerun-if-changed=c");
    println!("cargo:rerun-if-changed=dyn.list");
    // A bare file inside -Wl,
    arg(&format!("-Wl,{}", object(&out, "a")));
    // -Xlinker FILE
    arg("-Xlinker");
    arg(&object(&out, "b"));
    // Long options with = in a comma list
    std::fs::create_dir_all(format!("{out}/lib")).unwrap();
    let c = object(&out, "c");
    let lib = format!("{out}/lib/libcee.a");
    let _ = std::fs::remove_file(&lib);
    assert!(Command::new("ar").args(["crs", &lib, &c]).status().unwrap().success());
    arg(&format!("-Wl,--library-path={out}/lib,--library=cee"));
    // A response file to the driver, and one to the linker
    std::fs::write(format!("{out}/driver.rsp"), format!("'{}'\n", object(&out, "d"))).unwrap();
    arg(&format!("@{out}/driver.rsp"));
    std::fs::write(format!("{out}/linker.rsp"), format!("\"{}\"\n", object(&out, "e"))).unwrap();
    arg(&format!("-Wl,@{out}/linker.rsp"));
    // The driver's -T script naming an input
    std::fs::write(format!("{out}/inputs.ld"), format!("INPUT({})\n", object(&out, "f"))).unwrap();
    arg("-T");
    arg(&format!("{out}/inputs.ld"));
    // An option's file as the next word of the same -Wl, list
    arg(&format!("-Wl,--dynamic-list,{dir}/dyn.list"));
}
"#;

const MAIN_RS: &str = r#"
use std::ffi::c_void;
extern "C" {
    fn a_value() -> i32; fn b_value() -> i32; fn c_value() -> i32;
    fn d_value() -> i32; fn e_value() -> i32; fn f_value() -> i32;
    fn dlsym(handle: *mut c_void, symbol: *const std::ffi::c_char) -> *mut c_void;
}
fn main() {
    unsafe {
        println!("{} {} {} {} {} {}", a_value(), b_value(), c_value(), d_value(), e_value(), f_value());
        println!("exported: {}", !dlsym(std::ptr::null_mut(), c"f_value".as_ptr()).is_null());
    }
}
"#;

const CASE: Case = Case {
    name: "files named by link-command words",
    files: &[
        (
            "Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\nbuild = \"build.rs\"\n",
        ),
        ("build.rs", BUILD_RS),
        ("src/main.rs", MAIN_RS),
        ("c/a.c", "int a_value(void) { return 1; }\n"),
        ("c/b.c", "int b_value(void) { return 2; }\n"),
        ("c/c.c", "int c_value(void) { return 3; }\n"),
        ("c/d.c", "int d_value(void) { return 4; }\n"),
        ("c/e.c", "int e_value(void) { return 5; }\n"),
        ("c/f.c", "int f_value(void) { return 6; }\n"),
        ("dyn.list", "{ f_value; };\n"),
    ],
    steps: &[
        Step::replace("an object named by a bare word inside -Wl,", "c/a.c", "1;", "11;"),
        Step::replace("an object named after -Xlinker", "c/b.c", "2;", "12;"),
        Step::replace("a library by -Wl,--library-path=D,--library=x", "c/c.c", "3;", "13;"),
        Step::replace("an object named in a driver response file", "c/d.c", "4;", "14;"),
        Step::replace("an object in a linker response file (-Wl,@FILE)", "c/e.c", "5;", "15;"),
        Step::replace("an object named by the driver's -T script", "c/f.c", "6;", "16;"),
        Step::replace("the list given as -Wl,--dynamic-list,FILE", "dyn.list", "f_", "a_"),
    ],
    reproducible: true,
    ..super::BUILD
};

#[test]
fn every_file_the_link_command_names_is_keyed() {
    check(&CASE);
}

/// Options the link-command parser does not know, each naming a file that changes what is
/// linked: a GCC specs file given to the driver (`-specs=FILE`, whose `*link:` spec adds
/// `--defsym`), and lld's `--remap-inputs-file=FILE` (which object stands for another). The
/// parser cannot tell such an option from one that reads nothing, so the link is not stored
/// (`link option not understood`); accepted, the first link was restored after the file
/// changed.
const UNKNOWN_BUILD_RS: &str = r#"
use std::process::Command;
fn object(out: &str, name: &str) -> String {
    let o = format!("{out}/{name}.o");
    let src = format!("c/{name}.c");
    assert!(Command::new("cc").args(["-c", "-fPIC", &src, "-o", &o]).status().unwrap().success());
    o
}
fn main() {
    let out = std::env::var("OUT_DIR").unwrap();
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo:rerun-if-changed=c");
    println!("cargo:rerun-if-changed=link.specs");
    println!("cargo:rerun-if-changed=remap.txt");
    for name in ["two", "three"] {
        object(&out, name);
    }
    println!("cargo:rustc-link-arg-bins=-Wl,{}", object(&out, "impls"));
    println!("cargo:rustc-link-arg-bins=-Wl,{}", object(&out, "one"));
    // Each case keeps one of the two files.
    if std::path::Path::new("link.specs").exists() {
        println!("cargo:rustc-link-arg-bins=-specs={dir}/link.specs");
    } else {
        println!("cargo:rustc-link-arg-bins=-Wl,--defsym=chosen=impl_one");
    }
    if let Ok(remap) = std::fs::read_to_string("remap.txt") {
        std::fs::write(format!("{out}/remap.txt"), remap.replace("OUT", &out)).unwrap();
        println!("cargo:rustc-link-arg-bins=-Wl,--remap-inputs-file={out}/remap.txt");
    }
}
"#;

const UNKNOWN_FILES: Case = Case {
    name: "unknown link options naming files",
    files: &[
        (
            "Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\nbuild = \"build.rs\"\n",
        ),
        ("build.rs", UNKNOWN_BUILD_RS),
        (
            "src/main.rs",
            "extern \"C\" { fn chosen() -> i32; fn remapped() -> i32; }\nfn main() { unsafe { println!(\"{} {}\", chosen(), remapped()); } }\n",
        ),
        (
            "c/impls.c",
            "int impl_one(void) { return 1; }\nint impl_two(void) { return 2; }\n",
        ),
        ("c/one.c", "int remapped(void) { return 10; }\n"),
        ("c/two.c", "int remapped(void) { return 20; }\n"),
        ("c/three.c", "int remapped(void) { return 30; }\n"),
        ("link.specs", "*link:\n+ --defsym=chosen=impl_one\n\n"),
        ("remap.txt", "*/one.o=OUT/two.o\n"),
    ],
    ..super::BUILD
};

/// Removes `file` from a new checkout (a second checkout is copied without it already).
fn without(root: &Path, file: &str) {
    let _ = std::fs::remove_file(root.join(file));
}

#[test]
fn a_link_with_an_unknown_driver_option_is_not_stored() {
    const CASE: Case = Case {
        name: "a specs file (-specs=FILE, unknown to the parser)",
        setup: Some(|r| without(r, "remap.txt")),
        steps: &[Step::replace(
            "the specs file given by -specs=",
            "link.specs",
            "impl_one",
            "impl_two",
        )],
        ..UNKNOWN_FILES
    };
    check(&CASE);
}

#[test]
fn a_link_with_an_unknown_linker_option_is_not_stored() {
    const CASE: Case = Case {
        name: "lld's -Wl,--remap-inputs-file=FILE (unknown to the parser)",
        setup: Some(|r| without(r, "link.specs")),
        steps: &[Step::replace(
            "the file given by -Wl,--remap-inputs-file=",
            "remap.txt",
            "two.o",
            "three.o",
        )],
        ..UNKNOWN_FILES
    };
    check(&CASE);
}
