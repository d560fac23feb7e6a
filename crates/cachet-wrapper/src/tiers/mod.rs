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
//! Whatever fails a check is a miss, logged and not kept.
//!
//! The tiers count nothing and print nothing: what they observe (a server failure, a refused
//! object, bytes moved, an upload queued) is recorded as an `Event` in the call's `CallState`,
//! and `lib.rs` counts it and shows its warning once per build (see `call.rs`). The one thing
//! they act on themselves is the breaker (the server's health, shared by every process).

mod found;
mod pending;

use std::cell::{Cell, OnceCell};
use std::fs;
use std::io::{self, Seek, Write};

use cachet_core::entry::{EntryError, EntryHead};
use cachet_core::Digest;
use tracing::{debug, warn};

use crate::call::{CallState, Event, Notice, Problem};
use crate::config::Config;
use crate::local_store::{LocalStore, ObjectKind};
use crate::manifest::{Candidate, InputPolicy, Manifest};
use crate::reason::RefusedObject;
use crate::remote::{Breaker, Remote, RemoteError};
use crate::signing::{SecretKey, Trust};
pub use found::{EntryData, Found};
use pending::{key_of, Body, Pending, TempFile};

pub use crate::call::Source;

/// A statistics label for an entry that failed its checks.
fn refusal_label(err: &EntryError, source: Source) -> RefusedObject {
    match (err, source) {
        (EntryError::WrongKey { .. }, Source::Local) => RefusedObject::LocalWrongKey,
        (EntryError::WrongKey { .. }, Source::Remote) => RefusedObject::RemoteWrongKey,
        (_, Source::Local) => RefusedObject::LocalCorrupt,
        (_, Source::Remote) => RefusedObject::RemoteCorrupt,
    }
}

