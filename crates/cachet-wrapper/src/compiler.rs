//! Which compiler is running: rustc's identity, hashed once and remembered.
//!
//! The identity covers rustc's `-vV` output (version, commit, host, LLVM), the contents of the
//! rustc binary and of the libraries it loads from the sysroot's `lib/` (librustc_driver),
//! and, per target, the standard library that gets linked into every crate
//! (`lib/rustlib/<target>/lib`). Running `rustc -vV` and hashing ~300 MB on every call would
//! dwarf a cache hit, so the result is recorded in the cache directory and reused while the
//! binary's and the library directory's fingerprints (device, inode, size, mtime, ctime of
//! every file) are unchanged. A rustup proxy is never fingerprinted itself: it can select a
//! different toolchain without changing, so cachet resolves it to the real rustc first.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cachet_core::{Digest, Hasher};
use serde::{Deserialize, Serialize};

use crate::file_hash::FileHasher;
use crate::fingerprint::Fingerprint;
use crate::fsutil;

/// Version of the identity computation; bump to re-identify every compiler.
const IDENTITY_VERSION: &str = "cachet-compiler-identity-v1";

/// A compiler's identity.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Compiler {
    /// The real rustc binary.
    pub path: PathBuf,
    /// `rustc -vV` output.
    pub version_verbose: String,
    /// The default sysroot.
    pub sysroot: PathBuf,
    /// The host triple.
    pub host: String,
    /// Digest of the binary, its libraries and `-vV`.
    pub digest: Digest,
}

