//! The local cache (L1) in front of the shared server (L2), as one place to look things up.
//!
//! Reads go to L1 first; the server is asked only when L1 has no matching manifest candidate
//! or lacks the entry, and a remote hit fills L1. Writes go to L1, then to the server in the
//! same call (bounded by timeouts, so a slow server costs seconds once, not per crate). An
//! upload that fails is remembered as a pending marker and retried by later calls and by
//! `cachet flush`, so nothing is lost silently. The server client is created on first use
//! only: a build whose crates all hit L1 never opens a connection.

use std::cell::OnceCell;
use std::fs;
use std::io;
use std::path::PathBuf;

use cachet_core::entry::Entry;
use cachet_core::{wire, Digest};
use tracing::{debug, warn};

use crate::config::Config;
use crate::local_store::{LocalStore, ObjectKind};
use crate::manifest::{Candidate, Manifest};
use crate::notice;
use crate::remote::{Breaker, Remote, RemoteError};
use crate::stats::{Delta, Stats};

/// Where a hit came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The local cache.
    Local,
    /// The shared server.
    Remote,
}

/// Pending uploads retried by a call that has just talked to the server successfully.
const DRAIN_PER_CALL: usize = 4;

/// L1 and, when configured, L2.
pub struct Tiers<'a> {
    /// The local cache.
    pub local: LocalStore,
    config: &'a Config,
    client: OnceCell<Option<Remote>>,
    breaker: Breaker,
}

fn key_of(kind: ObjectKind, digest: &Digest) -> String {
    match kind {
        ObjectKind::Entry => wire::entry_key(digest),
        ObjectKind::Manifest => wire::manifest_key(digest),
    }
}

