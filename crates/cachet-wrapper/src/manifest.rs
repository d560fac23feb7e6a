//! Manifests: from a pre-key to the source sets seen before, so hits need no rustc run.
//!
//! sccache finds the files a crate reads by running `rustc --emit=dep-info` on every call,
//! which costs macro expansion (seconds on proc-macro-heavy crates) even on a hit. cachet
//! instead remembers, per pre-key, the file sets and env-dep values of earlier compiles. A
//! lookup hashes the files of each candidate; when every hash and value matches, the entry key
//! is recomputed from those verified hashes (never read from the manifest, so a damaged
//! manifest can cause a miss but never a wrong hit).
//!
//! On a manifest miss cachet compiles directly rather than running a dep-info pass first: the
//! pass would only find entries whose manifest was lost, and would add a macro-expansion pass
//! to every true miss (every crate of a cold build).

use std::collections::HashMap;
use std::path::Path;

use cachet_core::Digest;
use serde::{Deserialize, Serialize};

use crate::file_hash::FileHasher;
use crate::link::ABSENT;
use crate::paths::Anchors;

/// Version of the manifest format.
pub const MANIFEST_VERSION: u32 = 1;
/// Candidates kept per pre-key (newest first); older ones are dropped.
pub const MAX_CANDIDATES: usize = 16;

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
    pub fn find_match<'a>(
        &'a self,
        cwd: &Path,
        anchors: &Anchors,
        hasher: &FileHasher,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<&'a Candidate> {
        let mut seen: HashMap<&str, Option<Digest>> = HashMap::new();
        self.candidates.iter().find(|c| {
            c.env.iter().all(|(name, stored)| {
                let current = env(name);
                current == *stored || current.map(|v| anchors.normalize(&v)) == *stored
            }) && c.files.iter().all(|(path, digest)| {
                let current = *seen.entry(path.as_str()).or_insert_with(|| {
                    let file = cwd.join(anchors.denormalize(path));
                    match hasher.hash(&file) {
                        Ok(d) => Some(d),
                        // A search probe of the linker that found nothing must still find
                        // nothing (see link.rs).
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(ABSENT),
                        Err(_) => None,
                    }
                });
                current == Some(*digest)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_when_every_file_and_variable_matches() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.rs"), "fn a() {}").unwrap();
        let hasher = FileHasher::new(None, None);
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
        assert_eq!(
            m.find_match(dir.path(), &Anchors::default(), &hasher, &x1),
            Some(&good)
        );
        assert_eq!(
            m.find_match(dir.path(), &Anchors::default(), &hasher, &x2),
            None
        );
        std::fs::remove_file(dir.path().join("a.rs")).unwrap();
        assert_eq!(
            m.find_match(dir.path(), &Anchors::default(), &hasher, &x1),
            None
        );
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
