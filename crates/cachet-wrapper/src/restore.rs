//! Restoring a hit: writing its files into this invocation's out-dir (or, for a C compile,
//! to the paths its command names) and replaying output.
//!
//! Files are written atomically (temporary name, rename), so a cargo that reads an output
//! while another build restores it sees the old or the new file, never half of one. Renaming
//! also matters for incremental compiles: rustc 1.95 hard-links a crate's `.rmeta` between
//! its incremental session and the out-dir, and writing into the existing file would change
//! the session's copy, which rustc reuses without checking (see docs/design.md). Paths of
//! the recorded build are rewritten where they name its out-dir: the targets of the `.d`
//! file and cargo's `{"artifact": ...}` notifications on stderr. Everything else is replayed
//! byte for byte, so cached crates show their warnings exactly as a compile would.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use cachet_core::entry::{
    is_safe_file_name, EntryError, EntryFile, EntryMeta, PayloadSink, Within,
};
use cachet_core::Digest;

use crate::dep_info;
use crate::fsutil;
use crate::messages::Unmap;
use crate::paths::{replace_path, Anchors};
use crate::tiers::Found;

/// Largest dep-info file restored (it is rewritten in memory).
const MAX_DEP_INFO: u64 = 64 << 20;

/// Where each file of an entry is being written: temporary files beside their destinations,
/// renamed into place only once every file has been written and has matched its hash.
struct ToFiles<'a> {
    /// Per file of the entry: where it goes.
    dests: &'a [PathBuf],
    /// The file held in memory and rewritten before it is written (a dependency file).
    text_name: Option<&'a str>,
    /// Per file of the entry: its temporary path and open file.
    temps: Vec<Option<(PathBuf, File)>>,
    /// The rewritten file's index and bytes.
    text: Option<(usize, Vec<u8>)>,
}

impl ToFiles<'_> {
    /// Creates the temporary file for file `index` of the entry, named `name`, with the mode
    /// the compiler would create it with (see [`creation_mode`]): this build's umask applies.
    fn create(&mut self, index: usize, name: &str, recorded_mode: u32) -> io::Result<&mut File> {
        if !is_safe_file_name(name) {
            return Err(io::Error::other(format!("unsafe file name {name:?}")));
        }
        let tmp = fsutil::temp_path_for(&self.dests[index]);
        let open = || {
            File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(creation_mode(recorded_mode))
                .open(&tmp)
        };
        let file = match open() {
            // A C compile's output directory is not always there yet (rustc's out-dir is).
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(tmp.parent().unwrap_or(Path::new(".")))?;
                open()?
            }
            other => other?,
        };
        self.temps[index] = Some((tmp, file));
        Ok(&mut self.temps[index].as_mut().expect("just set").1)
    }

    fn remove_temps(&mut self) {
        for (tmp, _) in self.temps.iter_mut().filter_map(Option::take) {
            let _ = fs::remove_file(tmp);
        }
    }
}

impl PayloadSink for ToFiles<'_> {
    fn file(&mut self, index: usize, file: &EntryFile, contents: &mut dyn Read) -> io::Result<()> {
        if Some(file.name.as_str()) == self.text_name {
            let mut bytes = Vec::new();
            contents.take(MAX_DEP_INFO + 1).read_to_end(&mut bytes)?;
            if bytes.len() as u64 > MAX_DEP_INFO {
                return Err(io::Error::other("dep-info file larger than the limit"));
            }
            self.text = Some((index, bytes));
            return Ok(());
        }
        let out = self.create(index, &file.name, file.mode)?;
        io::copy(contents, out)?;
        Ok(())
    }

    fn copy(&mut self, index: usize, file: &EntryFile, within: Within) -> io::Result<Digest> {
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; (256 << 10).min(file.size as usize)];
        self.create(index, &file.name, file.mode)?;
        let mut done = 0u64;
        while done < file.size {
            let want = (file.size - done).min(buf.len() as u64) as usize;
            let at = within.offset + done;
            match (&self.text, &self.temps[within.file]) {
                (Some((i, bytes)), _) if *i == within.file => {
                    buf[..want].copy_from_slice(&bytes[at as usize..at as usize + want])
                }
                (_, Some((_, holder))) => holder.read_exact_at(&mut buf[..want], at)?,
                _ => return Err(io::Error::other("a copy of a file not restored")),
            }
            hasher.update(&buf[..want]);
            let (_, out) = self.temps[index].as_mut().expect("created above");
            out.write_all(&buf[..want])?;
            done += want as u64;
        }
        Ok(Digest(*hasher.finalize().as_bytes()))
    }
}