/// Whether an entry holds exactly the files the current compile writes (`outputs`): a file it
/// would not write is refused (a forged entry could otherwise overwrite other crates'
/// artifacts), as is a missing one.
fn check_outputs(head: &EntryHead, outputs: &[String]) -> Result<(), RefusedObject> {
    let files = &head.meta.files;
    if files.iter().any(|f| !outputs.contains(&f.name)) {
        return Err(RefusedObject::UnexpectedFile);
    }
    if outputs.iter().any(|o| !files.iter().any(|f| &f.name == o)) {
        return Err(RefusedObject::LacksOutput);
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
    /// Where what happened is recorded, for the caller to count and warn about.
    state: &'a CallState,
}

impl<'a> Tiers<'a> {
    /// The tiers of `config`, recording what happens in `state`.
    pub fn new(config: &'a Config, state: &'a CallState) -> Tiers<'a> {
        Tiers {
            local: LocalStore::new(&config.dir, config.cache_size),
            config,
            client: OnceCell::new(),
            breaker: Breaker::new(&config.dir),
            signer: OnceCell::new(),
            remote_answered: Cell::new(false),
            state,
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
                        self.state.record(Event::Notice(Notice::Once {
                            topic: "signing key",
                            message: format!("{e}; results are not signed"),
                        }));
                    })
                    .ok()
            })
            .as_ref()
    }

    fn trust(&self) -> Trust<'_> {
        Trust::new(&self.config.trusted_keys)
    }

    /// Logs an object from the server that was refused, and records it with its warning.
    fn refuse(&self, label: RefusedObject, what: &str) {
        warn!(%label, "refused an object from the server");
        let message =
            format!("the cache server sent {what} that was refused ({label}); compiling instead");
        self.state.record(Event::Problem(
            Problem::Refused(label),
            Some(Notice::Once {
                topic: label.as_str(),
                message,
            }),
        ));
    }

    /// Records that the local cache could not be written, with its warning.
    fn unwritable(&self, err: io::Error) {
        self.state.record(Event::Problem(
            Problem::CacheWrite,
            Some(Notice::CacheUnwritable(err)),
        ));
    }

    /// Records a restore of `found` that failed with `err`. A failure that is the entry's own
    /// (a raw entry's file that no longer matches its hash: raw payloads are checked as they
    /// are restored, not when the entry is found) removes it from L1 and counts it as corrupt;
    /// any other (the out-dir cannot be written) counts as a failed restore.
    pub fn restore_failed(&self, found: &Found, err: &EntryError) {
        if matches!(err, EntryError::Restore(_)) {
            self.state.problem(Problem::RestoreFailed);
            return;
        }
        let key = &found.head.key;
        warn!(%key, error = %err, "removing an entry that fails its checks");
        self.state
            .problem(Problem::Refused(refusal_label(err, found.source)));
        self.local.remove(ObjectKind::Entry, key);
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
    fn remote(&self) -> Option<&Remote> {
        let rc = self.config.remote.as_ref()?;
        if self.breaker.is_down() {
            self.state.problem(Problem::ServerSkipped);
            return None;
        }
        if self.client.get().is_none() {
            let client = match Remote::new(rc.clone()) {
                Ok(r) => self.probe(r),
                Err(e) => {
                    self.report(&e);
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
    fn probe(&self, remote: Remote) -> Option<Remote> {
        if self.breaker.is_up() {
            return Some(remote);
        }
        let _guard = crate::local_store::lock(&self.config.dir, "remote-probe").ok();
        if self.breaker.is_down() {
            self.state.problem(Problem::ServerSkipped);
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
                self.report(&e);
                None
            }
        }
    }

    /// Logs a server failure, records it with its warning, and trips the breaker when the
    /// failure says the server is not worth asking for a while. The breaker is the tiers' own
    /// state (the server's health, shared by every wrapper process): it is written at once,
    /// not when the call ends, so that the calls cargo starts meanwhile skip a dead server
    /// instead of each waiting for its timeout.
    fn report(&self, err: &RemoteError) {
        warn!(error = %err, "shared cache server");
        if err.trips_breaker() || matches!(err, RemoteError::Forbidden { scope: "write", .. }) {
            let _ = self.breaker.trip(err);
        }
        let advice = match err {
            RemoteError::Forbidden { scope: "write", .. } => {
                "; results are kept locally and not uploaded"
            }
            _ => "; building with the local cache only (run `cachet status` to check the server)",
        };
        self.state.record(Event::Problem(
            Problem::Server(err.label()),
            Some(Notice::Once {
                topic: err.label().as_str(),
                message: format!("{err}{advice}"),
            }),
        ));
    }

    /// The entry for the current inputs of `pre`, holding exactly `outputs`: the candidate
    /// `pick` chooses from L1's manifest, or from the server's when L1 has none.
    pub fn find(
        &self,
        pre: &Digest,
        policy: &InputPolicy,
        pick: impl Fn(&Manifest) -> Option<Candidate>,
        outputs: &[String],
    ) -> Option<(Found, Candidate)> {
        let candidate = match pick(&self.manifest(pre, false, policy)) {
            Some(c) => c,
            None if self.has_remote() => pick(&self.manifest(pre, true, policy))?,
            None => return None,
        };
        let entry_key = crate::key::entry_key(pre, &candidate.files, &candidate.env);
        Some((self.entry(&entry_key, outputs)?, candidate))
    }

    /// The manifest for `pre`, from L1, merged with the server's when `ask_remote`. The
    /// server's candidates that name a file `policy` refuses are dropped before anything is
    /// hashed or kept.
    pub fn manifest(&self, pre: &Digest, ask_remote: bool, policy: &InputPolicy) -> Manifest {
        let mut local = match self.local.get(ObjectKind::Manifest, pre) {
            Ok(Some(bytes)) => Manifest::decode(&bytes),
            Ok(None) => Manifest::default(),
            Err(e) => {
                warn!(error = %e, "cannot read the local cache");
                self.state.problem(Problem::CacheRead);
                Manifest::default()
            }
        };
        if !ask_remote {
            return local;
        }
        let Some(remote) = self.remote() else {
            return local;
        };
        let answer = remote.get(&key_of(ObjectKind::Manifest, pre));
        self.remote_answered
            .set(self.remote_answered.get() || answer.is_ok());
        match answer {
            Ok(Some(bytes)) => {
                self.breaker.reset();
                self.state.record(Event::Downloaded(bytes.len() as u64));
                let json = match self.trust().check_manifest(pre, &bytes) {
                    Ok(json) => json,
                    Err(refusal) => {
                        self.refuse(refusal.manifest_label(), "a manifest");
                        return local;
                    }
                };
                let mut theirs = Manifest::decode(json);
                if let Some(refused) = policy.retain_suitable(&mut theirs) {
                    warn!(%pre, path = %refused, "the server's manifest names a file that is not an input");
                    self.state.record(Event::Problem(
                        Problem::UnsuitableManifest,
                        Some(Notice::Once {
                            topic: "unsuitable manifest",
                            message: format!("the cache server's manifest names {refused}, which cannot be an input of this crate; ignored"),
                        }),
                    ));
                }
                // Keep what the server knows locally too, so the next lookup needs no request.
                if !theirs.candidates.is_empty() {
                    let merged = self.local.update_manifest(pre, |m| m.merge(theirs.clone()));
                    if merged.is_err() {
                        self.state.problem(Problem::CacheWrite);
                    }
                }
                local.merge(theirs);
                local
            }
            Ok(None) => local,
            Err(e) => {
                self.report(&e);
                local
            }
        }
    }

    /// The entry stored under `key` holding exactly the files `outputs`, from L1 or else from
    /// the server (which then fills L1). An entry that fails its checks is removed (L1) or not
    /// kept (L2) and counted; it is never returned.
    pub fn entry(&self, key: &Digest, outputs: &[String]) -> Option<Found> {
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
                            warn!(%key, %label, "removing an entry that does not fit this compile");
                            self.state.problem(Problem::Refused(label));
                            self.local.remove(ObjectKind::Entry, key);
                            return None;
                        }
                    },
                    Err(err) => {
                        warn!(%key, error = %err, "removing an entry that fails its checks");
                        self.state
                            .problem(Problem::Refused(refusal_label(&err, Source::Local)));
                        self.local.remove(ObjectKind::Entry, key);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                warn!(error = %e, "cannot read the local cache");
                self.state.problem(Problem::CacheRead);
            }
        }
        let remote = self.remote()?;
        let (tmp, mut file) = match self.local.temp_for(ObjectKind::Entry, key) {
            Ok(t) => t,
            Err(err) => {
                self.unwritable(err);
                return None;
            }
        };
        let answer = remote.get_to(&key_of(ObjectKind::Entry, key), &mut file);
        self.remote_answered
            .set(self.remote_answered.get() || answer.is_ok());
        let found = match answer {
            Ok(Some(n)) => {
                self.breaker.reset();
                self.state.record(Event::Downloaded(n));
                self.adopt_download(key, outputs, &tmp, file)
            }
            Ok(None) => None,
            Err(e) => {
                self.report(&e);
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
    ) -> Option<Found> {
        let checked = EntryData::load(file)
            .map_err(EntryError::Restore)
            .and_then(|data| Ok((EntryHead::read(data.source(), key)?, data)));
        let (head, data) = match checked {
            Ok(c) => c,
            Err(err) => {
                warn!(%key, error = %err, "the server sent an entry that fails its checks");
                self.refuse(refusal_label(&err, Source::Remote), "an entry");
                return None;
            }
        };
        if let Err(refusal) = self.trust().check_entry(&head) {
            self.refuse(refusal.entry_label(), "an entry");
            return None;
        }
        if let Err(label) = check_outputs(&head, outputs) {
            self.refuse(label, "an entry");
            return None;
        }
        if let Err(err) = self.local.adopt(ObjectKind::Entry, key, tmp, head.len) {
            self.unwritable(err);
        }
        Some(Found {
            head,
            data,
            source: Source::Remote,
        })
    }

    /// Stores a new entry (streamed into L1 by `write_entry`, which returns its length, or why
    /// it gave up) and its manifest candidate, then uploads both. Returns the entry's length.
    pub fn store<E: From<io::Error>>(
        &self,
        pre: &Digest,
        key: &Digest,
        write_entry: impl FnOnce(&mut fs::File) -> Result<u64, E>,
        candidate: Candidate,
    ) -> Result<u64, E> {
        let signer = self.signer();
        let len = self
            .local
            .put_with(ObjectKind::Entry, key, |file| -> Result<u64, E> {
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
            match self.wire_entry(key) {
                Some(entry) => self.upload(&[
                    (ObjectKind::Entry, *key, entry),
                    (ObjectKind::Manifest, *pre, Body::Bytes(manifest)),
                ]),
                // Evicted already (a tiny cache): the server simply does not get it.
                None => debug!(%key, "entry gone from L1 before its upload"),
            }
        }
        Ok(len)
    }

    /// The L1 entry `key` as the server stores it: compressed (a raw entry is compressed into
    /// a temporary file, checked file by file on the way, and signed when this machine signs),
    /// or as it is when it is compressed already. `None` when it is gone or damaged.
    fn wire_entry(&self, key: &Digest) -> Option<Body> {
        let file = self.local.open(ObjectKind::Entry, key).ok()??;
        let head = match EntryHead::read(&file, key) {
            Ok(head) if head.is_raw() => head,
            Ok(_) => return Some(Body::File(file)),
            Err(err) => {
                warn!(%key, error = %err, "not uploading an entry that fails its checks");
                return None;
            }
        };
        let (path, file_out) = match self.local.temp_for(ObjectKind::Entry, key) {
            Ok(t) => t,
            Err(err) => {
                self.unwritable(err);
                return None;
            }
        };
        let mut temp = TempFile {
            path,
            file: file_out,
        };
        let out = &mut temp.file;
        let level = self.config.compression_level;
        let written = head.compress_to(&file, out, level).and_then(|len| {
            let Some(signer) = self.signer() else {
                return Ok(len);
            };
            let checksum = EntryHead::stored_checksum(&*out)?;
            out.write_all(&signer.sign_entry(&checksum).to_trailer())?;
            Ok(len)
        });
        // The upload reads from the file's position.
        let written = written.and_then(|_| Ok(out.seek(io::SeekFrom::Start(0))?));
        match written {
            Ok(_) => Some(Body::Temp(temp)),
            Err(err) => {
                warn!(%key, error = %err, "not uploading an entry that fails its checks");
                None
            }
        }
    }

    fn upload(&self, objects: &[(ObjectKind, Digest, Body)]) {
        let remote = if self.breaker.is_read_only() {
            None
        } else {
            self.remote()
        };
        let Some(remote) = remote else {
            for (kind, digest, _) in objects {
                self.pending().mark(*kind, digest);
            }
            return;
        };
        // The compile since the lookup does not count against the server's budget.
        remote.new_phase();
        for (i, (kind, digest, body)) in objects.iter().enumerate() {
            match body.put(remote, &key_of(*kind, digest)) {
                Ok(len) => self.state.record(Event::Uploaded(len)),
                Err(e) => {
                    self.report(&e);
                    if !matches!(e, RemoteError::Forbidden { .. }) {
                        for (kind, digest, _) in &objects[i..] {
                            self.pending().mark(*kind, digest);
                        }
                        self.state.record(Event::UploadQueued);
                    }
                    return;
                }
            }
        }
        self.breaker.reset();
        self.drain_pending(remote, DRAIN_PER_CALL);
    }

    fn pending(&self) -> Pending {
        Pending::new(&self.config.dir)
    }

    /// Uploads up to `max` pending objects; returns how many were uploaded.
    pub fn drain_pending(&self, remote: &Remote, max: usize) -> usize {
        let entry = |key: &Digest| self.wire_entry(key);
        match self
            .pending()
            .drain(&self.local, remote, max, self.state, &entry)
        {
            Ok(done) => done,
            Err((done, e)) => {
                self.report(&e);
                done
            }
        }
    }

    /// Uploads every pending object (`cachet flush`). Returns (uploaded, still pending).
    pub fn flush(&self) -> Result<(usize, usize), RemoteError> {
        let rc = self.config.remote.clone().ok_or_else(|| {
            RemoteError::Config("no server configured (set CACHET_SERVER)".into())
        })?;
        let remote = Remote::new(rc)?;
        let uploaded = self.drain_pending(&remote, usize::MAX);
        Ok((uploaded, self.pending_count()))
    }

    /// Objects waiting for upload.
    pub fn pending_count(&self) -> usize {
        self.pending().count()
    }
}
