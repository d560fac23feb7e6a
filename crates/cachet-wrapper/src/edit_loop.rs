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
//! with the reason counted. A hit, or a pause of more than ten minutes since the previous
//! miss, ends the streak. Calls without `-C incremental` (dependencies, release builds,
//! `CARGO_INCREMENTAL=0` in CI) are always stored. Both numbers are settings ([`Policy`],
//! `CACHET_EDIT_STORE` and `CACHET_EDIT_PAUSE`): a team whose developers share each state of an
//! edit session through a server may store more, at the price of slower rebuilds.
//!
//! Not storing is always sound. What it costs: the last state of an edit session is not in
//! the cache until that crate is compiled again outside a streak (in another checkout, on CI,
//! or after the pause).

use std::fs;
use std::path::{Path, PathBuf};

use cachet_core::Hasher;

use crate::fsutil;
use crate::reason::NotStoredReason;

/// Why a miss was not stored, as `cachet stats` and the journal show it.
pub const NOT_STORED: NotStoredReason = NotStoredReason::CrateBeingEdited;

/// How a streak of misses is told apart and how much of it is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Misses in a row that are still stored (`CACHET_EDIT_STORE`); `u32::MAX` stores every
    /// miss.
    pub stored_in_a_row: u32,
    /// A miss more than this long after the previous one starts a new streak
    /// (`CACHET_EDIT_PAUSE`), in milliseconds.
    pub pause_ms: u64,
}

impl Default for Policy {
    /// The first miss of a streak is stored; ten minutes without a miss end a streak.
    fn default() -> Policy {
        Policy {
            stored_in_a_row: 1,
            pause_ms: 10 * 60 * 1000,
        }
    }
}

impl Policy {
    /// Reads `CACHET_EDIT_STORE`'s value: a number of misses (1 or more), or `all`.
    pub fn parse_stored(text: &str) -> Option<u32> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("all") {
            return Some(u32::MAX);
        }
        text.parse().ok().filter(|n| *n >= 1)
    }
}

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
    pub fn after_miss(previous: Option<Streak>, now_ms: u64, policy: &Policy) -> Streak {
        let continues = previous.filter(|p| now_ms.saturating_sub(p.last_ms) <= policy.pause_ms);
        Streak {
            misses: continues.map_or(0, |p| p.misses).saturating_add(1),
            last_ms: now_ms,
        }
    }

    /// Whether the miss that made this streak is stored.
    pub fn stores(&self, policy: &Policy) -> bool {
        self.misses <= policy.stored_in_a_row
    }
}

/// One unit's record in the local cache directory.
pub struct Unit {
    path: PathBuf,
    policy: Policy,
}

impl Unit {
    /// The unit that writes `outputs` into `out_dir` (an absolute path): one crate of one
    /// target directory, as a lib, a test or a program.
    pub fn new(cache_dir: &Path, out_dir: &Path, outputs: &[String], policy: Policy) -> Unit {
        let mut h = Hasher::new("cachet-edit-loop-unit-v1");
        h.str("out-dir", &out_dir.to_string_lossy());
        for o in outputs {
            h.str("output", o);
        }
        Unit {
            path: cache_dir.join("v1/streaks").join(h.finish().to_hex()),
            policy,
        }
    }

    /// Records a miss at `now_ms`; returns whether its result is stored.
    pub fn miss(&self, now_ms: u64) -> bool {
        let previous = fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| Streak::parse(&t));
        let streak = Streak::after_miss(previous, now_ms, &self.policy);
        // Best effort: without the record, every miss is stored, as without this module.
        // Rewritten in place on every miss (see `overwrite_in_place`): one rustc at a time
        // compiles a unit.
        let _ = fsutil::overwrite_in_place(
            &self.path,
            format!("{} {}\n", streak.misses, streak.last_ms).as_bytes(),
        );
        streak.stores(&self.policy)
    }

    /// Ends the unit's streak (it hit).
    pub fn hit(&self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(dir: &Path, output: &str, policy: Policy) -> Unit {
        Unit::new(dir, Path::new("/t/debug/deps"), &[output.into()], policy)
    }

    #[test]
    fn a_streak_stores_its_first_miss_then_stops_until_a_hit_or_a_pause() {
        let dir = tempfile::tempdir().unwrap();
        let policy = Policy::default();
        let x = unit(dir.path(), "libx.rlib", policy);
        let y = unit(dir.path(), "liby.rlib", policy);
        let t0 = 1_000_000;
        let stored: Vec<bool> = (0..4).map(|i| x.miss(t0 + i * 1000)).collect();
        assert_eq!(stored, [true, false, false, false]);
        assert!(y.miss(t0 + 5000), "units are counted apart");
        x.hit();
        assert!(x.miss(t0 + 6000), "a hit ends the streak");
        assert!(!x.miss(t0 + 8000));
        assert!(
            x.miss(t0 + 8000 + policy.pause_ms + 1),
            "a pause ends the streak"
        );
    }

    #[test]
    fn the_settings_change_how_much_of_a_streak_is_stored_and_when_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = 1_000_000;
        let three = unit(
            dir.path(),
            "libthree.rlib",
            Policy {
                stored_in_a_row: 3,
                ..Policy::default()
            },
        );
        let stored: Vec<bool> = (0..5).map(|i| three.miss(t0 + i * 1000)).collect();
        assert_eq!(stored, [true, true, true, false, false]);
        let all = unit(
            dir.path(),
            "liball.rlib",
            Policy {
                stored_in_a_row: Policy::parse_stored("all").unwrap(),
                ..Policy::default()
            },
        );
        assert!((0..50).all(|i| all.miss(t0 + i)));
        let short = unit(
            dir.path(),
            "libshort.rlib",
            Policy {
                pause_ms: 2000,
                ..Policy::default()
            },
        );
        let stored: Vec<bool> = [0, 1000, 2000, 4001, 5000]
            .iter()
            .map(|dt| short.miss(t0 + dt))
            .collect();
        assert_eq!(stored, [true, false, false, true, false]);
    }

    #[test]
    fn the_stored_setting_reads_a_count_or_all() {
        assert_eq!(Policy::parse_stored(" 3 "), Some(3));
        assert_eq!(Policy::parse_stored("ALL"), Some(u32::MAX));
        assert_eq!(Policy::parse_stored("0"), None);
        assert_eq!(Policy::parse_stored("many"), None);
    }

    #[test]
    fn an_unreadable_record_starts_a_new_streak() {
        assert_eq!(Streak::parse("garbage"), None);
        assert_eq!(
            Streak::after_miss(None, 5, &Policy::default()),
            Streak {
                misses: 1,
                last_ms: 5
            }
        );
    }
}
