//! Whether a proc-macro that may run in a compile can read the checkout's path behind rustc.
//!
//! A proc-macro is a program rustc runs while it expands. One that calls
//! `std::env::var("CARGO_MANIFEST_DIR")` (rust-embed, include_dir) or `OUT_DIR` and bakes the
//! value into its expansion makes the crate expanding it depend on where the checkout is, and
//! rustc's dep-info does not record the read. The key holds cargo's path variables relative to
//! their anchors, so a second checkout would restore the first one's path. By the rule "prove,
//! or do not store", a crate in which such a macro can run is stored for its own checkout only
//! (it then hits only there), unless every proc-macro that can run is proven not to read them.
//!
//! Which proc-macros can run is not known before expansion: a dependency's `macro_rules!` can
//! expand to a proc-macro of its own dependencies, and a crate can re-export one. So every
//! proc-macro rustc could load counts: those given with `--extern`, and every `.so` in the
//! directories rustc searches for crates (`-L dependency=`, `crate=`, `all=`), a superset of
//! the crate's dependency graph.
//!
//! The proof reads the compiled proc-macro, whose code (its own and its dependencies', linked
//! in) is all it can run. A program reads a variable by name, and a literal name is in its
//! read-only data: a proc-macro without the bytes `CARGO_MANIFEST_DIR`, `OUT_DIR`,
//! `CARGO_MANIFEST_PATH`, `CARGO_TARGET_TMPDIR` or `CARGO_RUSTC_CURRENT_DIR` anywhere in its
//! file cannot read them by a literal name (stripping symbols or debug info removes no data).
//! The proc-macros of the service workload (serde_derive, thiserror-impl, clap_derive,
//! tokio-macros, tracing-attributes, rustversion) are all proven, so this costs it no hit.
//!
//! What this cannot see, said plainly in docs/design.md: a variable name built at run time
//! (`format!("{}_DIR", "OUT")`), a macro listing every variable (`std::env::vars`), asking for
//! a span's file on disk (`Span::local_file`), or reading the working directory
//! (`std::env::current_dir`). Symbols cannot tell those apart: the standard library links
//! `current_dir` into every proc-macro (backtrace printing), and a debug build's debug info
//! names every function of the standard library. cargo runs rustc in the workspace root, so a
//! macro that bakes the working directory in is still restored with the first checkout's path.

use std::path::{Path, PathBuf};

use crate::invocation::RustcArgs;
use crate::reason::MacroUnproven;

/// The cargo-set variables whose values are paths of the checkout or its target directory.
const PATH_VARIABLES: &[&str] = &[
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "OUT_DIR",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
];

/// Why a proc-macro file is not proven, or `None` when it is.
fn unproven_reason(so: &Path) -> Option<MacroUnproven> {
    let Ok(bytes) = std::fs::read(so) else {
        return Some(MacroUnproven::Unreadable);
    };
    let has = |needle: &str| memchr::memmem::find(&bytes, needle.as_bytes()).is_some();
    PATH_VARIABLES
        .iter()
        .any(|v| has(v))
        .then_some(MacroUnproven::NamesPathVariable)
}

/// The proc-macro files rustc could load for a compile with `args` in `cwd`.
fn loadable_proc_macros(args: &RustcArgs, cwd: &Path) -> Vec<PathBuf> {
    let is_so = |p: &Path| p.extension().is_some_and(|e| e == "so");
    let mut out: Vec<PathBuf> = args
        .externs
        .iter()
        .filter_map(|e| e.path.as_ref())
        .filter(|p| is_so(p))
        .map(|p| cwd.join(p))
        .collect();
    for dir in args
        .search_paths
        .iter()
        .filter(|s| matches!(s.kind.as_str(), "dependency" | "crate" | "all"))
    {
        let Ok(entries) = std::fs::read_dir(cwd.join(&dir.path)) else {
            continue;
        };
        out.extend(entries.flatten().map(|e| e.path()).filter(|p| is_so(p)));
    }
    out.sort();
    out.dedup();
    out
}

/// The verdict for `so`, read from `records` (a directory of small files named by the file's
/// path and fingerprint: a proc-macro is read once, not by every compile that could load it).
fn verdict(so: &Path, records: &Path) -> Option<MacroUnproven> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(so) else {
        return Some(MacroUnproven::Unreadable);
    };
    let id = format!(
        "{}\0{}:{}:{}:{}:{}",
        so.display(),
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime_nsec() + meta.mtime() * 1_000_000_000,
        meta.ctime_nsec() + meta.ctime() * 1_000_000_000
    );
    let record = records.join(blake3::hash(id.as_bytes()).to_hex().as_str());
    match std::fs::read(&record).as_deref() {
        Ok(b"proven") => return None,
        Ok(b"unproven") => return Some(MacroUnproven::Recorded),
        _ => {}
    }
    let verdict = unproven_reason(so);
    let text: &[u8] = if verdict.is_none() {
        b"proven"
    } else {
        b"unproven"
    };
    let _ = std::fs::create_dir_all(records);
    let _ = crate::fsutil::write_atomic(&record, text);
    verdict
}

/// Why a crate compiled with `args` in `cwd` may have a checkout path baked in by a
/// proc-macro, or `None` when every proc-macro that can run in it is proven not to read one.
/// Verdicts are kept in `records` (a directory in the cache).
pub fn may_read_checkout_path(
    args: &RustcArgs,
    cwd: &Path,
    records: &Path,
) -> Option<MacroUnproven> {
    if !args.loads_crates() {
        return None;
    }
    loadable_proc_macros(args, cwd)
        .iter()
        .find_map(|so| verdict(so, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_naming_a_path_variable_is_not_proven() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let clean = write("libclean.so", b"\0CARGO_PKG_NAME\0_ZN3std3env4_var17h01E\0");
        assert_eq!(unproven_reason(&clean), None);
        for var in PATH_VARIABLES {
            let reads = write("libreads.so", format!("xx{var}yy").as_bytes());
            assert!(unproven_reason(&reads).is_some(), "{var}");
        }
        assert!(unproven_reason(&dir.path().join("missing.so")).is_some());
    }
}
