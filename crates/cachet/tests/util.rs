//! The wrapper tests' own helpers: a scratch project per test, cargo run through cachet, and
//! readers for the journal and statistics the wrapper leaves in its cache directory. What the
//! server's tests share (the real server process, storage peers, polling) comes from
//! `cachet-test-support`; the two used everywhere here are re-exported.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use cachet_test_support::{cachet_bin, run_ok, ServerProcess};
use cachet_wrapper::journal::{self, Outcome, Record};
use cachet_wrapper::stats::{self, Stats};

/// Copies a directory tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() == "target" {
                continue;
            }
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The fixture directory `name` under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The pinned crates.io workload beside the project.
pub fn workload_service() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/workloads/service");
    assert!(
        p.join("Cargo.lock").is_file(),
        "the pinned workload is missing at {}: the suite runs beside ../shared",
        p.display()
    );
    p
}

/// A scratch copy of a project with its own cachet cache directory.
pub struct Project {
    /// Keeps the scratch directory alive.
    pub tmp: tempfile::TempDir,
    /// The project root.
    pub root: PathBuf,
    /// The cache directory used by the wrapper.
    pub cache: PathBuf,
}

impl Project {
    /// Copies `source` into a new scratch directory.
    pub fn copy_of(source: &Path) -> Project {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("project");
        copy_tree(source, &root);
        let cache = tmp.path().join("cache");
        Project { tmp, root, cache }
    }

    /// A new project made of `files` (path under the root, contents).
    pub fn from_files(files: &[(&str, &str)]) -> Project {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("project");
        for (path, text) in files {
            write_file(&root, path, text);
        }
        let cache = tmp.path().join("cache");
        Project { tmp, root, cache }
    }

    /// Another client of the same checkout: its own, empty cache directory `name` (beside this
    /// project's) and its own scratch directory.
    pub fn client(&self, name: &str) -> Project {
        Project {
            tmp: tempfile::tempdir().unwrap(),
            root: self.root.clone(),
            cache: self.tmp.path().join(name),
        }
    }

    /// [`Project::client`] with the checkout's `target` removed (`cargo clean`), so that its
    /// next build compiles or fetches every crate.
    pub fn clean_client(&self, name: &str) -> Project {
        let client = self.client(name);
        client.cachet_cargo(&["clean"], &[]);
        client
    }

    /// A cargo command in the project with a clean, predictable environment.
    pub fn cargo_command(&self, args: &[&str]) -> Command {
        self.command_for("cargo", args)
    }

    /// `program` (cargo, or a cargo subcommand's binary) in the project with the environment
    /// of [`Project::cargo_command`].
    pub fn command_for(&self, program: impl AsRef<OsStr>, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args).current_dir(&self.root);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            // `CARGO_BIN_EXE_*` are the test's own (cargo sets them for integration tests):
            // `CARGO_BIN_EXE_cachet-server` is no shell name, so a `/bin/sh` shim in a build
            // drops it, and a build with it and one without do not share keys (cargo's
            // `CARGO_BIN_EXE_*` variables are in the key: a test crate reads them with `env!`).
            if k.starts_with("CACHET_")
                || k.starts_with("CARGO_BIN_EXE_")
                || k.starts_with("CARGO_BUILD_")
                || k.starts_with("CARGO_PROFILE_")
                || matches!(
                    k.as_str(),
                    "RUSTFLAGS"
                        | "CARGO_ENCODED_RUSTFLAGS"
                        | "CARGO_TARGET_DIR"
                        | "RUSTC_WRAPPER"
                        | "RUSTC"
                        | "CARGO_INCREMENTAL"
                )
            {
                cmd.env_remove(&k);
            }
        }
        cmd.env("CARGO_INCREMENTAL", "0")
            .env("CARGO_TERM_COLOR", "never");
        cmd
    }

    /// Runs cargo through cachet; panics with the output if it fails.
    pub fn cachet_cargo(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.cargo_command(args);
        cmd.env("RUSTC_WRAPPER", cachet_bin())
            .env("CACHET_DIR", &self.cache);
        cmd.envs(env.iter().map(|(k, v)| (*k, *v)));
        run_ok(cmd)
    }

    /// Runs cargo without cachet, into `target-plain`.
    pub fn plain_cargo(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.cargo_command(args);
        cmd.env("CARGO_TARGET_DIR", self.root.join("target-plain"));
        cmd.envs(env.iter().map(|(k, v)| (*k, *v)));
        run_ok(cmd)
    }

    /// Runs a `cachet` subcommand against this project's cache.
    pub fn cachet(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(cachet_bin());
        cmd.args(args).env("CACHET_DIR", &self.cache);
        cmd.output().unwrap()
    }

    /// Runs the built program `target/<profile>/<name>` and returns its stdout.
    pub fn run_program(&self, target: &str, profile: &str, name: &str) -> String {
        let exe = self.root.join(target).join(profile).join(name);
        String::from_utf8(run_ok(Command::new(exe)).stdout).unwrap()
    }

    /// Runs the fixture's program `target/debug/app` and asserts that it prints `expected`.
    pub fn assert_app_prints(&self, expected: &str) {
        let out = self.run_program("target", "debug", "app");
        assert!(
            out.contains(expected),
            "app printed {out:?}, not {expected:?}"
        );
    }

    /// `cargo clean`, then `cargo build` through cachet; returns the journal records of the build.
    pub fn rebuild_after_clean(&self, env: &[(&str, &str)]) -> Vec<Record> {
        self.cachet_cargo(&["clean"], env);
        self.cachet_cargo_records(&["build"], env)
    }

    /// Runs `run` and returns what it returned with the journal records written meanwhile.
    pub fn records_during<T>(&self, run: impl FnOnce() -> T) -> (T, Vec<Record>) {
        let before = self.journal().len();
        let value = run();
        (value, self.journal().split_off(before))
    }

    /// [`Project::cachet_cargo`], returning the journal records of that run.
    pub fn cachet_cargo_records(&self, args: &[&str], env: &[(&str, &str)]) -> Vec<Record> {
        self.records_during(|| self.cachet_cargo(args, env)).1
    }

    /// The journal records written so far.
    pub fn journal(&self) -> Vec<Record> {
        journal::read(&self.cache)
    }

    /// The statistics so far.
    pub fn stats(&self) -> Stats {
        stats::read(&self.cache)
    }
}

