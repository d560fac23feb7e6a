//! Restoring a hit: writing its files into this invocation's out-dir and replaying output.
//!
//! Files are written atomically (temporary name, rename), so a cargo that reads an output
//! while another build restores it sees the old or the new file, never half of one. Renaming
//! also matters for incremental compiles: rustc 1.95 hard-links a crate's `.rmeta` between
//! its incremental session and the out-dir, and writing into the existing file would change
//! the session's copy, which rustc reuses without checking (see docs/design.md). Paths of
//! the recorded build are rewritten where they name its out-dir: the targets of the `.d`
//! file and cargo's `{"artifact": ...}` notifications on stderr. Everything else is replayed
//! byte for byte, so cached crates show their warnings exactly as a compile would.

use std::io::{self, Write};
use std::path::Path;

use cachet_core::entry::Entry;

use crate::dep_info;
use crate::fsutil;
use crate::paths::{replace_path, Anchors};

/// Writes every file of `entry` into `out_dir`, rewriting the dep-info file's targets.
/// Files are written before any output is replayed, so an artifact notification never names a
/// file that is not there yet.
pub fn write_outputs(
    entry: &Entry,
    out_dir: &Path,
    dep_info_name: &str,
    anchors: &Anchors,
) -> io::Result<u64> {
    let new_dir = out_dir.to_string_lossy();
    let moves = anchors.moves_from(&entry.meta.anchors);
    let mut written = 0;
    for (file, bytes) in entry.meta.files.iter().zip(&entry.contents) {
        let target = out_dir.join(&file.name);
        if file.name == dep_info_name {
            let text = String::from_utf8_lossy(bytes);
            let rewritten = dep_info::rewrite_targets(&text, &entry.meta.out_dir, &new_dir);
            // Sources under the recorded build's anchors are this build's files.
            let rewritten = dep_info::move_paths(&rewritten, &moves);
            fsutil::write_atomic_with_mode(&target, rewritten.as_bytes(), Some(file.mode))?;
        } else {
            fsutil::write_atomic_with_mode(&target, bytes, Some(file.mode))?;
        }
        written += file.size;
    }
    Ok(written)
}

/// Rewrites cargo's artifact notifications that name `old_dir` so they name `new_dir`.
pub fn rewrite_artifacts(stderr: &[u8], old_dir: &str, new_dir: &str) -> Vec<u8> {
    if old_dir == new_dir {
        return stderr.to_vec();
    }
    let json = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let old_json = json(old_dir.trim_end_matches('/'));
    let new_json = json(new_dir.trim_end_matches('/'));
    // `"artifact":"<old>/` — the quotes of the JSON strings, minus the closing one.
    let needle = format!("{{\"artifact\":{}/", &old_json[..old_json.len() - 1]);
    let replacement = format!("{{\"artifact\":{}/", &new_json[..new_json.len() - 1]);
    let mut out = Vec::with_capacity(stderr.len());
    for line in stderr.split_inclusive(|&b| b == b'\n') {
        match line.strip_prefix(needle.as_bytes()) {
            Some(rest) => {
                out.extend_from_slice(replacement.as_bytes());
                out.extend_from_slice(rest);
            }
            None => out.extend_from_slice(line),
        }
    }
    out
}

/// Replays the recorded stdout and stderr. Paths of the recorded build under its anchors are
/// moved to this build's.
pub fn replay(entry: &Entry, out_dir: &Path, anchors: &Anchors) -> io::Result<()> {
    let mut stderr = rewrite_artifacts(
        &entry.stderr,
        &entry.meta.out_dir,
        &out_dir.to_string_lossy(),
    );
    let moves = anchors.moves_from(&entry.meta.anchors);
    if !moves.is_empty() {
        let json = |s: &str| {
            let q = serde_json::to_string(s).unwrap_or_default();
            q[1..q.len() - 1].to_string()
        };
        let mut text = String::from_utf8_lossy(&stderr).into_owned();
        for (old, new) in &moves {
            text = replace_path(&text, &json(old), &json(new));
        }
        stderr = text.into_bytes();
    }
    let mut out = io::stdout().lock();
    out.write_all(&entry.stdout)?;
    out.flush()?;
    let mut err = io::stderr().lock();
    err.write_all(&stderr)?;
    err.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rustc hard-links an incremental session's `.rmeta` into the out-dir; a restore that
    /// wrote into that file would change the session, and rustc would later reuse the wrong
    /// metadata (a dependent then reads constants of the restored state, not of the sources).
    #[test]
    fn restoring_replaces_files_and_never_writes_through_a_hard_link() {
        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().join("deps");
        let session = dir.path().join("incremental/s-1");
        std::fs::create_dir_all(&out_dir).unwrap();
        std::fs::create_dir_all(&session).unwrap();
        std::fs::write(session.join("lib.rmeta"), b"metadata of the session").unwrap();
        std::fs::hard_link(session.join("lib.rmeta"), out_dir.join("libr.rmeta")).unwrap();
        let entry = Entry::new(
            "r".into(),
            "/recorded/deps".into(),
            1,
            Vec::new(),
            Vec::new(),
            vec![
                ("libr.rmeta".into(), 0o644, b"restored metadata".to_vec()),
                ("r.d".into(), 0o644, b"/recorded/deps/r.d: r.rs\n".to_vec()),
            ],
        );
        let anchors = Anchors::discover(dir.path(), Some(&out_dir), |_| None);
        write_outputs(&entry, &out_dir, "r.d", &anchors).unwrap();
        assert_eq!(
            std::fs::read(out_dir.join("libr.rmeta")).unwrap(),
            b"restored metadata"
        );
        assert_eq!(
            std::fs::read(session.join("lib.rmeta")).unwrap(),
            b"metadata of the session"
        );
    }

    #[test]
    fn rewrites_only_artifact_lines_of_the_old_dir() {
        let stderr = b"{\"artifact\":\"/old/deps/libx.rmeta\",\"emit\":\"metadata\"}\n\
{\"$message_type\":\"diagnostic\",\"message\":\"/old/deps is fine\"}\n\
{\"artifact\":\"/elsewhere/liby.rlib\",\"emit\":\"link\"}\n";
        let out =
            String::from_utf8(rewrite_artifacts(stderr, "/old/deps", "/new \"q\"/deps")).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "{\"artifact\":\"/new \\\"q\\\"/deps/libx.rmeta\",\"emit\":\"metadata\"}"
        );
        assert!(lines[1].contains("/old/deps is fine"));
        assert!(lines[2].contains("/elsewhere/liby.rlib"));
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["artifact"], "/new \"q\"/deps/libx.rmeta");
    }
}
