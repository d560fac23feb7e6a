//! Reading the filesystem's own clock, to prove a file has not changed since a moment.
//!
//! File timestamps come from the kernel's coarse clock, which can lag the precise one by a
//! tick, so "changed before I started" cannot be decided by comparing with `SystemTime::now()`.
//! Creating a file and reading its ctime samples the very clock that stamps other files on that
//! device: a file whose ctime is strictly older than the marker's changed before the marker was
//! made, and any change after it gets a ctime at least as new as the marker's.

use std::fs;
use std::path::Path;

use crate::fingerprint::Fingerprint;

/// The filesystem clock just before rustc starts, read from a file created in the out-dir.
///
/// A file whose ctime is strictly older than the marker's, on the same device, was last
/// changed before the compile began; anything at or after it may have been changed while
/// rustc read it, and is not stored. Build scripts write generated sources into the target
/// directory moments before the compile, so comparing with the same clock keeps those
/// cacheable where a fixed slop would not.
#[derive(Clone, Copy, Debug)]
pub struct ClockMarker {
    dev: u64,
    ctime_ns: i64,
}

impl ClockMarker {
    /// A marker strictly newer than every file in the crate's `OUT_DIR`. Build scripts write
    /// generated sources there moments before the compile; if the clock has not ticked since,
    /// wait (a few milliseconds at most) so that those files count as settled.
    pub fn after_generated_files(out_dir: &Path) -> Option<ClockMarker> {
        let newest = std::env::var_os("OUT_DIR")
            .map(|d| newest_change(Path::new(&d), 3))
            .unwrap_or(None);
        let mut marker = Self::create(out_dir)?;
        for _ in 0..50 {
            match newest {
                Some((dev, ns)) if dev == marker.dev && ns >= marker.ctime_ns => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    marker = Self::create(out_dir)?;
                }
                _ => break,
            }
        }
        Some(marker)
    }

    /// The device the marker was made on.
    pub fn dev(&self) -> u64 {
        self.dev
    }

    /// True when the file with fingerprint `fp` (on the marker's device) last changed strictly
    /// before the marker was made: any later change would move its ctime past the marker's.
    pub fn is_after(&self, fp: &Fingerprint) -> bool {
        fp.dev() == self.dev && fp.changed_ns() < self.ctime_ns
    }

    /// True when the file with fingerprint `fp` (on the marker's device) changed in a later
    /// clock tick than the marker was made in: certainly after the call started.
    pub fn is_before(&self, fp: &Fingerprint) -> bool {
        fp.dev() == self.dev && fp.changed_ns() > self.ctime_ns
    }

    /// A marker created in `dir` now.
    pub fn create(dir: &Path) -> Option<ClockMarker> {
        let path = dir.join(format!(".cachet-clock-{}", std::process::id()));
        let file = fs::File::create(&path).ok()?;
        let meta = file.metadata().ok();
        drop(file);
        let _ = fs::remove_file(&path);
        let fp = Fingerprint::of(&meta?);
        Some(ClockMarker {
            dev: fp.dev(),
            ctime_ns: fp.changed_ns(),
        })
    }
}

/// The device and latest change time of the files under `dir`, `depth` levels deep.
fn newest_change(dir: &Path, depth: u32) -> Option<(u64, i64)> {
    let mut newest: Option<(u64, i64)> = None;
    for entry in fs::read_dir(dir).ok()?.flatten().take(2000) {
        let Ok(meta) = entry.metadata() else { continue };
        let found = if meta.is_dir() {
            if depth == 0 {
                continue;
            }
            newest_change(&entry.path(), depth - 1)
        } else {
            let fp = Fingerprint::of(&meta);
            Some((fp.dev(), fp.changed_ns()))
        };
        if let Some(f) = found {
            if newest.is_none_or(|n| f.1 > n.1) {
                newest = Some(f);
            }
        }
    }
    newest
}