/// The real rustc of the active toolchain (not the rustup proxy), for shims to call.
pub fn real_rustc() -> PathBuf {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .unwrap();
    Path::new(String::from_utf8(out.stdout).unwrap().trim()).join("bin/rustc")
}

/// Writes `text` to `root/path`, creating the directories it is in.
pub fn write_file(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Writes an executable script (a rustc shim, usually) and returns its path.
pub fn write_script(path: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_path_buf()
}

/// The outcomes recorded for `krate` among `records`.
pub fn outcomes_for(records: &[Record], krate: &str) -> Vec<Outcome> {
    records
        .iter()
        .filter(|r| r.krate.as_deref() == Some(krate))
        .map(|r| r.outcome)
        .collect()
}

/// The crates of the `soundness` fixture cachet caches: two libraries, a proc-macro, a build
/// script and the program.
pub const FIXTURE_CRATES: [&str; 5] = [
    "core_lib",
    "dep_lib",
    "fixture_macros",
    "build_script_build",
    "app",
];

/// The crates of the calls among `records` whose outcome is `outcome` (with `Outcome::Miss`:
/// the crates a build compiled and stored).
pub fn crates_with(records: &[Record], outcome: Outcome) -> BTreeSet<String> {
    records
        .iter()
        .filter(|r| r.outcome == outcome)
        .filter_map(|r| r.krate.clone())
        .collect()
}

/// A second `who` (client, runner) built what the first compiled (`compiled`) without compiling
/// anything itself: no call among its `records` is a miss, and every crate of `compiled` is a
/// remote hit.
pub fn assert_all_remote_hits(records: &[Record], compiled: &BTreeSet<String>, who: &str) {
    let misses: Vec<_> = records
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Miss | Outcome::MissNotStored))
        .collect();
    assert!(
        misses.is_empty(),
        "no compile in the second {who}: {misses:?}"
    );
    let hits = crates_with(records, Outcome::HitRemote);
    assert_eq!(
        &hits, compiled,
        "every crate the first {who} compiled is a remote hit"
    );
}

/// Records of calls that were looked up in the cache (hits and misses).
pub fn cacheable(records: &[Record]) -> Vec<&Record> {
    records.iter().filter(|r| r.pre_key.is_some()).collect()
}

/// Text of a command's stderr.
pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// True when `p` exists as a file.
pub fn is_file(p: impl AsRef<OsStr>) -> bool {
    Path::new(p.as_ref()).is_file()
}

/// Waits until the file system's clock has ticked past `path`'s last change, so that a compile
/// started now sees the file as settled. The wrapper stores a result only when every input
/// changed strictly before its clock marker; a file written in the same coarse clock tick as
/// the compile starts is (soundly) compiled and not stored, which would turn an expected stored
/// miss into "not stored" on a fast machine. Polls a probe file's ctime, bounded.
pub fn wait_for_clock_past(path: &Path) {
    use std::os::unix::fs::MetadataExt;
    let stamp = |m: &std::fs::Metadata| (m.ctime(), m.ctime_nsec());
    let changed = stamp(&std::fs::metadata(path).unwrap());
    let probe = path.with_extension("clock-probe");
    for _ in 0..2000 {
        std::fs::write(&probe, b"").unwrap();
        let now = stamp(&std::fs::metadata(&probe).unwrap());
        std::fs::remove_file(&probe).unwrap();
        if now > changed {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    panic!("the file system clock did not move past {}", path.display());
}
