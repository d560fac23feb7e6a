//! Workspace wrappers: `cachet DRIVER RUSTC ARGS...`, as cargo runs them for `cargo clippy`.
//!
//! With `RUSTC_WRAPPER=cachet` and `RUSTC_WORKSPACE_WRAPPER` set (`cargo clippy` sets it to
//! `clippy-driver`), cargo runs `cachet DRIVER RUSTC ARGS` for workspace members and
//! `cachet RUSTC ARGS` for everything else. The driver is the program that compiles: it takes
//! rustc's path as its first argument (clippy-driver ignores it and runs the compiler it is
//! linked with), so anything cachet adds to the command line goes after `RUSTC`.
//!
//! Only clippy-driver is cached, because what it reads is known: the compiler it is linked
//! with (its binary and its sysroot's `lib/`, identified like rustc, see `compiler.rs`), its
//! own version (`--version`), its configuration file (`clippy.toml` or `.clippy.toml`, found
//! as clippy finds it: in `CLIPPY_CONF_DIR`, else `CARGO_MANIFEST_DIR`, then their ancestors)
//! by content, and its `CLIPPY_*` variables (`CLIPPY_ARGS` carries the lint flags given after
//! `cargo clippy --`). Any other workspace wrapper can read anything, so it runs unchanged.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cachet_core::Digest;

use crate::compiler::{self, Compiler, CompilerError};
use crate::file_hash::FileHasher;
use crate::fsutil;

/// The programs of one wrapped call: `[cachet, DRIVER?, RUSTC, ARGS...]` split up.
#[derive(Clone, Copy, Debug)]
pub struct Programs<'a> {
    /// The workspace wrapper, when cargo gave one.
    pub driver: Option<&'a OsStr>,
    /// rustc, as cargo gave it.
    pub rustc: &'a OsStr,
    /// rustc's arguments.
    pub args: &'a [OsString],
}

