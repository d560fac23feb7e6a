//! Warnings for the user, shown once per cargo invocation rather than once per crate.
//!
//! The wrapper's stderr is rustc's stderr to cargo, which shows non-JSON lines as they are.
//! A problem that affects every crate (a bad setting, an unwritable cache) would otherwise be
//! printed a hundred times, so each warning leaves a marker named after its text and the
//! parent process (cargo) and is printed only by the first wrapper to create the marker.

use std::fs;
use std::path::{Path, PathBuf};

use cachet_core::Digest;

fn markers_dir(cache_dir: &Path) -> PathBuf {
    let preferred = cache_dir.join("notices");
    if fs::create_dir_all(&preferred).is_ok() {
        return preferred;
    }
    // An unwritable cache directory is itself worth one warning, not one per crate.
    let uid = current_uid();
    let fallback = std::env::temp_dir().join(format!("cachet-notices-{uid}"));
    let _ = fs::create_dir_all(&fallback);
    fallback
}

fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

/// Prints `warning: cachet: {message}` to stderr unless this cargo invocation already saw a
/// warning about `topic` (messages about one problem may differ in detail, e.g. the errno).
pub fn warn_once(cache_dir: &Path, topic: &str, message: &str) {
    let dir = markers_dir(cache_dir);
    let parent = std::os::unix::process::parent_id();
    let marker = dir.join(format!(
        "{}-{parent}",
        &Digest::of(topic.as_bytes()).to_hex()[..16]
    ));
    match fs::File::options()
        .write(true)
        .create_new(true)
        .open(&marker)
    {
        Ok(_) => {
            eprintln!("warning: cachet: {message}");
            remove_stale(&dir);
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        // No marker can be written anywhere: better repeated than silent.
        Err(_) => eprintln!("warning: cachet: {message}"),
    }
}

fn remove_stale(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 24 * 3600);
        if old {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// The one warning about a cache directory that cannot be written.
pub fn warn_cache_unwritable(cache_dir: &Path, err: &std::io::Error) {
    warn_once(
        cache_dir,
        "cache-unwritable",
        &format!(
            "cannot write the cache in {}: {err}; builds go on without caching (free space, fix permissions, or set CACHET_DIR)",
            cache_dir.display()
        ),
    );
}

/// Shows a warning a call recorded (see `call.rs`).
pub fn show(cache_dir: &Path, notice: &crate::call::Notice) {
    match notice {
        crate::call::Notice::Once { topic, message } => warn_once(cache_dir, topic, message),
        crate::call::Notice::CacheUnwritable(err) => warn_cache_unwritable(cache_dir, err),
    }
}
