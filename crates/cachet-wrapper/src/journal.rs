//! The journal: one JSON line per wrapper call, for `cachet explain` and for tests.
//!
//! Statistics say how many calls hit; the journal says which crate did what and why, so a
//! user can ask about their last build. Each record is one short line appended with
//! `O_APPEND` (atomic for writes this small on local filesystems), so concurrent wrappers never
//! interleave. The file is rotated to `journal.old.jsonl` past [`MAX_JOURNAL`] bytes.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Size past which the journal is rotated.
const MAX_JOURNAL: u64 = 8 << 20;

/// What happened to one call: the same outcome the call reports to the server's dashboard,
/// so the journal and the dashboard can never disagree on names.
pub use cachet_core::report::Outcome;

/// One journal line.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// Unix time in milliseconds.
    pub time_ms: u64,
    /// The parent process (cargo), which groups the calls of one build.
    pub parent: u32,
    /// The crate, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub krate: Option<String>,
    /// The outcome.
    pub outcome: Outcome,
    /// Why, for pass-throughs and unstored results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The pre-key, for cacheable calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_key: Option<String>,
    /// For a miss: the inputs that differ from the nearest earlier entry of the crate
    /// (`None`: there was no earlier entry to compare with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<crate::explain::Change>>,
    /// Milliseconds in the compiler, for a call that compiled (a miss or a failed compile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile_ms: Option<u64>,
    /// For a hit: the compile time it avoided, in milliseconds (the compile time recorded with
    /// the entry minus the time to serve it, at least 0). `cachet stats`' "Compile time
    /// avoided" is the sum of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_ms: Option<u64>,
}

/// The journal file in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("journal.jsonl")
}

/// Appends a record (best effort: the journal is never a reason to fail).
pub fn append(dir: &Path, record: &Record) {
    let Ok(mut line) = serde_json::to_vec(record) else {
        return;
    };
    line.push(b'\n');
    let p = path(dir);
    if fs::metadata(&p)
        .map(|m| m.len() > MAX_JOURNAL)
        .unwrap_or(false)
    {
        let _ = fs::rename(&p, dir.join("journal.old.jsonl"));
    }
    let open = || OpenOptions::new().create(true).append(true).open(&p);
    // The very first call of a new cache creates the directory.
    let file = open().or_else(|_| fs::create_dir_all(dir).and_then(|()| open()));
    if let Ok(mut f) = file {
        let _ = f.write_all(&line);
    }
}

/// Reads every record (unreadable lines are skipped).
pub fn read(dir: &Path) -> Vec<Record> {
    fs::read_to_string(path(dir))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
