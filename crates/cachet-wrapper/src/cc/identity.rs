//! Which C compiler is running: its file by content, what `-v` and `--version` say, the specs
//! files it reads, and its built-in include directories; computed once and remembered.
//!
//! Running the compiler three times and hashing its binary on every call would cost more than
//! a hit, so the identity is recorded in the cache directory under the compiler's resolved
//! path and reused while the fingerprints (device, inode, size, mtime, ctime) of that file
//! and of every file named in its `-v` output are unchanged. A wrapper script such as
//! `musl-gcc` is hashed as a script; the gcc it runs shows in `-v` (version, target, the
//! specs file and `lto-wrapper` paths, which change with any gcc upgrade).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cachet_core::{Digest, Hasher};
use serde::{Deserialize, Serialize};

use crate::file_hash::{hash_contents, Fingerprint};
use crate::fsutil;

/// Version of the identity computation; bump to re-identify every compiler.
const IDENTITY_VERSION: &str = "cachet-cc-identity-v1";

/// A C compiler's identity.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CcCompiler {
    /// The file that runs (found in `PATH`, links not followed: `argv[0]` matters to drivers).
    pub path: PathBuf,
    /// Digest of its contents, its `-v` and `--version` output, and the specs files it reads.
    pub digest: Digest,
    /// True when it accepts `-ffile-prefix-map` (gcc 8, clang 10 and later).
    pub prefix_map: bool,
    /// Its built-in include directories (C and C++), in search order.
    pub system_dirs: Vec<String>,
}

/// Why the compiler could not be identified (the call then runs unchanged).
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Not found in `PATH`, or only cachet itself was.
    #[error("compiler {0} not found in PATH")]
    NotFound(String),
    /// It could not be run or read.
    #[error("failed to run or read {path}: {source}")]
    Io {
        /// The compiler.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

#[derive(Serialize, Deserialize)]
struct Record {
    version: String,
    fingerprint: Digest,
    /// Files named by `-v`, whose fingerprints are part of `fingerprint`.
    watched: Vec<PathBuf>,
    compiler: CcCompiler,
}

/// Finds `name` (a path, or a name looked up in `PATH`), skipping cachet itself so that a
/// `cc` link to cachet early in `PATH` cannot make it call itself.
pub fn resolve(name: &str) -> Result<PathBuf, IdentityError> {
    // The same file as cachet's own (through any symlink or hard link): one `stat` each,
    // not a path resolution per candidate.
    let me = std::env::current_exe()
        .and_then(fs::metadata)
        .ok()
        .map(|m| (m.dev(), m.ino()));
    let is_me = |m: &fs::Metadata| me == Some((m.dev(), m.ino()));
    let p = Path::new(name);
    if p.components().count() > 1 {
        return match fs::metadata(p) {
            Ok(m) if m.is_file() && !is_me(&m) => Ok(p.to_path_buf()),
            _ => Err(IdentityError::NotFound(name.to_string())),
        };
    }
    let paths = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&paths) {
        let cand = dir.join(p);
        if let Ok(meta) = fs::metadata(&cand) {
            if meta.is_file() && meta.mode() & 0o111 != 0 && !is_me(&meta) {
                return Ok(cand);
            }
        }
    }
    Err(IdentityError::NotFound(name.to_string()))
}

fn fingerprint_of(files: &[PathBuf]) -> Digest {
    let mut h = Hasher::new(IDENTITY_VERSION);
    for f in files {
        h.str("file", &f.to_string_lossy());
        match fs::metadata(f) {
            Ok(m) => Fingerprint::of(&m).feed(&mut h, "fingerprint"),
            Err(_) => {
                h.str("missing", "");
            }
        }
    }
    h.finish()
}

fn record_path(records: &Path, compiler: &Path) -> PathBuf {
    let h = Digest::of(compiler.as_os_str().as_encoded_bytes()).to_hex();
    records.join(format!("cc-{}", &h[..32]))
}

