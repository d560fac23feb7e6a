//! The local cache (L1) in front of the shared server (L2), as one place to look things up.
//!
//! Reads go to L1 first; the server is asked only when L1 has no matching manifest candidate
//! or lacks the entry, and a remote hit fills L1. Writes go to L1, then to the server in the
//! same call (bounded by timeouts, so a slow server costs seconds once, not per crate). An
//! upload that fails is remembered as a pending marker and retried by later calls and by
//! `cachet flush`, so nothing is lost silently. The server client is created on first use
//! only: a build whose crates all hit L1 never opens a connection.
//!
//! Nothing read is trusted: an entry is checked against the key it was looked up under (L1 and
//! L2 alike), an entry from the server is streamed into a temporary file and enters L1 only
//! once checked, and a manifest from the server only suggests candidates (see manifest.rs).
//! Whatever fails a check is a miss, counted, logged, warned about once, and not kept.

use std::cell::{Cell, OnceCell};
use std::fs;
use std::io::{self, Read, Seek, Write};
use std::path::PathBuf;

use cachet_core::entry::{EntryError, EntryHead, ReadAt, BULK_MAX};
use cachet_core::{wire, Digest};
use tracing::{debug, warn};

use crate::config::Config;
use crate::local_store::{LocalStore, ObjectKind};
use crate::manifest::{Candidate, InputPolicy, Manifest};
use crate::notice;
use crate::remote::{Breaker, Remote, RemoteError};
use crate::signing::{SecretKey, Trust};
use crate::stats::{Delta, Stats};

/// Where a hit came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The local cache.
    Local,
    /// The shared server.
    Remote,
}

/// An entry's bytes: in memory when small (the common hit, read in one go), else the open
/// file, read in chunks as it is restored.
pub enum EntryData {
    /// The whole entry.
    Memory(Vec<u8>),
    /// The entry's file.
    File(fs::File),
}

impl EntryData {
    /// Reads a small file whole, keeps a large one open.
    fn load(mut file: fs::File) -> io::Result<EntryData> {
        let len = file.metadata()?.len();
        if len > BULK_MAX {
            return Ok(EntryData::File(file));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        // A download was just written through this handle: read from the start.
        file.seek(io::SeekFrom::Start(0))?;
        file.read_to_end(&mut bytes)?;
        Ok(EntryData::Memory(bytes))
    }

    /// The bytes, to read at any offset.
    pub fn source(&self) -> &dyn ReadAt {
        match self {
            EntryData::Memory(bytes) => bytes,
            EntryData::File(f) => f,
        }
    }
}

/// An entry found for a key, its header and metadata checked (see `cachet_core::entry`).
pub struct Found {
    /// The header and metadata.
    pub head: EntryHead,
    /// The bytes, for the restore.
    pub data: EntryData,
    /// Where it came from.
    pub source: Source,
}

/// A statistics label for an entry that failed its checks.
fn refusal_label(err: &EntryError, source: Source) -> &'static str {
    match (err, source) {
        (EntryError::WrongKey { .. }, Source::Local) => "entry under another key removed",
        (EntryError::WrongKey { .. }, Source::Remote) => "entry from server for another key",
        (_, Source::Local) => "corrupt entry removed",
        (_, Source::Remote) => "corrupt entry from server",
    }
}

