//! `cargo clippy` and `cargo check` through cachet: they succeed, a second run after
//! `cargo clean` replays the same diagnostics without running any compiler, and clippy's
//! configuration and lint flags are part of the key.
//!
//! What broke: cargo runs `cachet clippy-driver RUSTC ARGS` for workspace members, and cachet
//! put its `--remap-path-prefix` flags before `RUSTC`, so clippy-driver took them for its
//! rustc and failed with "multiple input filenames provided" on any package with a binary or
//! a build script.
//!
//! Compiler runs are counted by the compilers themselves, not by cachet: `cargo clippy` runs
//! the `clippy-driver` beside its `cargo-clippy`, so the test runs a copy of `cargo-clippy`
//! with a logging `clippy-driver` shim beside it, and cargo's `RUSTC` is a logging shim too.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::util::{cachet_bin, real_rustc, run_ok, workload_service, write_script, Project};

/// Logging shims for rustc and clippy-driver, and the log they write (one line per compile;
/// cargo's target-info query, `--crate-name ___`, is not a compile).
struct Compilers {
    _dir: tempfile::TempDir,
    bin: PathBuf,
    rustc: PathBuf,
    log: PathBuf,
    /// The toolchain's `lib/`: the copied cargo-clippy finds librustc_driver there.
    lib: PathBuf,
}

impl Compilers {
    fn new() -> Compilers {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        fs::create_dir_all(&bin).unwrap();
        let log = dir.path().join("compiles.log");
        let sysroot = real_rustc()
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        // cargo-clippy runs the clippy-driver beside it (its own executable's directory).
        fs::copy(sysroot.join("bin/cargo-clippy"), bin.join("cargo-clippy")).unwrap();
        let shim = |name: &str, real: &Path| {
            write_script(
                &bin.join(name),
                &format!(
                    "#!/bin/sh\ncase \" $* \" in *\" ___ \"*) ;; *\" --crate-name \"*) echo \"{name} $*\" >> '{}';; esac\nexec '{}' \"$@\"\n",
                    log.display(),
                    real.display()
                ),
            )
        };
        shim("clippy-driver", &sysroot.join("bin/clippy-driver"));
        let rustc = shim("rustc", &real_rustc());
        Compilers {
            _dir: dir,
            bin,
            rustc,
            log,
            lib: sysroot.join("lib"),
        }
    }

    /// Compiles of the build's crates and build scripts run so far. Build scripts run again
    /// after `cargo clean`, as in any build, and the rustc probes they run are theirs.
    fn runs(&self) -> usize {
        self.compiles().len()
    }

    fn compiles(&self) -> Vec<String> {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        log.lines()
            .filter(|l| {
                l.split_once("--out-dir ")
                    .and_then(|(_, rest)| rest.split(' ').next())
                    .map(Path::new)
                    .is_some_and(|dir| {
                        // A crate (`debug/deps`) or a build script (`debug/build/PKG-HASH`).
                        dir.ends_with("debug/deps")
                            || dir.parent().is_some_and(|p| p.ends_with("debug/build"))
                    })
            })
            .map(str::to_string)
            .collect()
    }

    /// Runs `cargo clippy ARGS` (as cargo would: `cargo-clippy clippy ARGS`) through cachet.
    fn clippy(&self, p: &Project, args: &[&str]) -> Output {
        let mut cmd = p.command_for(self.bin.join("cargo-clippy"), &["clippy"]);
        cmd.args(args)
            .env("RUSTC_WRAPPER", cachet_bin())
            .env("CACHET_DIR", &p.cache)
            .env("RUSTC", &self.rustc)
            .env("LD_LIBRARY_PATH", &self.lib);
        run_ok(cmd)
    }

    /// Runs `cargo ARGS` through cachet with the logging rustc.
    fn cargo(&self, p: &Project, args: &[&str]) -> Output {
        p.cachet_cargo(args, &[("RUSTC", self.rustc.to_str().unwrap())])
    }
}

