//! Logging compilers: a `rustc` and a `clippy-driver` that write one line per call to
//! `$SHIM_LOG` and run the real ones, so that a test counts the compiles that really ran
//! instead of trusting cachet's own counters. `clippy.rs` and `incremental.rs` both count
//! compiles this way; this is their one set-up.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{real_rustc, write_script, Project};

/// A directory holding the logging `rustc`, the logging `clippy-driver` and a copy of the
/// toolchain's `cargo-clippy` (which runs the `clippy-driver` beside its own executable).
///
/// Each line of the log is the program's name and its arguments: `rustc --crate-name x ...`.
/// The scripts do not depend on the test (the log's path comes from the environment), so every
/// checkout of one test sees the same compiler. The rustc is named `rustc`: clippy-driver takes
/// its first argument for the rustc cargo would have run only when it is named so.
pub struct LoggingCompilers {
    _dir: tempfile::TempDir,
    /// The directory of the three programs.
    pub bin: PathBuf,
    /// The logging rustc (cargo's `RUSTC`).
    pub rustc: PathBuf,
    /// The log both write (`$SHIM_LOG`).
    pub log: PathBuf,
    /// The toolchain's `lib/`: the copied cargo-clippy finds librustc_driver there.
    lib: PathBuf,
}

impl LoggingCompilers {
    pub fn new() -> LoggingCompilers {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        fs::create_dir_all(&bin).unwrap();
        let sysroot = real_rustc()
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        fs::copy(sysroot.join("bin/cargo-clippy"), bin.join("cargo-clippy")).unwrap();
        let shim = |name: &str, real: &Path| {
            write_script(
                &bin.join(name),
                &format!(
                    "#!/bin/sh\nprintf '%s\\n' \"{name} $*\" >> \"$SHIM_LOG\"\nexec '{}' \"$@\"\n",
                    real.display()
                ),
            )
        };
        shim("clippy-driver", &sysroot.join("bin/clippy-driver"));
        let rustc = shim("rustc", &real_rustc());
        LoggingCompilers {
            log: dir.path().join("compiles.log"),
            _dir: dir,
            bin,
            rustc,
            lib: sysroot.join("lib"),
        }
    }

    /// The environment that makes a cargo run use the logging rustc and write to this log.
    pub fn env(&self) -> [(&'static str, &str); 2] {
        [
            ("RUSTC", self.rustc.to_str().unwrap()),
            ("SHIM_LOG", self.log.to_str().unwrap()),
        ]
    }

    /// `cargo clippy ARGS` in `p` as cargo runs it (`cargo-clippy clippy ARGS`), with the
    /// environment of [`Project::command_for`] and both logging compilers.
    pub fn clippy(&self, p: &Project, args: &[&str]) -> Command {
        let mut cmd = p.command_for(self.bin.join("cargo-clippy"), &["clippy"]);
        cmd.args(args)
            .env("LD_LIBRARY_PATH", &self.lib)
            .envs(self.env());
        cmd
    }

    /// Every call logged so far, in order.
    pub fn calls(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}
