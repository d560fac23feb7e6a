//! Uploads that could not be made when an entry was stored: a marker per object in
//! `v1/pending`, retried by later calls that reach the server and by `cachet flush`.

use std::fs;
use std::path::{Path, PathBuf};

use cachet_core::{wire, Digest};
use tracing::debug;

use crate::call::{CallState, Event};
use crate::local_store::{LocalStore, ObjectKind};
use crate::remote::{Remote, RemoteError};

/// The server's key of an object.
pub(super) fn key_of(kind: ObjectKind, digest: &Digest) -> String {
    match kind {
        ObjectKind::Entry => wire::entry_key(digest),
        ObjectKind::Manifest => wire::manifest_key(digest),
    }
}

/// The markers of objects waiting for upload.
pub(super) struct Pending {
    dir: PathBuf,
}

impl Pending {
    /// The markers in the cache directory `cache_dir`.
    pub(super) fn new(cache_dir: &Path) -> Pending {
        Pending {
            dir: cache_dir.join("v1/pending"),
        }
    }

    /// Remembers an object to upload later.
    pub(super) fn mark(&self, kind: ObjectKind, digest: &Digest) {
        let prefix = match kind {
            ObjectKind::Entry => "e",
            ObjectKind::Manifest => "m",
        };
        let _ = fs::create_dir_all(&self.dir)
            .and_then(|()| fs::write(self.dir.join(format!("{prefix}-{digest}")), b""));
    }

    /// Uploads up to `max` pending objects from `local` (an entry as `entry` makes it ready
    /// for the server), recording each upload in `state`. Returns how many were uploaded, or,
    /// when a request failed, that many and the error (the rest stay pending).
    pub(super) fn drain(
        &self,
        local: &LocalStore,
        remote: &Remote,
        max: usize,
        state: &CallState,
        entry: &dyn Fn(&Digest) -> Option<Body>,
    ) -> Result<usize, (usize, RemoteError)> {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return Ok(0);
        };
        let mut done = 0;
        for marker in dir.flatten().take(max) {
            let name = marker.file_name().to_string_lossy().into_owned();
            let Some((kind, digest)) = parse_pending(&name) else {
                let _ = fs::remove_file(marker.path());
                continue;
            };
            // An object evicted locally meanwhile has nothing left to upload.
            let body = match kind {
                ObjectKind::Entry => entry(&digest),
                ObjectKind::Manifest => local.get(kind, &digest).ok().flatten().map(Body::Bytes),
            };
            if let Some(body) = body {
                match body.put(remote, &key_of(kind, &digest)) {
                    Ok(len) => {
                        state.record(Event::Uploaded(len));
                        done += 1;
                    }
                    Err(e) => return Err((done, e)),
                }
            }
            let _ = fs::remove_file(marker.path());
        }
        debug!(done, "pending uploads drained");
        Ok(done)
    }

    /// Objects waiting for upload.
    pub(super) fn count(&self) -> usize {
        fs::read_dir(&self.dir).map(|d| d.count()).unwrap_or(0)
    }
}

/// What an upload sends: an entry streamed from its file (L1's, or a temporary one holding
/// its compressed form), or a small object from memory.
pub(super) enum Body {
    File(fs::File),
    Temp(TempFile),
    Bytes(Vec<u8>),
}

/// A temporary file, removed when dropped.
pub(super) struct TempFile {
    pub(super) path: PathBuf,
    pub(super) file: fs::File,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

impl Body {
    /// Uploads the object; returns its length.
    pub(super) fn put(&self, remote: &Remote, key: &str) -> Result<u64, RemoteError> {
        match self {
            Body::File(f) | Body::Temp(TempFile { file: f, .. }) => {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                remote.put_file(key, f)?;
                Ok(len)
            }
            Body::Bytes(b) => {
                remote.put(key, b)?;
                Ok(b.len() as u64)
            }
        }
    }
}

fn parse_pending(name: &str) -> Option<(ObjectKind, Digest)> {
    let (kind, hex) = name.split_once('-')?;
    let kind = match kind {
        "e" => ObjectKind::Entry,
        "m" => ObjectKind::Manifest,
        _ => return None,
    };
    Some((kind, hex.parse().ok()?))
}