impl<'a> Tiers<'a> {
    /// The tiers of `config`.
    pub fn new(config: &'a Config) -> Tiers<'a> {
        Tiers {
            local: LocalStore::new(&config.dir, config.cache_size),
            config,
            client: OnceCell::new(),
            breaker: Breaker::new(&config.dir),
        }
    }

    /// True when a server is configured.
    pub fn has_remote(&self) -> bool {
        self.config.remote.is_some()
    }

    /// The server client, unless none is configured or a recent failure says to skip it.
    fn remote(&self, delta: &mut Delta) -> Option<&Remote> {
        let rc = self.config.remote.as_ref()?;
        if self.breaker.is_down() {
            Stats::bump(&mut delta.errors, "server skipped after a recent failure");
            return None;
        }
        if self.client.get().is_none() {
            let client = match Remote::new(rc.clone()) {
                Ok(r) => self.probe(r, delta),
                Err(e) => {
                    self.report(&e, delta);
                    None
                }
            };
            let _ = self.client.set(client);
        }
        self.client.get()?.as_ref()
    }

    /// Unless a recent success says the server answers, finds out with one request, one
    /// process at a time: a build's parallel first calls then cost one wait on a dead or
    /// silent server, not one each.
    fn probe(&self, remote: Remote, delta: &mut Delta) -> Option<Remote> {
        if self.breaker.is_up() {
            return Some(remote);
        }
        let _guard = crate::local_store::lock(&self.config.dir, "remote-probe").ok();
        if self.breaker.is_down() {
            Stats::bump(&mut delta.errors, "server skipped after a recent failure");
            return None;
        }
        if self.breaker.is_up() {
            return Some(remote);
        }
        match remote.get_path("/healthz") {
            Ok(_) => {
                self.breaker.reset();
                Some(remote)
            }
            Err(e) => {
                self.report(&e, delta);
                None
            }
        }
    }

    /// Counts, logs and remembers a server failure, warning once per build.
    fn report(&self, err: &RemoteError, delta: &mut Delta) {
        warn!(error = %err, "shared cache server");
        Stats::bump(&mut delta.errors, err.label());
        if err.trips_breaker() || matches!(err, RemoteError::Forbidden { scope: "write", .. }) {
            let _ = self.breaker.trip(err);
        }
        let advice = match err {
            RemoteError::Forbidden { scope: "write", .. } => {
                "; results are kept locally and not uploaded"
            }
            _ => "; building with the local cache only (run `cachet status` to check the server)",
        };
        notice::warn_once(&self.config.dir, err.label(), &format!("{err}{advice}"));
    }

    /// The manifest for `pre`, from L1, merged with the server's when `ask_remote`.
    pub fn manifest(&self, pre: &Digest, ask_remote: bool, delta: &mut Delta) -> Manifest {
        let mut local = match self.local.get(ObjectKind::Manifest, pre) {
            Ok(Some(bytes)) => Manifest::decode(&bytes),
            Ok(None) => Manifest::default(),
            Err(e) => {
                warn!(error = %e, "cannot read the local cache");
                Stats::bump(&mut delta.errors, "cache read");
                Manifest::default()
            }
        };
        if !ask_remote {
            return local;
        }
        let Some(remote) = self.remote(delta) else {
            return local;
        };
        match remote.get(&key_of(ObjectKind::Manifest, pre)) {
            Ok(Some(bytes)) => {
                self.breaker.reset();
                let theirs = Manifest::decode(&bytes);
                delta.bytes_downloaded += bytes.len() as u64;
                // Keep what the server knows locally too, so the next lookup needs no request.
                let merged = self.local.update_manifest(pre, |m| m.merge(theirs.clone()));
                if merged.is_err() {
                    Stats::bump(&mut delta.errors, "cache write");
                }
                local.merge(theirs);
                local
            }
            Ok(None) => local,
            Err(e) => {
                self.report(&e, delta);
                local
            }
        }
    }

    /// The entry stored under `key`, from L1 or else from the server (which then fills L1).
    /// A corrupt entry is removed (L1) or ignored (L2) and counted; it is never returned.
    pub fn entry(&self, key: &Digest, delta: &mut Delta) -> Option<(Entry, u64, Source)> {
        match self.local.get(ObjectKind::Entry, key) {
            Ok(Some(bytes)) => match Entry::decode(&bytes) {
                Ok(e) => return Some((e, bytes.len() as u64, Source::Local)),
                Err(err) => {
                    warn!(%key, error = %err, "removing a corrupt entry");
                    Stats::bump(&mut delta.errors, "corrupt entry removed");
                    self.local.remove(ObjectKind::Entry, key);
                }
            },
            Ok(None) => {}
            Err(e) => {
                warn!(error = %e, "cannot read the local cache");
                Stats::bump(&mut delta.errors, "cache read");
            }
        }
        let remote = self.remote(delta)?;
        match remote.get(&key_of(ObjectKind::Entry, key)) {
            Ok(Some(bytes)) => {
                self.breaker.reset();
                delta.bytes_downloaded += bytes.len() as u64;
                match Entry::decode(&bytes) {
                    Ok(e) => {
                        if let Err(err) = self.local.put(ObjectKind::Entry, key, &bytes) {
                            Stats::bump(&mut delta.errors, "cache write");
                            notice::warn_cache_unwritable(&self.config.dir, &err);
                        }
                        Some((e, bytes.len() as u64, Source::Remote))
                    }
                    Err(err) => {
                        warn!(%key, error = %err, "the server sent a corrupt entry");
                        Stats::bump(&mut delta.errors, "corrupt entry from server");
                        None
                    }
                }
            }
            Ok(None) => None,
            Err(e) => {
                self.report(&e, delta);
                None
            }
        }
    }

    /// Stores a new entry (streamed into L1 by `write_entry`, which returns its length) and its
    /// manifest candidate, then uploads both. Returns the entry's length.
    pub fn store(
        &self,
        pre: &Digest,
        key: &Digest,
        write_entry: impl FnOnce(&mut fs::File) -> io::Result<u64>,
        candidate: Candidate,
        delta: &mut Delta,
    ) -> io::Result<u64> {
        let len = self.local.put_with(ObjectKind::Entry, key, write_entry)?;
        let manifest = self.local.update_manifest(pre, |m| m.add(candidate))?;
        if self.has_remote() {
            // Read back from L1: the entry was never held in memory whole.
            match self.local.get(ObjectKind::Entry, key) {
                Ok(Some(entry)) => self.upload(
                    &[
                        (ObjectKind::Entry, *key, &entry),
                        (ObjectKind::Manifest, *pre, &manifest),
                    ],
                    delta,
                ),
                // Evicted already (a tiny cache): the server simply does not get it.
                _ => debug!(%key, "entry gone from L1 before its upload"),
            }
        }
        Ok(len)
    }

    fn upload(&self, objects: &[(ObjectKind, Digest, &[u8])], delta: &mut Delta) {
        let remote = if self.breaker.is_read_only() {
            None
        } else {
            self.remote(delta)
        };
        let Some(remote) = remote else {
            for (kind, digest, _) in objects {
                self.mark_pending(*kind, digest);
            }
            return;
        };
        for (i, (kind, digest, bytes)) in objects.iter().enumerate() {
            match remote.put(&key_of(*kind, digest), bytes) {
                Ok(()) => {
                    delta.uploads += 1;
                    delta.bytes_uploaded += bytes.len() as u64;
                }
                Err(e) => {
                    self.report(&e, delta);
                    if !matches!(e, RemoteError::Forbidden { .. }) {
                        for (kind, digest, _) in &objects[i..] {
                            self.mark_pending(*kind, digest);
                        }
                        delta.upload_failures += 1;
                    }
                    return;
                }
            }
        }
        self.breaker.reset();
        self.drain_pending(remote, DRAIN_PER_CALL, delta);
    }

    fn pending_dir(&self) -> PathBuf {
        self.config.dir.join("v1/pending")
    }

    fn mark_pending(&self, kind: ObjectKind, digest: &Digest) {
        let prefix = match kind {
            ObjectKind::Entry => "e",
            ObjectKind::Manifest => "m",
        };
        let dir = self.pending_dir();
        let _ = fs::create_dir_all(&dir)
            .and_then(|()| fs::write(dir.join(format!("{prefix}-{digest}")), b""));
    }

    /// Uploads up to `max` pending objects; returns how many were uploaded.
    pub fn drain_pending(&self, remote: &Remote, max: usize, delta: &mut Delta) -> usize {
        let Ok(dir) = fs::read_dir(self.pending_dir()) else {
            return 0;
        };
        let mut done = 0;
        for marker in dir.flatten().take(max) {
            let name = marker.file_name().to_string_lossy().into_owned();
            let Some((kind, digest)) = parse_pending(&name) else {
                let _ = fs::remove_file(marker.path());
                continue;
            };
            // An object evicted locally meanwhile has nothing left to upload.
            if let Ok(Some(bytes)) = self.local.get(kind, &digest) {
                if let Err(e) = remote.put(&key_of(kind, &digest), &bytes) {
                    self.report(&e, delta);
                    return done;
                }
                delta.uploads += 1;
                delta.bytes_uploaded += bytes.len() as u64;
                done += 1;
            }
            let _ = fs::remove_file(marker.path());
        }
        debug!(done, "pending uploads drained");
        done
    }

    /// Uploads every pending object (`cachet flush`). Returns (uploaded, still pending).
    pub fn flush(&self, delta: &mut Delta) -> Result<(usize, usize), RemoteError> {
        let rc = self.config.remote.clone().ok_or_else(|| {
            RemoteError::Config("no server configured (set CACHET_SERVER)".into())
        })?;
        let remote = Remote::new(rc)?;
        let uploaded = self.drain_pending(&remote, usize::MAX, delta);
        Ok((uploaded, self.pending_count()))
    }

    /// Objects waiting for upload.
    pub fn pending_count(&self) -> usize {
        fs::read_dir(self.pending_dir())
            .map(|d| d.count())
            .unwrap_or(0)
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
