//! Manifests: from a pre-key to the source sets seen before, so hits need no rustc run.
//!
//! sccache finds the files a crate reads by running `rustc --emit=dep-info` on every call,
//! which costs macro expansion (seconds on proc-macro-heavy crates) even on a hit. cachet
//! instead remembers, per pre-key, the file sets and env-dep values of earlier compiles. A
//! lookup hashes the files of each candidate; when every hash and value matches, the entry key
//! is recomputed from those verified hashes (never read from the manifest, so a damaged
//! manifest can cause a miss but never a wrong hit).
//!
//! A manifest, wherever it was read from, only *suggests* candidates: before a file it names is
//! hashed, [`InputPolicy`] checks that it can be an input of this crate — under a directory
//! this compile can name (its anchors, its out-dir, the sysroot, its `-L` directories; for a
//! linked crate also the system's toolchain and library directories), a regular file (never a
//! device or a FIFO, which could be read forever), and of bounded size. A server can therefore
//! not make the wrapper read `/dev/zero`, a huge file, or files outside the build to learn
//! their contents from the requests that follow.
//!
//! On a manifest miss cachet compiles directly rather than running a dep-info pass first: the
//! pass would only find entries whose manifest was lost, and would add a macro-expansion pass
//! to every true miss (every crate of a cold build).

use std::cell::OnceCell;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use cachet_core::Digest;
use serde::{Deserialize, Serialize};

use crate::absence::{AbsenceProbe, ABSENT};
use crate::file_hash::FileHasher;
use crate::paths::Anchors;
use crate::reason::NotStoredReason;

/// Version of the manifest format.
pub const MANIFEST_VERSION: u32 = 1;
/// Candidates kept per pre-key (newest first); older ones are dropped.
pub const MAX_CANDIDATES: usize = 16;

/// The name, among a candidate's variables, of the location its outputs depend on (the
/// out-dir and the anchors' real paths): set when the compile wrote a path of this checkout
/// into its outputs (an rpath under the target directory), so that the entry is reused only
/// at the same location. Not a valid name for `env!`-read variables to collide with in
/// practice, and matched against the current location, never against the environment.
pub const LOCATION: &str = "cachet:location";

/// A file set and environment seen by one earlier compile.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Candidate {
    /// Files read, as written in dep-info, with their content hashes.
    pub files: Vec<(String, Digest)>,
    /// Variables read through `env!`/`option_env!`, with their values.
    pub env: Vec<(String, Option<String>)>,
}

/// All candidates for one pre-key.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// Format version.
    pub version: u32,
    /// Newest first.
    pub candidates: Vec<Candidate>,
}

/// Largest source file a candidate may name (under the workspace or `CARGO_HOME`, or a system
/// file): a hand-written input is never this large, and hashing it costs every lookup.
pub const MAX_SOURCE_INPUT: u64 = 64 << 20;
/// Largest file a candidate may name under the target directory, the out-dir or the sysroot
/// (libraries this build or the toolchain produced).
pub const MAX_BUILT_INPUT: u64 = 4 << 30;

/// System directories a link may read (the C runtime, `libc.so`, the driver's programs).
const SYSTEM_LINK_ROOTS: &[&str] = &["/usr", "/lib", "/lib32", "/lib64", "/opt", "/nix/store"];

/// Which files a manifest candidate may name for one compile (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct InputPolicy {
    /// Where relative paths start (rustc's working directory).
    cwd: PathBuf,
    /// To turn `{WORKSPACE}/…` back into this build's paths.
    anchors: Anchors,
    /// Directories whose files are sources: at most [`MAX_SOURCE_INPUT`] bytes.
    source_roots: Vec<PathBuf>,
    /// Directories whose files were built: at most [`MAX_BUILT_INPUT`] bytes.
    built_roots: Vec<PathBuf>,
    /// Both lists with symbolic links resolved, made on the first path with `..` (a linker's
    /// search probes, `/usr/lib/gcc/…/../../lib`), which is checked where the kernel finds it.
    real_roots: OnceCell<(Vec<PathBuf>, Vec<PathBuf>)>,
}