/// The diagnostics of a cargo run: its stderr without cargo's progress lines.
pub(crate) fn diagnostics(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            ![
                "Compiling ",
                "Checking ",
                "Finished ",
                "Blocking ",
                "Running ",
                "Removed ",
            ]
            .iter()
            .any(|p| t.starts_with(p))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A package with a binary, a library and a build script, whose code clippy warns about.
fn bin_with_build_script() -> Project {
    let src = tempfile::tempdir().unwrap();
    let root = src.path();
    fs::create_dir_all(root.join("src")).unwrap();
    fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"tool\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    fs::write(
        root.join("build.rs"),
        "fn main() {\n    let v = vec![1, 2];\n    println!(\"cargo:rustc-env=TOOL_N={}\", v.len());\n}\n",
    )
    .unwrap();
    fs::write(
        root.join("src/lib.rs"),
        "pub fn total(v: &Vec<u32>) -> u32 {\n    v.iter().sum()\n}\n",
    )
    .unwrap();
    fs::write(
        root.join("src/main.rs"),
        "fn main() {\n    let x = 3;\n    if x == 3 {\n        println!(\"{}\", tool::total(&vec![x]) + env!(\"TOOL_N\").len() as u32);\n    }\n}\n",
    )
    .unwrap();
    Project::copy_of(root)
}

#[test]
fn clippy_and_check_of_a_bin_with_a_build_script_replay_without_compiling() {
    let c = Compilers::new();
    let p = bin_with_build_script();
    let first = c.clippy(&p, &[]);
    let shown = diagnostics(&first);
    assert!(shown.contains("clippy::ptr_arg"), "{shown}");
    let compiled = c.runs();
    assert!(compiled >= 3, "expected real compiles, log has {compiled}");

    p.cachet_cargo(&["clean"], &[]);
    let again = c.clippy(&p, &[]);
    assert_eq!(diagnostics(&again), shown);
    assert_eq!(c.runs(), compiled, "a compiler ran after `cargo clean`");

    // A clippy.toml where there was none: clippy reads it (`disallowed-names`), so the
    // workspace crates miss and its lint shows.
    fs::write(p.root.join("clippy.toml"), "disallowed-names = [\"x\"]\n").unwrap();
    p.cachet_cargo(&["clean"], &[]);
    let configured = c.clippy(&p, &[]);
    assert!(c.runs() > compiled, "clippy.toml did not cause a compile");
    assert!(
        diagnostics(&configured).contains("clippy::disallowed_names"),
        "{}",
        diagnostics(&configured)
    );
    // A lint flag after `--` (CLIPPY_ARGS): a miss, and the lint is gone.
    p.cachet_cargo(&["clean"], &[]);
    let before = c.runs();
    let allowed = c.clippy(&p, &["--", "-A", "clippy::ptr_arg"]);
    assert!(c.runs() > before, "a lint flag did not cause a compile");
    assert!(!diagnostics(&allowed).contains("clippy::ptr_arg"));
    // And back: the first configuration's entries are still there.
    p.cachet_cargo(&["clean"], &[]);
    let before = c.runs();
    let journal = p.journal().len();
    let back = c.clippy(&p, &[]);
    assert_eq!(c.runs(), before, "{:#?}", &p.journal()[journal..]);
    assert_eq!(diagnostics(&back), diagnostics(&configured));

    // `cargo check` and `cargo build` through cachet: plain rustc, cached as well.
    c.cargo(&p, &["check"]);
    p.cachet_cargo(&["clean"], &[]);
    let before = c.runs();
    c.cargo(&p, &["check"]);
    assert_eq!(
        c.runs(),
        before,
        "a compiler ran for `cargo check` after clean"
    );
    c.cargo(&p, &["build"]);
    assert_eq!(p.run_program("target", "debug", "tool"), "4\n");
}

#[test]
fn clippy_and_check_of_the_workload_replay_without_compiling() {
    let c = Compilers::new();
    let p = Project::copy_of(&workload_service());
    p.cachet_cargo(&["fetch", "--locked"], &[]);
    let locked = ["--locked", "--offline"];
    c.cargo(&p, &["check", "--locked", "--offline"]);
    p.cachet_cargo(&["clean"], &[]);
    let before = c.runs();
    c.cargo(&p, &["check", "--locked", "--offline"]);
    assert_eq!(
        c.runs(),
        before,
        "a compiler ran for `cargo check` after clean: {:#?}",
        &c.compiles()[before..]
    );

    // Dependencies are the check build's entries; the workspace crates are clippy's own.
    let lints = ["--", "-W", "clippy::restriction"];
    let first = c.clippy(&p, &[&locked[..], &lints[..]].concat());
    let shown = diagnostics(&first);
    assert!(shown.contains("clippy::"), "{shown}");
    p.cachet_cargo(&["clean"], &[]);
    let compiled = c.runs();
    let again = c.clippy(&p, &[&locked[..], &lints[..]].concat());
    assert_eq!(
        c.runs(),
        compiled,
        "a compiler ran for `cargo clippy` after clean: {:#?}",
        &c.compiles()[compiled..]
    );
    assert_eq!(diagnostics(&again), shown);
}