/// Whether an entry holds exactly the files the current compile writes (`outputs`): a file it
/// would not write is refused (a forged entry could otherwise overwrite other crates'
/// artifacts), as is a missing one.
fn check_outputs(head: &EntryHead, outputs: &[String]) -> Result<(), &'static str> {
    let files = &head.meta.files;
    if files.iter().any(|f| !outputs.contains(&f.name)) {
        return Err("entry holds an unexpected file");
    }
    if outputs.iter().any(|o| !files.iter().any(|f| &f.name == o)) {
        return Err("entry lacks an output");
    }
    Ok(())
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
    /// This writer's signing key, read on the first store only.
    signer: OnceCell<Option<SecretKey>>,
    /// Set when the server answered a lookup (found or not found), so a miss is counted as a
    /// miss on the server only when the server was asked: a skipped or unreachable server is
    /// counted as an error, not as a server that lacked the entry.
    remote_answered: Cell<bool>,
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
            signer: OnceCell::new(),
            remote_answered: Cell::new(false),
        }
    }

    /// The signing key, when this machine signs what it writes (read once; an unreadable key
    /// is warned about and nothing is signed).
    fn signer(&self) -> Option<&SecretKey> {
        self.signer
            .get_or_init(|| {
                let path = self.config.signing_key.as_ref()?;
                SecretKey::load(path)
                    .map_err(|e| {
                        warn!(error = %e, "signing key");
                        notice::warn_once(
                            &self.config.dir,
                            "signing key",
                            &format!("{e}; results are not signed"),
                        );
                    })
                    .ok()
            })
            .as_ref()
    }

    fn trust(&self) -> Trust<'_> {
        Trust::new(&self.config.trusted_keys)
    }

    /// Counts, logs and warns once about an object from the server that was refused.
    fn refuse(&self, label: &'static str, what: &str, delta: &mut Delta) {
        warn!(label, "refused an object from the server");
        Stats::bump(&mut delta.errors, label);
        notice::warn_once(
            &self.config.dir,
            label,
            &format!("the cache server sent {what} that was refused ({label}); compiling instead"),
        );
    }

    /// True when a server is configured.
    pub fn has_remote(&self) -> bool {
        self.config.remote.is_some()
    }

    /// True when the server answered a lookup of this call (with the object or without it);
    /// false when none is configured, it was skipped after a recent failure, or it failed.
    pub fn remote_answered(&self) -> bool {
        self.remote_answered.get()
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

    /// The manifest for `pre`, from L1, merged with the server's when `ask_remote`. The
    /// server's candidates that name a file `policy` refuses are dropped before anything is
    /// hashed or kept.
    pub fn manifest(
        &self,
        pre: &Digest,
        ask_remote: bool,
        policy: &InputPolicy,
        delta: &mut Delta,
    ) -> Manifest {
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
        let answer = remote.get(&key_of(ObjectKind::Manifest, pre));
        self.remote_answered
            .set(self.remote_answered.get() || answer.is_ok());
        match answer {
            Ok(Some(bytes)) => {
                self.breaker.reset();
                delta.bytes_downloaded += bytes.len() as u64;
                let json = match self.trust().check_manifest(pre, &bytes) {
                    Ok(json) => json,
                    Err(refusal) => {
                        self.refuse(refusal.manifest_label(), "a manifest", delta);
                        return local;
                    }
                };
                let mut theirs = Manifest::decode(json);
                if let Some(refused) = policy.retain_suitable(&mut theirs) {
                    warn!(%pre, path = %refused, "the server's manifest names a file that is not an input");
                    Stats::bump(
                        &mut delta.errors,
                        "manifest from server names an unsuitable file",
                    );
                    notice::warn_once(
                        &self.config.dir,
                        "unsuitable manifest",
                        &format!("the cache server's manifest names {refused}, which cannot be an input of this crate; ignored"),
                    );
                }
                // Keep what the server knows locally too, so the next lookup needs no request.
                if !theirs.candidates.is_empty() {
                    let merged = self.local.update_manifest(pre, |m| m.merge(theirs.clone()));
                    if merged.is_err() {
                        Stats::bump(&mut delta.errors, "cache write");
                    }
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

    /// The entry stored under `key` holding exactly the files `outputs`, from L1 or else from
    /// the server (which then fills L1). An entry that fails its checks is removed (L1) or not
    /// kept (L2) and counted; it is never returned.
    pub fn entry(&self, key: &Digest, outputs: &[String], delta: &mut Delta) -> Option<Found> {
        match self.local.open(ObjectKind::Entry, key) {
            Ok(Some(file)) => {
                let checked = EntryData::load(file)
                    .map_err(EntryError::Restore)
                    .and_then(|data| Ok((EntryHead::read(data.source(), key)?, data)));
                match checked {
                    Ok((head, data)) => match check_outputs(&head, outputs) {
                        Ok(()) => {
                            return Some(Found {
                                head,
                                data,
                                source: Source::Local,
                            })
                        }
                        Err(label) => {
                            warn!(%key, label, "removing an entry that does not fit this compile");
                            Stats::bump(&mut delta.errors, label);
                            self.local.remove(ObjectKind::Entry, key);
                            return None;
                        }
                    },
                    Err(err) => {
                        warn!(%key, error = %err, "removing an entry that fails its checks");
                        Stats::bump(&mut delta.errors, refusal_label(&err, Source::Local));
                        self.local.remove(ObjectKind::Entry, key);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                warn!(error = %e, "cannot read the local cache");
                Stats::bump(&mut delta.errors, "cache read");
            }
        }
        let remote = self.remote(delta)?;
        let (tmp, mut file) = match self.local.temp_for(ObjectKind::Entry, key) {
            Ok(t) => t,
            Err(err) => {
                Stats::bump(&mut delta.errors, "cache write");
                notice::warn_cache_unwritable(&self.config.dir, &err);
                return None;
            }
        };
        let answer = remote.get_to(&key_of(ObjectKind::Entry, key), &mut file);
        self.remote_answered
            .set(self.remote_answered.get() || answer.is_ok());
        let found = match answer {
            Ok(Some(n)) => {
                self.breaker.reset();
                delta.bytes_downloaded += n;
                self.adopt_download(key, outputs, &tmp, file, delta)
            }
            Ok(None) => None,
            Err(e) => {
                self.report(&e, delta);
                None
            }
        };
        if found.is_none() {
            let _ = fs::remove_file(&tmp);
        }
        found
    }

    /// Checks a downloaded entry and moves it into L1; `None` (counted, warned) if it fails.
    fn adopt_download(
        &self,
        key: &Digest,
        outputs: &[String],
        tmp: &std::path::Path,
        file: fs::File,
        delta: &mut Delta,
    ) -> Option<Found> {
        let checked = EntryData::load(file)
            .map_err(EntryError::Restore)
            .and_then(|data| Ok((EntryHead::read(data.source(), key)?, data)));
        let (head, data) = match checked {
            Ok(c) => c,
            Err(err) => {
                warn!(%key, error = %err, "the server sent an entry that fails its checks");
                self.refuse(refusal_label(&err, Source::Remote), "an entry", delta);
                return None;
            }
        };
        if let Err(refusal) = self.trust().check_entry(&head) {
            self.refuse(refusal.entry_label(), "an entry", delta);
            return None;
        }
        if let Err(label) = check_outputs(&head, outputs) {
            self.refuse(label, "an entry", delta);
            return None;
        }
        if let Err(err) = self.local.adopt(ObjectKind::Entry, key, tmp, head.len) {
            Stats::bump(&mut delta.errors, "cache write");
            notice::warn_cache_unwritable(&self.config.dir, &err);
        }
        Some(Found {
            head,
            data,
            source: Source::Remote,
        })
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
        let signer = self.signer();
        let len = self.local.put_with(ObjectKind::Entry, key, |file| {
            let len = write_entry(file)?;
            match signer {
                Some(signer) => {
                    // The entry was just written here: its checksum is the one to sign.
                    let checksum = EntryHead::stored_checksum(&*file)?;
                    file.write_all(&signer.sign_entry(&checksum).to_trailer())?;
                    Ok(len + cachet_core::entry::SIG_LEN as u64)
                }
                None => Ok(len),
            }
        })?;
        let manifest = self.local.update_manifest(pre, |m| m.add(candidate))?;
        let manifest = match signer {
            Some(signer) => signer.sign_manifest(pre, &manifest),
            None => manifest,
        };
        if self.has_remote() {
            // Streamed from L1: the entry is never held in memory whole.
            match self.local.open(ObjectKind::Entry, key) {
                Ok(Some(entry)) => self.upload(
                    &[
                        (ObjectKind::Entry, *key, Body::File(entry)),
                        (ObjectKind::Manifest, *pre, Body::Bytes(manifest)),
                    ],
                    delta,
                ),
                // Evicted already (a tiny cache): the server simply does not get it.
                _ => debug!(%key, "entry gone from L1 before its upload"),
            }
        }
        Ok(len)
    }

    fn upload(&self, objects: &[(ObjectKind, Digest, Body)], delta: &mut Delta) {
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
        // The compile since the lookup does not count against the server's budget.
        remote.new_phase();
        for (i, (kind, digest, body)) in objects.iter().enumerate() {
            match body.put(remote, &key_of(*kind, digest)) {
                Ok(len) => {
                    delta.uploads += 1;
                    delta.bytes_uploaded += len;
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
            let body = match kind {
                ObjectKind::Entry => self
                    .local
                    .open(kind, &digest)
                    .ok()
                    .flatten()
                    .map(Body::File),
                ObjectKind::Manifest => self
                    .local
                    .get(kind, &digest)
                    .ok()
                    .flatten()
                    .map(Body::Bytes),
            };
            if let Some(body) = body {
                match body.put(remote, &key_of(kind, &digest)) {
                    Ok(len) => {
                        delta.uploads += 1;
                        delta.bytes_uploaded += len;
                        done += 1;
                    }
                    Err(e) => {
                        self.report(&e, delta);
                        return done;
                    }
                }
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

/// What an upload sends: an entry streamed from its file, or a small object from memory.
enum Body {
    File(fs::File),
    Bytes(Vec<u8>),
}

impl Body {
    /// Uploads the object; returns its length.
    fn put(&self, remote: &Remote, key: &str) -> Result<u64, RemoteError> {
        match self {
            Body::File(f) => {
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
