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
use std::path::Path;
use std::process::{Command, Output};

use crate::logging_driver::LoggingCompilers;
use crate::util::{cachet_bin, run_ok, workload_service, Project};

/// The logging compilers, and the profile cargo runs them in.
struct Compilers {
    logging: LoggingCompilers,
    /// The default dev profile (incremental on), not `CARGO_INCREMENTAL=0`.
    incremental: bool,
}

impl Compilers {
    fn new() -> Compilers {
        Compilers {
            logging: LoggingCompilers::new(),
            incremental: false,
        }
    }

    /// cargo's default dev profile: workspace members are compiled with `-C incremental`.
    fn in_the_default_dev_profile() -> Compilers {
        Compilers {
            incremental: true,
            ..Compilers::new()
        }
    }

    /// Compiles of the build's crates and build scripts run so far. Build scripts run again
    /// after `cargo clean`, as in any build, and the rustc probes they run are theirs.
    fn runs(&self) -> usize {
        self.compiles().len()
    }

    fn compiles(&self) -> Vec<String> {
        self.logging
            .calls()
            .into_iter()
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
            .collect()
    }

    /// Runs `cargo clippy ARGS` (as cargo would: `cargo-clippy clippy ARGS`) through cachet.
    fn clippy(&self, p: &Project, args: &[&str]) -> Output {
        self.through_cachet(p, self.logging.clippy(p, args))
    }

    /// Runs `cargo ARGS` through cachet with the logging rustc.
    fn cargo(&self, p: &Project, args: &[&str]) -> Output {
        let mut cmd = p.cargo_command(args);
        cmd.envs(self.logging.env());
        self.through_cachet(p, cmd)
    }

    fn through_cachet(&self, p: &Project, mut cmd: Command) -> Output {
        cmd.env("RUSTC_WRAPPER", cachet_bin())
            .env("CACHET_DIR", &p.cache);
        if self.incremental {
            cmd.env_remove("CARGO_INCREMENTAL");
        }
        run_ok(cmd)
    }

    /// Whether `krate` was compiled incrementally.
    fn compiled_incrementally(&self, krate: &str) -> bool {
        let name = format!(" --crate-name {krate} ");
        self.compiles()
            .iter()
            .any(|c| c.contains(&name) && c.contains("incremental="))
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

/// The workload in the default dev profile (as `cargo` runs without `CARGO_INCREMENTAL`): its
/// member is compiled with `-C incremental`, and is cached all the same.
#[test]
fn clippy_and_check_of_the_workload_replay_without_compiling() {
    let c = Compilers::in_the_default_dev_profile();
    let p = Project::copy_of(&workload_service());
    p.cachet_cargo(&["fetch", "--locked"], &[]);
    let locked = ["--locked", "--offline"];
    let checked = c.cargo(&p, &["check", "--locked", "--offline"]);
    assert!(c.compiled_incrementally("wl_service"));
    p.cachet_cargo(&["clean"], &[]);
    let before = c.runs();
    let rechecked = c.cargo(&p, &["check", "--locked", "--offline"]);
    assert_eq!(
        c.runs(),
        before,
        "a compiler ran for `cargo check` after clean: {:#?}",
        &c.compiles()[before..]
    );
    assert_eq!(diagnostics(&rechecked), diagnostics(&checked));

    // Dependencies are the check build's entries; the workspace crates are clippy's own.
    let lints = ["--", "-W", "clippy::restriction"];
    let before = c.runs();
    let first = c.clippy(&p, &[&locked[..], &lints[..]].concat());
    let shown = diagnostics(&first);
    assert!(shown.contains("clippy::"), "{shown}");
    assert!(
        c.compiles()[before..]
            .iter()
            .any(|l| l.starts_with("clippy-driver ") && l.contains("incremental=")),
        "clippy-driver compiles the member incrementally"
    );
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