/// The identity of `path`, from its record when still valid.
pub fn identify(path: &Path, records: Option<&Path>) -> Result<CcCompiler, IdentityError> {
    let real = fs::canonicalize(path).map_err(|source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let rec_path = records.map(|r| record_path(r, path));
    if let Some(rp) = &rec_path {
        if let Some(rec) = fs::read(rp)
            .ok()
            .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
        {
            let mut files = vec![path.to_path_buf(), real.clone()];
            files.extend(rec.watched.iter().cloned());
            if rec.version == IDENTITY_VERSION && rec.fingerprint == fingerprint_of(&files) {
                return Ok(rec.compiler);
            }
        }
    }
    let mut files = vec![path.to_path_buf(), real.clone()];
    let before = fingerprint_of(&files);
    let io = |source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    };
    let content = hash_contents(&real).map_err(io)?;
    let verbose = run(path, &["-v"]).map_err(io)?;
    let version = run(path, &["--version"]).map_err(io)?;
    let mut h = Hasher::new(IDENTITY_VERSION);
    h.digest("content", &content);
    h.str("-v", &verbose);
    h.str("--version", &version);
    // Absolute paths in `-v` (specs files, lto-wrapper) are read by the driver or change with
    // the installation: hash the small ones, watch all of them.
    let mut watched = Vec::new();
    for word in verbose.split(|c: char| c.is_whitespace() || c == '=') {
        let p = Path::new(word);
        if p.is_absolute() && p.is_file() {
            watched.push(p.to_path_buf());
            if word.ends_with(".specs") || word.ends_with("specs") {
                let d = hash_contents(p).map_err(io)?;
                h.str("specs", word);
                h.digest("specs-content", &d);
            }
        }
    }
    watched.sort();
    watched.dedup();
    let digest = h.finish();
    let mut system_dirs = Vec::new();
    for lang in ["c", "c++"] {
        if let Ok(text) = run(path, &["-x", lang, "-E", "-v", "/dev/null"]) {
            for d in search_dirs(&text) {
                if !system_dirs.contains(&d) {
                    system_dirs.push(d);
                }
            }
        }
    }
    let compiler = CcCompiler {
        path: path.to_path_buf(),
        digest,
        prefix_map: supports_prefix_map(&verbose),
        system_dirs,
    };
    files.extend(watched.iter().cloned());
    if let Some(rp) = rec_path {
        // Only remember what did not change while we looked at it.
        if fingerprint_of(&files[..2]) == before {
            let rec = Record {
                version: IDENTITY_VERSION.into(),
                fingerprint: fingerprint_of(&files),
                watched,
                compiler: compiler.clone(),
            };
            if let Ok(bytes) = serde_json::to_vec(&rec) {
                if let Some(parent) = rp.parent() {
                    let _ = fs::create_dir_all(parent);
                }
                let _ = fsutil::write_atomic(&rp, &bytes);
            }
        }
    }
    Ok(compiler)
}

/// Runs the compiler with `args`; stdout and stderr together (gcc prints `-v` on stderr).
fn run(path: &Path, args: &[&str]) -> std::io::Result<String> {
    let out = Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .env("LC_ALL", "C")
        .output()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(text)
}

/// The directories between `#include <...> search starts here:` and `End of search list.`.
fn search_dirs(text: &str) -> Vec<String> {
    let mut dirs = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("#include <...> search starts here") {
            inside = true;
        } else if line.starts_with("End of search list") {
            break;
        } else if inside {
            // Dependency files name headers through the directory as written, with `..`
            // resolved lexically; keep that form and the canonical one.
            let d = line.trim().trim_end_matches(" (framework directory)");
            let lexical = crate::paths::absolute(Path::new(d));
            if let Ok(c) = fs::canonicalize(d) {
                let c = c.to_string_lossy().into_owned();
                if c != lexical {
                    dirs.push(c);
                }
            }
            dirs.push(lexical);
        }
    }
    dirs
}

/// gcc 8 and clang 10 introduced `-ffile-prefix-map`; `-v` says `gcc version 12.2.0 ...` or
/// `clang version 14.0.6`, whatever the driver is called.
fn supports_prefix_map(verbose: &str) -> bool {
    let major_after = |marker: &str| {
        let at = verbose.find(marker)? + marker.len();
        verbose[at..].split('.').next()?.trim().parse::<u32>().ok()
    };
    if let Some(m) = major_after("clang version ") {
        return m >= 10;
    }
    major_after("gcc version ").is_some_and(|m| m >= 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_map_support_by_version() {
        assert!(supports_prefix_map(
            "Target: x86_64-linux-gnu\ngcc version 12.2.0 (Debian 12.2.0-14+deb12u1)\n"
        ));
        assert!(!supports_prefix_map("gcc version 7.5.0 (GCC)\n"));
        assert!(supports_prefix_map(
            "Debian clang version 14.0.6\nTarget: x86_64"
        ));
        assert!(!supports_prefix_map("clang version 9.0.1 \n"));
        assert!(!supports_prefix_map("tcc version 0.9.27\n"));
    }

    #[test]
    fn reads_the_search_list() {
        let text = "ignoring nonexistent directory \"/x\"\n#include \"...\" search starts here:\n#include <...> search starts here:\n /nonexistent/a\n /nonexistent/b\nEnd of search list.\n";
        assert_eq!(search_dirs(text), vec!["/nonexistent/a", "/nonexistent/b"]);
    }
}
