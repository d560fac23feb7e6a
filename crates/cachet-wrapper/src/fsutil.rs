//! Small filesystem helpers shared by the stores: atomic writes, unique temporary names and
//! advisory locks.
//!
//! Many rustc processes and several cargo builds write the same cache directory at once, so
//! every file is written under a unique temporary name and renamed into place: a reader sees
//! the old file, the new file, or nothing, never a half-written one. Two small state files
//! rewritten by every call are the exception ([`overwrite_in_place`]). A lock (a file under
//! `locks/` of the cache directory) is only held for a short read-modify-write; it lives here,
//! not in `local_store.rs`, because the compiler identity records and the statistics take it
//! too, and they must not depend on the store.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A temporary path next to `target`, unique to this process and call.
pub fn temp_path_for(target: &Path) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.tmp.{}.{n}", std::process::id()))
}

/// Writes `bytes` to `target` atomically, creating the parent directory if needed.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with_mode(target, bytes, None)
}

/// Writes `bytes` to `target` atomically, created with the given permission bits as a
/// program creates a file: the process umask takes bits away.
pub fn write_atomic_with_mode(target: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    write_atomic_with(target, mode, |f| f.write_all(bytes))
}

/// Creates `target` atomically from what `write` writes into a temporary file beside it: the
/// file appears complete under its name or not at all, and is removed if `write` fails. `mode`
/// is the mode asked for at creation (default `0o666`), which the umask restricts. `write`
/// may give up with its own error type (a refusal is not an I/O error).
pub fn write_atomic_with<T, E: From<io::Error>>(
    target: &Path,
    mode: Option<u32>,
    write: impl FnOnce(&mut File) -> Result<T, E>,
) -> Result<T, E> {
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    let tmp = temp_path_for(target);
    let result = (|| {
        use std::os::unix::fs::OpenOptionsExt;
        // Readable too: a writer may read back what it wrote (an entry's checksum, to sign it).
        let mut f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode.unwrap_or(0o666))
            .open(&tmp)?;
        let value = write(&mut f)?;
        drop(f);
        fs::rename(&tmp, target)?;
        Ok(value)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Rewrites a small text file in place, in one `pwrite` at offset 0, for state files that one
/// writer at a time rewrites on every call (the statistics under their lock, a unit's edit-loop
/// streak). Replacing such a file by a rename costs ~0.13 ms on ext4, which allocates and
/// starts writing the new file's blocks when a rename replaces a file (`auto_da_alloc`) and
/// frees the old one's; in place it costs a few microseconds. Content shorter than the file is
/// padded with spaces rather than truncated, so a process killed at any point leaves the old
/// text or the new one followed by blanks: only for formats where trailing whitespace means
/// nothing (JSON, a line of numbers), and only below a page, which one write updates whole.
pub fn overwrite_in_place(target: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let open = || {
        File::options()
            .write(true)
            .create(true)
            // Never truncated: see above.
            .truncate(false)
            .mode(0o666)
            .open(target)
    };
    let file = match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent)?;
            }
            open()?
        }
        other => other?,
    };
    let old_len = file.metadata()?.len() as usize;
    if bytes.len() >= old_len {
        return file.write_all_at(bytes, 0);
    }
    let mut padded = Vec::with_capacity(old_len);
    padded.extend_from_slice(bytes);
    padded.resize(old_len, b' ');
    file.write_all_at(&padded, 0)
}

/// Holds an advisory lock until dropped.
pub struct LockGuard(File);

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn lock_file(dir: &Path, name: &str) -> io::Result<File> {
    let locks = dir.join("locks");
    fs::create_dir_all(&locks)?;
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(locks.join(name))
}

/// Takes the named lock under `dir/locks`, waiting for it.
pub fn lock(dir: &Path, name: &str) -> io::Result<LockGuard> {
    let f = lock_file(dir, name)?;
    f.lock()?;
    Ok(LockGuard(f))
}

/// Takes the named lock under `dir/locks` if nobody holds it (`None` when another process does).
pub fn try_lock(dir: &Path, name: &str) -> io::Result<Option<LockGuard>> {
    let f = lock_file(dir, name)?;
    match f.try_lock() {
        Ok(()) => Ok(Some(LockGuard(f))),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn overwriting_in_place_keeps_the_file_and_pads_shorter_text() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sub/state.json");
        overwrite_in_place(&f, br#"{"calls": 12345}"#).unwrap();
        let inode = fs::metadata(&f).unwrap().ino();
        overwrite_in_place(&f, br#"{"calls": 7}"#).unwrap();
        assert_eq!(
            fs::metadata(&f).unwrap().ino(),
            inode,
            "rewritten, not replaced"
        );
        let text = fs::read_to_string(&f).unwrap();
        assert_eq!(text, "{\"calls\": 7}    ");
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["calls"], 7);
        overwrite_in_place(&f, br#"{"calls": 123456789}"#).unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), r#"{"calls": 123456789}"#);
    }
}
