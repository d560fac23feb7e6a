//! Whether files are still absent, answered from directory listings instead of one `stat` per
//! file.
//!
//! A C compile's manifest candidate records every place where a header could have shadowed
//! the one that was read ("must stay absent", see `cc/inputs.rs`): each earlier include
//! directory times each header's relative name, about 900 places for a zstd source and 1000
//! for `sqlite3.c`. Almost all of them sit in a handful of directories, and most of those
//! directories do not exist (`/usr/local/include/bits`, `<source dir>/x86_64-linux-gnu/bits`).
//! One listing of a directory answers for every place in it, and a directory that is missing
//! from its parent's listing answers for everything below it without any system call, so a hit
//! costs a few dozen `getdents` instead of a thousand `stat`s.
//!
//! The answer is exactly what `stat` would say: a name missing from its directory's listing
//! cannot be opened, nor can anything below a missing directory; a name that *is* listed is
//! still `stat`ed (a dangling symlink is absent for `stat`), and a directory that cannot be
//! listed (no read permission, not a directory) falls back to `stat`ing each place. Paths with
//! `..` go to `stat` as well, so the kernel resolves them as the compiler would.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::{Component, Path};

use cachet_core::Digest;

/// The digest recorded for a path that must not exist (a library search probe that found
/// nothing). No file's content hashes to all zeros.
pub const ABSENT: Digest = Digest([0; 32]);

/// What is known about one directory.
enum Dir {
    /// It does not exist, so nothing below it does.
    Missing,
    /// Its entries' names.
    Listed(HashSet<OsString>),
    /// It could not be listed: ask `stat` about each place.
    Unknown,
}

/// Answers "is this path absent now?" for many paths, remembering directory listings.
#[derive(Default)]
pub struct AbsenceProbe {
    /// By path as given (hashing the bytes is cheaper than hashing a `Path`'s components).
    dirs: HashMap<OsString, Dir>,
}

/// True when `stat` finds nothing at `path`.
pub fn stat_absent(path: &Path) -> bool {
    matches!(std::fs::metadata(path), Err(e) if e.kind() == ErrorKind::NotFound)
}

impl AbsenceProbe {
    /// Whether nothing is at `path` (as [`stat_absent`] would say). `list` allows reading
    /// the parent directory's listing when nothing is known about it yet: worth it when
    /// several paths in that directory will be asked about.
    pub fn is_absent(&mut self, path: &Path, list: bool) -> bool {
        let plain = path.is_absolute()
            && path
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        let (Some(parent), Some(name), true) = (path.parent(), path.file_name(), plain) else {
            return stat_absent(path);
        };
        let key = parent.as_os_str();
        if !self.dirs.contains_key(key) {
            match self.known_from_ancestors(parent) {
                Some(d) => {
                    self.dirs.insert(key.to_owned(), d);
                }
                None if list => {
                    self.dirs.insert(key.to_owned(), list_dir(parent));
                }
                None => return stat_absent(path),
            }
        }
        match &self.dirs[key] {
            Dir::Missing => true,
            Dir::Listed(names) if !names.contains(name) => true,
            Dir::Listed(_) | Dir::Unknown => stat_absent(path),
        }
    }

    /// `Missing` when the nearest ancestor already looked at is missing, or does not list the
    /// next component on the way to `dir`.
    fn known_from_ancestors(&self, dir: &Path) -> Option<Dir> {
        let mut child = dir;
        for ancestor in dir.ancestors().skip(1) {
            match self.dirs.get(ancestor.as_os_str()) {
                None => child = ancestor,
                Some(Dir::Missing) => return Some(Dir::Missing),
                Some(Dir::Listed(names)) => {
                    return (!names.contains(child.file_name()?)).then_some(Dir::Missing)
                }
                Some(Dir::Unknown) => return None,
            }
        }
        None
    }
}

fn list_dir(dir: &Path) -> Dir {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            let mut names = HashSet::new();
            for e in entries {
                match e {
                    Ok(e) => {
                        names.insert(e.file_name());
                    }
                    Err(_) => return Dir::Unknown,
                }
            }
            Dir::Listed(names)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Dir::Missing,
        Err(_) => Dir::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_as_stat_does() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("inc/sys")).unwrap();
        std::fs::write(d.join("inc/a.h"), "").unwrap();
        std::fs::write(d.join("inc/sys/b.h"), "").unwrap();
        std::os::unix::fs::symlink(d.join("nowhere"), d.join("inc/dangling.h")).unwrap();
        std::fs::write(d.join("file"), "").unwrap();
        let paths = [
            "inc/a.h",
            "inc/sys/b.h",
            "inc/sys/c.h",
            "inc/c.h",
            "inc/dangling.h",
            "inc/bits/x.h",
            "inc/bits/types/y.h",
            "missing/bits/x.h",
            "file/x.h",
            "inc/../inc/a.h",
            "inc/../inc/q.h",
        ];
        for list in [true, false] {
            let mut probe = AbsenceProbe::default();
            for p in paths {
                let p = d.join(p);
                assert_eq!(probe.is_absent(&p, list), stat_absent(&p), "{p:?}");
            }
        }
    }

    #[test]
    fn a_new_file_shows_in_a_new_probe() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bits/x.h");
        assert!(AbsenceProbe::default().is_absent(&p, true));
        std::fs::create_dir(dir.path().join("bits")).unwrap();
        std::fs::write(&p, "").unwrap();
        assert!(!AbsenceProbe::default().is_absent(&p, true));
    }
}