/// Why a compiler could not be identified (the call then passes through).
#[derive(Debug, thiserror::Error)]
pub enum CompilerError {
    /// rustc could not be run.
    #[error("failed to run {path} -vV: {source}")]
    Run {
        /// The compiler path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// rustc ran but did not answer as rustc does.
    #[error("{path} does not look like rustc: {detail}")]
    NotRustc {
        /// The compiler path.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// A file of the toolchain could not be read.
    #[error("failed to read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

#[derive(Serialize, Deserialize)]
struct Record {
    fingerprint: Digest,
    compiler: Compiler,
}

/// Resolves `rustc` (a path, or a name looked up in PATH) to a file.
pub fn resolve(rustc: &OsStr) -> PathBuf {
    let p = Path::new(rustc);
    if p.components().count() > 1 {
        return p.to_path_buf();
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let cand = dir.join(p);
            if cand.is_file() {
                return cand;
            }
        }
    }
    p.to_path_buf()
}

/// True when `path` is a rustup proxy (a hard link or copy of `rustup` beside it).
fn is_rustup_proxy(path: &Path) -> bool {
    let Some(dir) = path.parent() else {
        return false;
    };
    let (Ok(a), Ok(b)) = (fs::metadata(path), fs::metadata(dir.join("rustup"))) else {
        return false;
    };
    use std::os::unix::fs::MetadataExt;
    (a.dev() == b.dev() && a.ino() == b.ino()) || a.len() == b.len()
}

fn run_text(path: &Path, args: &[&str]) -> Result<String, CompilerError> {
    let out = Command::new(path)
        .args(args)
        .output()
        .map_err(|source| CompilerError::Run {
            path: path.to_path_buf(),
            source,
        })?;
    if !out.status.success() {
        return Err(CompilerError::NotRustc {
            path: path.to_path_buf(),
            detail: format!("`{}` exited with {}", args.join(" "), out.status),
        });
    }
    String::from_utf8(out.stdout).map_err(|_| CompilerError::NotRustc {
        path: path.to_path_buf(),
        detail: "output is not UTF-8".into(),
    })
}

/// Fingerprint of the binary and of every file in the sysroot's `lib/` directory.
fn fingerprint(binary: &Path, sysroot_lib: Option<&Path>) -> Option<Digest> {
    let mut h = Hasher::new("compiler-fingerprint");
    h.str("path", &binary.to_string_lossy());
    Fingerprint::of(&fs::metadata(binary).ok()?).feed(&mut h, "binary");
    if let Some(lib) = sysroot_lib {
        for (name, meta) in list_files(lib) {
            h.str("lib", &name);
            Fingerprint::of(&meta).feed(&mut h, "lib-fp");
        }
    }
    Some(h.finish())
}

/// Regular files directly inside `dir`, sorted by name.
pub fn list_files(dir: &Path) -> Vec<(String, fs::Metadata)> {
    let mut out: Vec<(String, fs::Metadata)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let meta = fs::metadata(e.path()).ok()?;
            meta.is_file()
                .then(|| (e.file_name().to_string_lossy().into_owned(), meta))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Identifies the compiler at `rustc`, using and refreshing records under `records`.
pub fn identify(
    rustc: &OsStr,
    records: Option<&Path>,
    hasher: &FileHasher,
) -> Result<Compiler, CompilerError> {
    let mut binary = resolve(rustc);
    if is_rustup_proxy(&binary) {
        let sysroot = run_text(&binary, &["--print", "sysroot"])?;
        // The proxy's own name: `rustc`, or `clippy-driver` for a workspace wrapper.
        let name = binary
            .file_name()
            .unwrap_or(OsStr::new("rustc"))
            .to_os_string();
        binary = Path::new(sysroot.trim()).join("bin").join(name);
    }
    let record_path = records.map(|dir| {
        dir.join(format!(
            "{}.json",
            Digest::of(binary.as_os_str().as_encoded_bytes())
        ))
    });
    // Fast path: a record whose fingerprint still matches.
    if let Some(rp) = &record_path {
        if let Ok(bytes) = fs::read(rp) {
            if let Ok(rec) = serde_json::from_slice::<Record>(&bytes) {
                let lib = rec.compiler.sysroot.join("lib");
                if fingerprint(&binary, Some(&lib)) == Some(rec.fingerprint) {
                    return Ok(rec.compiler);
                }
            }
        }
    }
    // The first calls of a build all find no record; let one of them hash the toolchain while
    // the others wait for its record instead of hashing the same 300 MB again.
    let _guard = records.and_then(|dir| fsutil::lock(dir, "identify").ok());
    if let Some(rp) = &record_path {
        if let Ok(rec) = fs::read(rp)
            .map_err(|_| ())
            .and_then(|b| serde_json::from_slice::<Record>(&b).map_err(|_| ()))
        {
            if fingerprint(&binary, Some(&rec.compiler.sysroot.join("lib")))
                == Some(rec.fingerprint)
            {
                return Ok(rec.compiler);
            }
        }
    }
    let version_verbose = run_text(&binary, &["-vV"])?;
    let host = version_verbose
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .ok_or_else(|| CompilerError::NotRustc {
            path: binary.clone(),
            detail: "`-vV` printed no host line".into(),
        })?;
    let sysroot = PathBuf::from(run_text(&binary, &["--print", "sysroot"])?.trim());
    let lib = sysroot.join("lib");
    let mut h = Hasher::new(IDENTITY_VERSION);
    h.str("version", &version_verbose);
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CompilerError::Read { path, source }
    };
    h.digest("binary", &hasher.hash(&binary).map_err(read_err(&binary))?);
    for (name, _) in list_files(&lib) {
        let p = lib.join(&name);
        h.str("lib", &name);
        h.digest("lib-content", &hasher.hash(&p).map_err(read_err(&p))?);
    }
    let compiler = Compiler {
        path: binary.clone(),
        version_verbose,
        sysroot,
        host,
        digest: h.finish(),
    };
    // A binary replaced moments ago could be replaced again within one timestamp tick without
    // changing its fingerprint; remember only settled toolchains (see file_hash.rs).
    let settled = fs::metadata(&binary)
        .map(|m| crate::file_hash::now_ns() - Fingerprint::of(&m).changed_ns() > 2_000_000_000)
        .unwrap_or(false);
    if let (Some(rp), Some(fp), true) = (&record_path, fingerprint(&binary, Some(&lib)), settled) {
        let rec = Record {
            fingerprint: fp,
            compiler: compiler.clone(),
        };
        if let Ok(bytes) = serde_json::to_vec(&rec) {
            let _ = fsutil::write_atomic(rp, &bytes);
        }
    }
    Ok(compiler)
}

/// Content hashes of `files` (names inside `dir`), computed by two threads.
fn hash_in_parallel(
    dir: &Path,
    files: &[(String, fs::Metadata)],
    hasher: &FileHasher,
) -> std::io::Result<Vec<Digest>> {
    let half = files.len() / 2;
    let (first, second) = files.split_at(half);
    let hash_all = |part: &[(String, fs::Metadata)]| -> std::io::Result<Vec<Digest>> {
        part.iter()
            .map(|(name, _)| hasher.hash(&dir.join(name)))
            .collect()
    };
    std::thread::scope(|scope| {
        let other = scope.spawn(|| hash_all(second));
        let mut out = hash_all(first)?;
        out.extend(
            other
                .join()
                .map_err(|_| std::io::Error::other("hashing thread panicked"))??,
        );
        Ok(out)
    })
}

/// Digest of the standard library for `target` in `sysroot` (what every crate links against),
/// remembered under `records` while the directory's fingerprint is unchanged.
pub fn target_libs_digest(
    sysroot: &Path,
    target: &str,
    records: Option<&Path>,
    hasher: &FileHasher,
) -> std::io::Result<Digest> {
    let dir = sysroot.join("lib").join("rustlib").join(target).join("lib");
    dirs_digest(&[dir], records, hasher)
}

/// Digest of the regular files directly inside `dirs` (missing directories count as empty),
/// remembered under `records` while their fingerprints are unchanged.
pub fn dirs_digest(
    dirs: &[PathBuf],
    records: Option<&Path>,
    hasher: &FileHasher,
) -> std::io::Result<Digest> {
    let listed: Vec<(&PathBuf, Vec<(String, fs::Metadata)>)> =
        dirs.iter().map(|d| (d, list_files(d))).collect();
    let mut fp = Hasher::new("target-libs-fingerprint");
    for (dir, files) in &listed {
        fp.str("dir", &dir.to_string_lossy());
        for (name, meta) in files {
            fp.str("name", name);
            Fingerprint::of(meta).feed(&mut fp, "fp");
        }
    }
    let fp = fp.finish();
    let record = records.map(|r| r.join(format!("libs-{fp}")));
    let remembered = || {
        let text = fs::read_to_string(record.as_ref()?).ok()?;
        text.trim().parse::<Digest>().ok()
    };
    if let Some(d) = remembered() {
        return Ok(d);
    }
    // As in `identify`: one process hashes, the others wait for its record.
    let _guard = records.and_then(|dir| fsutil::lock(dir, "target-libs").ok());
    if let Some(d) = remembered() {
        return Ok(d);
    }
    let mut h = Hasher::new("target-libs");
    let mut settled = true;
    for (i, (dir, files)) in listed.iter().enumerate() {
        // Hash the files on two threads: this runs once per toolchain, at the start of a build.
        let contents = hash_in_parallel(dir, files, hasher)?;
        // By position, not path: the same toolchain installed elsewhere has the same digest.
        if i > 0 {
            h.str("dir", &i.to_string());
        }
        for ((name, meta), digest) in files.iter().zip(&contents) {
            h.str("name", name);
            h.digest("content", digest);
            settled &=
                crate::file_hash::now_ns() - Fingerprint::of(meta).changed_ns() > 2_000_000_000;
        }
    }
    let digest = h.finish();
    // Only remember a fingerprint of files that have settled (see file_hash.rs).
    if let (Some(rec), true) = (&record, settled) {
        let _ = fsutil::write_atomic(rec, digest.to_hex().as_bytes());
    }
    Ok(digest)
}
