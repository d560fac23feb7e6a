//! What the disk store does with the directory it opens: check its layout version, set aside
//! what a killed server left behind, and rebuild the index from the files in the background.
//!
//! After a `kill -9` at any instant, the directory holds only:
//! - complete objects in `objects-v1/` (a commit renames a finished temporary file, so an
//!   object is whole or absent) and perhaps empty shard directories;
//! - temporary files in `tmp/` (uploads in progress, never acknowledged): moved to the trash
//!   whole before the store serves;
//! - evicted, pruned or purged objects in `trash/` (moved there under the index lock before
//!   being deleted): deleted in the background.
//!
//! So the scan indexes exactly what is in `objects-v1/`. It runs while the store serves, and
//! the store changes under it: each file it saw is looked at again under the index lock
//! ([`Inner::index_if_present`]), because between the look and the lock it may have been
//! evicted (and must not be counted again), and an object committed meanwhile is already in
//! the index (and is not counted twice).

use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Weak;

use cachet_core::Digest;

use super::index::millis_of;
use super::inner::{delete_files, io_err, Inner, VERSION};
use crate::storage::StoreError;

/// Index entries inserted per lock acquisition during the start-up scan.
const SCAN_BATCH: usize = 1024;

/// Checks (or, in an empty directory, writes) the `VERSION` file of the store at `root`.
pub(super) fn check_version(root: &Path) -> Result<(), StoreError> {
    let version_file = root.join("VERSION");
    match fs::read_to_string(&version_file) {
        Ok(v) if v.trim() == VERSION => Ok(()),
        Ok(v) => Err(StoreError::Io {
            op: "use the store (unsupported layout) at",
            path: root.to_path_buf(),
            source: std::io::Error::other(format!(
                "found {:?}, this server reads {VERSION:?}: use another directory",
                v.trim()
            )),
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let empty = fs::read_dir(root)
                .map_err(io_err("list", root))?
                .next()
                .is_none();
            if !empty {
                return Err(StoreError::Io {
                    op: "use as a store the non-empty directory",
                    path: root.to_path_buf(),
                    source: std::io::Error::other(
                        "it has no VERSION file: point --storage at an empty or new directory",
                    ),
                });
            }
            fs::write(&version_file, format!("{VERSION}\n")).map_err(io_err("write", &version_file))
        }
        Err(err) => Err(io_err("read", &version_file)(err)),
    }
}

/// Deletes everything in `trash` on a background thread.
pub(super) fn empty_trash_in_background(trash: PathBuf) {
    let _ = std::thread::Builder::new()
        .name("cachet-trash".into())
        .spawn(move || {
            if let Ok(entries) = fs::read_dir(&trash) {
                for entry in entries.flatten() {
                    let path = entry.path();
                    let result = if path.is_dir() {
                        fs::remove_dir_all(&path)
                    } else {
                        fs::remove_file(&path)
                    };
                    if let Err(err) = result {
                        if err.kind() != std::io::ErrorKind::NotFound {
                            tracing::warn!(path = %path.display(), cause = %err, "failed to empty the trash");
                        }
                    }
                }
            }
        });
}

/// Walks `objects-v1/<ns>/<hh>/<hash>` and feeds the index in batches; then evicts what does
/// not fit `--max-size` and marks the index ready.
pub(super) fn scan(objects: &Path, inner: &Weak<Inner>, stop: &AtomicBool) {
    let started = std::time::Instant::now();
    let mut batch: Vec<(String, [u8; 32], u64)> = Vec::with_capacity(SCAN_BATCH);
    let flush = |batch: &mut Vec<(String, [u8; 32], u64)>| -> bool {
        let Some(inner) = inner.upgrade() else {
            return false;
        };
        let mut idx = inner.lock_index();
        for (ns, hash, millis) in batch.drain(..) {
            inner.index_if_present(&mut idx, &ns, hash, millis);
        }
        true
    };
    let mut count = 0u64;
    for ns_entry in fs::read_dir(objects).into_iter().flatten().flatten() {
        let ns = ns_entry.file_name().to_string_lossy().into_owned();
        if !cachet_core::wire::is_valid_namespace(&ns) {
            continue;
        }
        for shard in fs::read_dir(ns_entry.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            for file in fs::read_dir(shard.path()).into_iter().flatten().flatten() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let name = file.file_name();
                let Some(digest) = name.to_str().and_then(|n| Digest::from_str(n).ok()) else {
                    continue;
                };
                let Ok(meta) = file.metadata() else { continue };
                let millis = meta.modified().map(millis_of).unwrap_or(0);
                batch.push((ns.clone(), digest.0, millis));
                count += 1;
                if batch.len() >= SCAN_BATCH && !flush(&mut batch) {
                    return;
                }
            }
        }
    }
    if !flush(&mut batch) {
        return;
    }
    if let Some(inner) = inner.upgrade() {
        let retired = {
            let mut idx = inner.lock_index();
            inner.evict_over_limit(&mut idx)
        };
        delete_files(&retired);
        inner.index_ready.store(true, Ordering::Release);
        tracing::info!(
            objects = count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "indexed existing objects"
        );
    }
}