/// Why a path cannot be an input.
#[derive(Debug, PartialEq, Eq)]
pub enum Unsuitable {
    /// Outside every directory this compile can name, or not a plain absolute path.
    Outside,
    /// A device, a FIFO, a socket or a directory.
    NotAFile,
    /// Larger than the bound for its directory.
    TooLarge,
}

impl Unsuitable {
    /// Why a compile that read such a file is not stored, as `cachet stats` counts it.
    pub fn not_stored_reason(self) -> NotStoredReason {
        match self {
            Unsuitable::Outside => NotStoredReason::InputOutside,
            Unsuitable::NotAFile => NotStoredReason::InputNotAFile,
            Unsuitable::TooLarge => NotStoredReason::InputTooLarge,
        }
    }
}

/// A lexically clean absolute path: `None` if it has `..` or is relative (a path with `..` is
/// resolved by the filesystem instead: lexically, `..` after a symbolic link goes elsewhere).
fn clean(path: &Path) -> Option<PathBuf> {
    if !path.is_absolute() {
        return None;
    }
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir => out.push("/"),
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// `path` (absolute) with each `..` dropped together with the directory before it, where that
/// directory is a real one, not a symbolic link: the kernel resolves `dir/..` to the directory
/// holding `dir` whatever links lie above it (a directory has one parent, and a mount point's
/// `..` is the parent of where it is mounted). One `lstat` per `..` instead of resolving every
/// component (a C compile's `lib/compress/../common/mem.h`). `None` when a `..` follows a
/// link or anything not a directory: lexically it would go elsewhere.
fn resolve_dots(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir if out.parent().is_none() => {}
            Component::ParentDir => {
                if !std::fs::symlink_metadata(&out).ok()?.is_dir() {
                    return None;
                }
                out.pop();
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// `path` without `.` and `..` where the kernel provably agrees ([`clean`], then
/// [`resolve_dots`]); `None` for a relative path or a `..` after a link.
fn lexical(path: &Path) -> Option<PathBuf> {
    clean(path).or_else(|| path.is_absolute().then(|| resolve_dots(path))?)
}

impl InputPolicy {
    /// The policy of a compile: `sources` are the workspace and `CARGO_HOME` (and the working
    /// directory), `built` the target directory, the out-dir, the sysroot and `-L`
    /// directories; `links` adds the system's toolchain and library directories.
    pub fn new(
        cwd: &Path,
        anchors: &Anchors,
        sources: &[PathBuf],
        built: &[PathBuf],
        links: bool,
    ) -> InputPolicy {
        // A root such as `build/../src` (Meson's sources, seen from its build directory) is
        // resolved as the files under it are.
        let mut source_roots: Vec<PathBuf> = sources.iter().filter_map(|p| lexical(p)).collect();
        if links {
            source_roots.extend(SYSTEM_LINK_ROOTS.iter().map(PathBuf::from));
        }
        InputPolicy {
            cwd: cwd.to_path_buf(),
            anchors: anchors.clone(),
            source_roots,
            built_roots: built.iter().filter_map(|p| lexical(p)).collect(),
            real_roots: OnceCell::new(),
        }
    }

    /// The file a candidate's path names in this build.
    pub fn resolve(&self, stored: &str) -> PathBuf {
        self.cwd.join(self.anchors.denormalize(stored))
    }

    /// The content hash of a stored path's file now: [`ABSENT`] when there is none (a search
    /// probe of the linker that found nothing must still find nothing, see link.rs), `None`
    /// when this policy refuses the path or it cannot be read.
    pub fn digest_now(&self, stored: &str, hasher: &FileHasher) -> Option<Digest> {
        let file = self.resolve(stored);
        let hashed = match self.checked_metadata(&file) {
            Err(_) => return None,
            Ok(Some(meta)) => hasher.hash_known(&file, &meta),
            Ok(None) => hasher.hash(&file),
        };
        match hashed {
            Ok(d) => Some(d),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(ABSENT),
            Err(_) => None,
        }
    }

    /// Whether a variable's current value matches a stored one: equal as stored, or equal once
    /// anchored (stored anchored only when the value was not baked into the outputs).
    pub fn env_matches(&self, current: Option<String>, stored: &Option<String>) -> bool {
        current == *stored || current.map(|v| self.anchors.normalize(&v)) == *stored
    }

    /// Checks `path` (absolute, as it would be hashed) without reading it. A path that does
    /// not exist is suitable: candidates record absent files too.
    pub fn check(&self, path: &Path) -> Result<(), Unsuitable> {
        self.checked_metadata(path).map(drop)
    }

    /// [`InputPolicy::check`], with the metadata it read of the file (none when nothing is
    /// there), so that hashing the file needs no second `stat`.
    fn checked_metadata(&self, path: &Path) -> Result<Option<std::fs::Metadata>, Unsuitable> {
        let (path, (sources, built)) = match lexical(path) {
            Some(p) => (p, (&self.source_roots, &self.built_roots)),
            None if !path.is_absolute() => return Err(Unsuitable::Outside),
            None => match std::fs::canonicalize(path) {
                Ok(real) => {
                    let (s, b) = self.real_roots.get_or_init(|| {
                        let real = |roots: &[PathBuf]| -> Vec<PathBuf> {
                            let resolved =
                                roots.iter().filter_map(|r| std::fs::canonicalize(r).ok());
                            roots.iter().cloned().chain(resolved).collect()
                        };
                        (real(&self.source_roots), real(&self.built_roots))
                    });
                    (real, (s, b))
                }
                // Nothing there: hashing it reads nothing (it is recorded as absent).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(_) => return Err(Unsuitable::Outside),
            },
        };
        let under = |roots: &[PathBuf]| roots.iter().any(|r| path.starts_with(r));
        let limit = if under(built) {
            MAX_BUILT_INPUT
        } else if under(sources) {
            MAX_SOURCE_INPUT
        } else {
            return Err(Unsuitable::Outside);
        };
        match std::fs::metadata(&path) {
            Ok(m) if !m.is_file() => Err(Unsuitable::NotAFile),
            Ok(m) if m.len() > limit => Err(Unsuitable::TooLarge),
            Ok(m) => Ok(Some(m)),
            Err(_) => Ok(None),
        }
    }

    /// Drops the candidates of `m` that name an unsuitable file; returns the first such
    /// file, as the manifest wrote it, when any was dropped.
    pub fn retain_suitable(&self, m: &mut Manifest) -> Option<String> {
        let mut refused = None;
        let unsuitable = |p: &str| self.check(&self.resolve(p)).is_err();
        m.candidates.retain(|c| {
            match c.files.iter().find(|(p, d)| *d != ABSENT && unsuitable(p)) {
                Some((p, _)) => {
                    refused.get_or_insert_with(|| p.clone());
                    false
                }
                None => true,
            }
        });
        refused
    }
}

impl Manifest {
    /// Reads a manifest; anything unreadable is an empty manifest (a miss, never an error).
    pub fn decode(bytes: &[u8]) -> Manifest {
        match serde_json::from_slice::<Manifest>(bytes) {
            Ok(m) if m.version == MANIFEST_VERSION => m,
            _ => Manifest::default(),
        }
    }

    /// Serializes the manifest.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Adds a candidate at the front, dropping an identical one and the oldest beyond the cap.
    pub fn add(&mut self, c: Candidate) {
        self.version = MANIFEST_VERSION;
        self.candidates.retain(|x| x != &c);
        self.candidates.insert(0, c);
        self.candidates.truncate(MAX_CANDIDATES);
    }

    /// Merges another manifest's candidates after this one's.
    pub fn merge(&mut self, other: Manifest) {
        self.version = MANIFEST_VERSION;
        for c in other.candidates {
            if !self.candidates.contains(&c) {
                self.candidates.push(c);
            }
        }
        self.candidates.truncate(MAX_CANDIDATES);
    }

    /// The first candidate whose files and environment match the current state, if any.
    /// Paths are stored relative to the anchors (see `paths.rs`); a variable's value matches
    /// when it is equal as stored, or equal once anchored (stored anchored only when the value
    /// was not baked into the outputs).
    /// Files `policy` refuses are never read: their candidate does not match.
    pub fn find_match<'a>(
        &'a self,
        policy: &InputPolicy,
        hasher: &FileHasher,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<&'a Candidate> {
        let mut seen: HashMap<&str, Option<Digest>> = HashMap::new();
        // Places that must stay absent are asked last (a changed file usually decides first)
        // and shallowest first, so a directory's listing answers for what lies below it.
        let mut absence = AbsenceProbe::default();
        self.candidates.iter().find(|c| {
            let env_matches = c
                .env
                .iter()
                .all(|(name, stored)| policy.env_matches(env(name), stored));
            let mut files_match = || {
                c.files
                    .iter()
                    .filter(|(_, d)| *d != ABSENT)
                    .all(|(path, digest)| {
                        let current = *seen
                            .entry(path.as_str())
                            .or_insert_with(|| policy.digest_now(path, hasher));
                        current == Some(*digest)
                    })
            };
            if !(env_matches && files_match()) {
                return false;
            }
            // A search probe that found nothing (see link.rs, cc/inputs.rs): only whether
            // something is there now is asked, never its contents, so any path may be probed.
            let mut absent: Vec<(usize, PathBuf)> = c
                .files
                .iter()
                .filter(|(_, d)| *d == ABSENT)
                .map(|(path, _)| {
                    let p = policy.resolve(path);
                    (
                        p.as_os_str()
                            .as_encoded_bytes()
                            .iter()
                            .filter(|&&b| b == b'/')
                            .count(),
                        p,
                    )
                })
                .collect();
            absent.sort_by_key(|(depth, _)| *depth);
            let parent = |p: &Path| {
                p.parent()
                    .unwrap_or(p)
                    .as_os_str()
                    .as_encoded_bytes()
                    .to_vec()
            };
            let mut per_dir: HashMap<Vec<u8>, usize> = HashMap::new();
            for (_, p) in &absent {
                *per_dir.entry(parent(p)).or_default() += 1;
            }
            absent.iter().all(|(_, p)| {
                let several = per_dir.get(&parent(p)).copied() > Some(2);
                absence.is_absent(p, several)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_are_resolved_lexically_only_where_the_kernel_agrees() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(base.join("inside/lib/compress")).unwrap();
        std::fs::create_dir_all(base.join("outside/deep")).unwrap();
        std::fs::write(base.join("inside/lib/mem.h"), "x").unwrap();
        std::fs::write(base.join("outside/secret"), "x").unwrap();
        std::os::unix::fs::symlink(base.join("outside/deep"), base.join("inside/link")).unwrap();
        let dots = base.join("inside/lib/compress/../mem.h");
        assert_eq!(resolve_dots(&dots), Some(base.join("inside/lib/mem.h")));
        // `link/..` is `outside`, not `inside`: no lexical answer.
        let through_link = base.join("inside/link/../secret");
        assert_eq!(resolve_dots(&through_link), None);
        assert_eq!(
            resolve_dots(Path::new("/../usr/./lib")),
            Some("/usr/lib".into())
        );
        let policy = InputPolicy::new(
            &base,
            &Anchors::default(),
            &[base.join("inside")],
            &[],
            false,
        );
        assert_eq!(policy.check(&dots), Ok(()));
        assert_eq!(policy.check(&through_link), Err(Unsuitable::Outside));
    }

    #[test]
    fn matches_only_when_every_file_and_variable_matches() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.rs"), "fn a() {}").unwrap();
        let hasher = FileHasher::new(None, None);
        let policy = InputPolicy::new(
            dir.path(),
            &Anchors::default(),
            &[dir.path().to_path_buf()],
            &[],
            false,
        );
        let good = Candidate {
            files: vec![("a.rs".into(), Digest::of(b"fn a() {}"))],
            env: vec![("X".into(), Some("1".into()))],
        };
        let mut m = Manifest::default();
        m.add(Candidate {
            files: vec![("a.rs".into(), Digest::of(b"old"))],
            env: vec![],
        });
        m.add(good.clone());
        let x1 = |n: &str| (n == "X").then(|| "1".to_string());
        let x2 = |n: &str| (n == "X").then(|| "2".to_string());
        assert_eq!(m.find_match(&policy, &hasher, &x1), Some(&good));
        assert_eq!(m.find_match(&policy, &hasher, &x2), None);
        std::fs::remove_file(dir.path().join("a.rs")).unwrap();
        assert_eq!(m.find_match(&policy, &hasher, &x1), None);
    }

    #[test]
    fn only_regular_bounded_files_under_the_roots_are_inputs() {
        // What broke: a server's manifest naming /dev/zero hung the build hashing it forever.
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        std::fs::write(ws.join("a.rs"), "x").unwrap();
        std::fs::write(dir.path().join("secret"), "x").unwrap();
        let big = std::fs::File::create(ws.join("big.txt")).unwrap();
        big.set_len(MAX_SOURCE_INPUT + 1).unwrap();
        let fifo = ws.join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let anchors = Anchors::default();
        let policy = InputPolicy::new(&ws, &anchors, std::slice::from_ref(&ws), &[], false);
        assert_eq!(policy.check(&ws.join("a.rs")), Ok(()));
        assert_eq!(policy.check(&ws.join("gone.rs")), Ok(()));
        assert_eq!(
            policy.check(Path::new("/dev/zero")),
            Err(Unsuitable::Outside)
        );
        assert_eq!(
            policy.check(&dir.path().join("secret")),
            Err(Unsuitable::Outside)
        );
        assert_eq!(
            policy.check(&ws.join("../secret")),
            Err(Unsuitable::Outside)
        );
        assert_eq!(policy.check(&fifo), Err(Unsuitable::NotAFile));
        assert_eq!(policy.check(&ws.join("big.txt")), Err(Unsuitable::TooLarge));
        let dev = InputPolicy::new(&ws, &anchors, &[PathBuf::from("/dev")], &[], false);
        assert_eq!(dev.check(Path::new("/dev/zero")), Err(Unsuitable::NotAFile));

        let mut m = Manifest::default();
        m.add(Candidate {
            files: vec![("/dev/zero".into(), Digest::of(b""))],
            env: vec![],
        });
        let good = Candidate {
            files: vec![(ws.join("a.rs").display().to_string(), Digest::of(b"x"))],
            env: vec![],
        };
        m.add(good.clone());
        assert_eq!(policy.retain_suitable(&mut m).as_deref(), Some("/dev/zero"));
        assert_eq!(m.candidates, vec![good]);
    }

    #[test]
    fn garbage_is_an_empty_manifest() {
        assert_eq!(Manifest::decode(b"{not json"), Manifest::default());
        let mut m = Manifest::default();
        for i in 0..40u8 {
            m.add(Candidate {
                files: vec![("f".into(), Digest::of(&[i]))],
                env: vec![],
            });
        }
        assert_eq!(m.candidates.len(), MAX_CANDIDATES);
        assert_eq!(Manifest::decode(&m.encode()), m);
    }
}
