//! The crate being edited: its compiles are not stored every time, so the edit loop stays as
//! fast as plain cargo's.
//!
//! A workspace member compiled incrementally (`-C incremental`, cargo's dev profile) that
//! misses again and again is the crate someone is editing, or one that depends on it (the
//! program that links it). Each of those compiles has new inputs, so its entry will rarely be
//! read again, while storing it costs on every rebuild: hashing what the compile read, and
//! reading and compressing its outputs (a linked program of a large workspace is tens of
//! megabytes), which can be as long as rustc's incremental rebuild itself.
//!
//! So cachet remembers, for each unit (one output of one target directory), how many times in
//! a row it missed. The first miss of a streak is stored (a branch switch or a pull makes one
//! miss per crate, and those are worth sharing); the next ones are compiled and not stored,
//! with the reason counted. A hit, or a pause of more than
//! [`STREAK_PAUSE_MS`] since the previous miss, ends the streak. Calls without
//! `-C incremental` (dependencies, release builds, `CARGO_INCREMENTAL=0` in CI) are always
//! stored.
//!
//! Not storing is always sound. What it costs: the last state of an edit session is not in
//! the cache until that crate is compiled again outside a streak (in another checkout, on CI,
//! or after the pause).

use std::fs;
use std::path::{Path, PathBuf};

use cachet_core::Hasher;

use crate::fsutil;

/// Why a miss was not stored, as `cachet stats` and the journal show it.
pub const NOT_STORED: &str = "crate being edited (missed repeatedly)";

/// Misses in a row that are still stored.
pub const STORED_IN_A_ROW: u32 = 1;

/// A miss more than this long after the previous one starts a new streak (10 minutes).
pub const STREAK_PAUSE_MS: u64 = 10 * 60 * 1000;

/// What is remembered of a unit's recent misses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Streak {
    /// Misses in a row, the latest included.
    pub misses: u32,
    /// When the latest miss was, in Unix milliseconds.
    pub last_ms: u64,
}

impl Streak {
    fn parse(text: &str) -> Option<Streak> {
        let (misses, last_ms) = text.trim().split_once(' ')?;
        Some(Streak {
            misses: misses.parse().ok()?,
            last_ms: last_ms.parse().ok()?,
        })
    }

    /// The streak after one more miss at `now_ms`.
    pub fn after_miss(previous: Option<Streak>, now_ms: u64) -> Streak {
        let continues = previous.filter(|p| now_ms.saturating_sub(p.last_ms) <= STREAK_PAUSE_MS);
        Streak {
            misses: continues.map_or(0, |p| p.misses).saturating_add(1),
            last_ms: now_ms,
        }
    }

    /// Whether the miss that made this streak is stored.
    pub fn stores(&self) -> bool {
        self.misses <= STORED_IN_A_ROW
    }
}

/// One unit's record in the local cache directory.
pub struct Unit {
    path: PathBuf,
}

impl Unit {
    /// The unit that writes `outputs` into `out_dir` (an absolute path): one crate of one
    /// target directory, as a lib, a test or a program.
    pub fn new(cache_dir: &Path, out_dir: &Path, outputs: &[String]) -> Unit {
        let mut h = Hasher::new("cachet-edit-loop-unit-v1");
        h.str("out-dir", &out_dir.to_string_lossy());
        for o in outputs {
            h.str("output", o);
        }
        Unit {
            path: cache_dir.join("v1/streaks").join(h.finish().to_hex()),
        }
    }

    /// Records a miss at `now_ms` and returns the streak it is part of.
    pub fn miss(&self, now_ms: u64) -> Streak {
        let previous = fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| Streak::parse(&t));
        let streak = Streak::after_miss(previous, now_ms);
        // Best effort: without the record, every miss is stored, as without this module.
        let _ = fsutil::write_atomic(
            &self.path,
            format!("{} {}\n", streak.misses, streak.last_ms).as_bytes(),
        );
        streak
    }

    /// Ends the unit's streak (it hit).
    pub fn hit(&self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streak_stores_its_first_miss_then_stops_until_a_hit_or_a_pause() {
        let dir = tempfile::tempdir().unwrap();
        let unit = Unit::new(
            dir.path(),
            Path::new("/t/debug/deps"),
            &["libx.rlib".into()],
        );
        let other = Unit::new(
            dir.path(),
            Path::new("/t/debug/deps"),
            &["liby.rlib".into()],
        );
        let t0 = 1_000_000;
        let stored: Vec<bool> = (0..4).map(|i| unit.miss(t0 + i * 1000).stores()).collect();
        assert_eq!(stored, [true, false, false, false]);
        assert!(other.miss(t0 + 5000).stores(), "units are counted apart");
        unit.hit();
        assert!(unit.miss(t0 + 6000).stores(), "a hit ends the streak");
        assert!(!unit.miss(t0 + 8000).stores());
        assert!(
            unit.miss(t0 + 8000 + STREAK_PAUSE_MS + 1).stores(),
            "a pause ends the streak"
        );
    }

    #[test]
    fn an_unreadable_record_starts_a_new_streak() {
        assert_eq!(Streak::parse("garbage"), None);
        assert_eq!(
            Streak::after_miss(None, 5),
            Streak {
                misses: 1,
                last_ms: 5
            }
        );
    }
}