impl<'a> Programs<'a> {
    /// Splits `argv` (`[cachet, program, ...]`, at least two items). The second word is a
    /// driver when the third names a program: cargo's rustc arguments start with a flag
    /// (`--crate-name`, `-vV`, `-`), and an input file is a `.rs` file, not an executable.
    pub fn split(argv: &'a [OsString]) -> Programs<'a> {
        match argv.get(2) {
            Some(next) if names_a_program(next) => Programs {
                driver: Some(&argv[1]),
                rustc: next,
                args: &argv[3..],
            },
            _ => Programs {
                driver: None,
                rustc: &argv[1],
                args: &argv[2..],
            },
        }
    }

    /// The program to run and the words before rustc's arguments: `rustc`, or `DRIVER RUSTC`.
    pub fn command_prefix(&self) -> (&'a OsStr, Vec<OsString>) {
        match self.driver {
            Some(d) => (d, vec![self.rustc.to_os_string()]),
            None => (self.rustc, Vec::new()),
        }
    }
}

fn names_a_program(word: &OsStr) -> bool {
    let path = Path::new(word);
    if word.as_encoded_bytes().first() == Some(&b'-') {
        return false;
    }
    if path.file_stem() == Some(OsStr::new("rustc")) {
        return true;
    }
    if path.extension() == Some(OsStr::new("rs")) {
        return false;
    }
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(compiler::resolve(word))
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A workspace wrapper cachet knows what it reads.
#[derive(Clone, Debug)]
pub struct Driver {
    /// The driver's binary and the compiler it is linked with, identified like rustc.
    pub identity: Compiler,
    /// `DRIVER --version` (`clippy 0.1.95 (...)`).
    pub version: String,
}

/// Why a workspace wrapper is not cached.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Not clippy-driver: it may read inputs cachet does not know of.
    #[error("workspace wrapper {0} is not clippy-driver")]
    Unsupported(PathBuf),
    /// It could not be identified.
    #[error(transparent)]
    Identity(#[from] CompilerError),
}

/// Identifies a workspace wrapper, remembering `--version` beside the compiler records.
pub fn identify(
    driver: &OsStr,
    records: Option<&Path>,
    hasher: &FileHasher,
) -> Result<Driver, DriverError> {
    let path = compiler::resolve(driver);
    let is_clippy = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("clippy-driver"));
    if !is_clippy {
        return Err(DriverError::Unsupported(path));
    }
    let identity = compiler::identify(driver, records, hasher)?;
    let record = records.map(|r| r.join(format!("driver-version-{}", identity.digest)));
    if let Some(version) = record.as_ref().and_then(|r| fs::read_to_string(r).ok()) {
        return Ok(Driver { identity, version });
    }
    let out = Command::new(&identity.path)
        .args(["rustc", "--version"])
        .output()
        .map_err(|source| CompilerError::Run {
            path: identity.path.clone(),
            source,
        })?;
    let version = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || !version.starts_with("clippy ") {
        return Err(DriverError::Unsupported(identity.path));
    }
    if let Some(r) = &record {
        let _ = fsutil::write_atomic(r, version.as_bytes());
    }
    Ok(Driver { identity, version })
}

/// True for the variables clippy-driver reads (`CLIPPY_ARGS`, `CLIPPY_CONF_DIR`, ...).
pub fn is_driver_env(name: &str) -> bool {
    name.starts_with("CLIPPY_")
}

/// The configuration files clippy reads for a crate compiled in `cwd` with the environment
/// `env`: the `.clippy.toml` and `clippy.toml` of the nearest directory that has one,
/// searched from `CLIPPY_CONF_DIR` or `CARGO_MANIFEST_DIR` (or `cwd`) upwards. Empty when
/// there is none, which is as much part of the key as a file's content: a file added later
/// is found by the next call's search.
pub fn config_files(cwd: &Path, env: impl Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let start = env("CLIPPY_CONF_DIR")
        .or_else(|| env("CARGO_MANIFEST_DIR"))
        .map(|d| cwd.join(d))
        .unwrap_or_else(|| cwd.to_path_buf());
    let Ok(mut dir) = start.canonicalize() else {
        return Vec::new();
    };
    loop {
        let found: Vec<PathBuf> = [".clippy.toml", "clippy.toml"]
            .iter()
            .filter_map(|name| dir.join(name).canonicalize().ok())
            .filter(|p| p.is_file())
            .collect();
        if !found.is_empty() || !dir.pop() {
            return found;
        }
    }
}

/// The key lines of a driver call: its identity and version, and its configuration files
/// (shown relative to the anchors) by content.
pub fn key_lines(
    driver: &Driver,
    cwd: &Path,
    env: impl Fn(&str) -> Option<String>,
    hasher: &FileHasher,
    shown: impl Fn(&str) -> String,
) -> std::io::Result<Vec<(String, String)>> {
    let mut lines = vec![
        ("driver".to_string(), driver.identity.digest.to_hex()),
        ("driver-version".to_string(), driver.version.clone()),
    ];
    let files = config_files(cwd, env);
    if files.is_empty() {
        lines.push(("driver-config".into(), "none".into()));
    }
    for file in files {
        let digest: Digest = hasher.hash(&file)?;
        lines.push((
            format!("driver-config {}", shown(&file.to_string_lossy())),
            digest.to_hex(),
        ));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn splits_the_workspace_wrapper_form() {
        let a = argv(&[
            "cachet",
            "/t/clippy-driver",
            "/t/rustc",
            "--crate-name",
            "x",
        ]);
        let p = Programs::split(&a);
        assert_eq!(p.driver, Some(OsStr::new("/t/clippy-driver")));
        assert_eq!(p.rustc, OsStr::new("/t/rustc"));
        assert_eq!(p.args.len(), 2);
        let a = argv(&["cachet", "rustc", "--crate-name", "x", "src/main.rs"]);
        let p = Programs::split(&a);
        assert_eq!((p.driver, p.rustc), (None, OsStr::new("rustc")));
        let a = argv(&["cachet", "rustc", "src/main.rs"]);
        assert!(Programs::split(&a).driver.is_none());
        let a = argv(&["cachet", "rustc"]);
        assert!(Programs::split(&a).args.is_empty());
    }

    #[test]
    fn finds_the_nearest_clippy_config() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let member = root.join("ws/member");
        fs::create_dir_all(&member).unwrap();
        let env_for = |d: &Path| {
            let d = d.to_string_lossy().into_owned();
            move |k: &str| (k == "CARGO_MANIFEST_DIR").then(|| d.clone())
        };
        let above = config_files(&root, env_for(&member));
        assert!(above.iter().all(|p| !p.starts_with(&root)), "{above:?}");
        fs::write(root.join("ws/clippy.toml"), "msrv = \"1.70\"").unwrap();
        assert_eq!(
            config_files(&root, env_for(&member)),
            vec![root.join("ws/clippy.toml")]
        );
        fs::write(member.join(".clippy.toml"), "").unwrap();
        assert_eq!(
            config_files(&root, env_for(&member)),
            vec![member.join(".clippy.toml")]
        );
        let conf_dir = |k: &str| (k == "CLIPPY_CONF_DIR").then(|| "ws".to_string());
        assert_eq!(
            config_files(&root, conf_dir),
            vec![root.join("ws/clippy.toml")]
        );
    }
}