/// Writes every file of the entry `found` into `out_dir`, rewriting the dep-info file's
/// targets, and returns the recorded stdout and stderr. Files are written before any output
/// is replayed, so an artifact notification never names a file that is not there yet.
pub fn write_outputs(
    found: &Found,
    out_dir: &Path,
    dep_info_name: &str,
    anchors: &Anchors,
) -> Result<(Vec<u8>, Vec<u8>), EntryError> {
    let meta = &found.head.meta;
    let dests: Vec<PathBuf> = meta.files.iter().map(|f| out_dir.join(&f.name)).collect();
    write_files(found, &dests, Some(dep_info_name), |bytes| {
        let new_dir = out_dir.to_string_lossy();
        let text = String::from_utf8_lossy(bytes);
        let names: Vec<&str> = meta.files.iter().map(|f| f.name.as_str()).collect();
        // Targets name this out-dir, sources under the recorded anchors this build's files.
        let moves = anchors.moves_from(&meta.anchors);
        dep_info::relocate(&text, (&meta.out_dir, &new_dir), &names, &moves).into_bytes()
    })
}

/// Writes file `i` of the entry `found` to `dests[i]`, the one named `text_name` (if any)
/// through `rewrite`, and returns the recorded stdout and stderr. Each file is streamed to a
/// temporary name beside its destination and checked against its hash as it goes, so no
/// entry is ever held whole; only when all are whole are they renamed into place, so a bad
/// entry leaves every destination as it was.
pub fn write_files(
    found: &Found,
    dests: &[PathBuf],
    text_name: Option<&str>,
    rewrite: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Result<(Vec<u8>, Vec<u8>), EntryError> {
    let meta = &found.head.meta;
    if dests.len() != meta.files.len() {
        let e = io::Error::other("not one destination per file of the entry");
        return Err(EntryError::Restore(e));
    }
    let mut sink = ToFiles {
        dests,
        text_name,
        temps: (0..meta.files.len()).map(|_| None).collect(),
        text: None,
    };
    let result = found
        .head
        .read_payload(found.data.source(), &mut sink)
        .and_then(|texts| {
            finish(&mut sink, meta, rewrite).map_err(EntryError::Restore)?;
            Ok(texts)
        });
    sink.remove_temps();
    result
}

/// The mode rustc and the linker (and C compilers) ask for when they create an output:
/// `0o777` for an executable, `0o666` otherwise. The umask of this build removes bits from
/// it, as it does for a plain build; the recorded bits only say whether the file was
/// executable (they carry the umask of the build that stored them).
fn creation_mode(recorded: u32) -> u32 {
    if recorded & 0o111 != 0 {
        0o777
    } else {
        0o666
    }
}

/// Writes the rewritten text file and renames every file into place.
fn finish(
    sink: &mut ToFiles<'_>,
    meta: &EntryMeta,
    rewrite: impl FnOnce(&[u8]) -> Vec<u8>,
) -> io::Result<()> {
    if let Some((index, bytes)) = sink.text.take() {
        let rewritten = rewrite(&bytes);
        let file = &meta.files[index];
        // The compiler writes a dependency file in place: one already there keeps its mode
        // (a plain rebuild under another umask leaves it as it was).
        let kept = fs::metadata(&sink.dests[index])
            .ok()
            .map(|m| m.permissions());
        let out = sink.create(index, &file.name, file.mode)?;
        if let Some(mode) = kept {
            out.set_permissions(mode)?;
        }
        out.write_all(&rewritten)?;
    }
    for (dest, temp) in sink.dests.iter().zip(sink.temps.iter_mut()) {
        if let Some((tmp, _)) = temp.take() {
            if let Err(e) = fs::rename(&tmp, dest) {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        }
    }
    Ok(())
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

/// Replays the recorded stdout and stderr of an entry with metadata `meta`. Paths of the
/// recorded build under its anchors are moved to this build's, and remapped file names are
/// mapped back to this build's files (see `messages.rs`).
pub fn replay(
    meta: &EntryMeta,
    (stdout, stderr): (&[u8], &[u8]),
    out_dir: &Path,
    anchors: &Anchors,
) -> io::Result<()> {
    let mut stderr = rewrite_artifacts(stderr, &meta.out_dir, &out_dir.to_string_lossy());
    let moves = anchors.moves_from(&meta.anchors);
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
    let stderr = Unmap::new(anchors).text(&stderr);
    let mut out = io::stdout().lock();
    out.write_all(stdout)?;
    out.flush()?;
    let mut err = io::stderr().lock();
    err.write_all(&stderr)?;
    err.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cachet_core::entry::Entry;

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
        let key = Digest([1; 32]);
        let bytes = entry.encode(&key, 1).unwrap();
        let found = Found {
            head: cachet_core::entry::EntryHead::read(&bytes[..], &key).unwrap(),
            data: crate::tiers::EntryData::Memory(bytes),
            source: crate::tiers::Source::Local,
        };
        write_outputs(&found, &out_dir, "r.d", &anchors).unwrap();
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
