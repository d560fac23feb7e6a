//! Why a crate missed: the key inputs that differ from the nearest earlier entry of that crate.
//!
//! Each stored entry leaves a small record of its key inputs (the labelled pre-key lines, the
//! files rustc read with their hashes, the `env!` variables) under `explain/<crate>/`, the last
//! [`KEEP`] per crate. When a later compile of the same crate misses, its inputs are compared
//! with every record and the closest one (fewest differences) is reported: this file changed,
//! that argument was added, the compiler differs. The result is written to the journal, which
//! `cachet explain` reads. sccache users do this today by diffing trace logs by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use cachet_core::Digest;
use serde::{Deserialize, Serialize};

use crate::file_hash::FileHasher;
use crate::fsutil;
use crate::key::KeyInputs;
use crate::manifest::{Candidate, InputPolicy};

/// Records kept per crate.
pub const KEEP: usize = 8;
/// Records of hits kept per crate (see [`remember_hit`]).
const KEEP_HITS: usize = 4;
/// How the file names of hits' records start.
const HIT_PREFIX: &str = "hit-";
/// Changes kept per miss (the rest are counted).
const MAX_CHANGES: usize = 24;

/// The key inputs of one stored entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyRecord {
    /// Unix time in milliseconds.
    pub time_ms: u64,
    /// The labelled pre-key lines.
    pub inputs: KeyInputs,
    /// Files read, with hashes.
    pub files: Vec<(String, Digest)>,
    /// `env!` variables.
    pub env: Vec<(String, Option<String>)>,
}

/// One input that differs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Change {
    /// What kind of input: `source file`, `argument`, `environment`, `extern`, `compiler`, ...
    pub kind: String,
    /// Which one: a path, an argument, a variable name, a crate name.
    pub name: String,
    /// Its value in the earlier entry (`None`: absent there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// Its value now (`None`: absent now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

fn kind_of(label: &str) -> (String, String) {
    let (head, rest) = label.split_once(' ').unwrap_or((label, ""));
    let kind = match head {
        "arg" => "argument",
        "env" => "environment",
        "extern" => "extern crate",
        "native-lib" => "native library",
        "compiler" => "compiler",
        "target-libs" => "standard library",
        "target-spec" => "target spec",
        "cwd" => "working directory",
        "input" => "input path",
        "schema" => "key schema",
        other => other,
    };
    (kind.to_string(), rest.to_string())
}

fn short(v: &str) -> String {
    if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        format!("{}…", &v[..12])
    } else {
        v.to_string()
    }
}

/// The key inputs (the labelled pre-key lines) that differ between two records.
fn diff_inputs(old: &KeyInputs, new: &KeyInputs) -> Vec<Change> {
    let mut out = Vec::new();
    // Arguments are a multiset (several `--cfg`, `-C` lines); other labels are single values.
    let args = |r: &KeyInputs| -> BTreeSet<String> {
        r.0.iter()
            .filter(|(l, _)| l == "arg")
            .map(|(_, v)| v.clone())
            .collect()
    };
    let (a_old, a_new) = (args(old), args(new));
    for removed in a_old.difference(&a_new) {
        out.push(Change {
            kind: "argument".into(),
            name: removed.clone(),
            before: Some(removed.clone()),
            after: None,
        });
    }
    for added in a_new.difference(&a_old) {
        out.push(Change {
            kind: "argument".into(),
            name: added.clone(),
            before: None,
            after: Some(added.clone()),
        });
    }
    let singles = |r: &KeyInputs| -> BTreeMap<String, String> {
        r.0.iter().filter(|(l, _)| l != "arg").cloned().collect()
    };
    push_map_changes(&mut out, &singles(old), &singles(new), kind_of);
    out
}

/// The inputs that differ between an earlier record and the current one.
pub fn diff(old: &KeyRecord, new: &KeyRecord) -> Vec<Change> {
    let mut out = diff_inputs(&old.inputs, &new.inputs);
    let files = |r: &KeyRecord| -> BTreeMap<String, String> {
        r.files
            .iter()
            .map(|(p, d)| {
                let shown = if *d == crate::link::ABSENT {
                    "(absent)".to_string()
                } else {
                    d.to_hex()
                };
                (p.clone(), shown)
            })
            .collect()
    };
    push_map_changes(&mut out, &files(old), &files(new), |p| {
        (file_kind(p).into(), p.to_string())
    });
    let env = |r: &KeyRecord| -> BTreeMap<String, String> {
        r.env
            .iter()
            .map(|(n, v)| (n.clone(), v.clone().unwrap_or_else(|| "(unset)".into())))
            .collect()
    };
    push_map_changes(&mut out, &env(old), &env(new), |n| {
        ("env! variable".into(), n.to_string())
    });
    out
}

fn push_map_changes(
    out: &mut Vec<Change>,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    name: impl Fn(&str) -> (String, String),
) {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for k in keys {
        let (b, a) = (old.get(k), new.get(k));
        if b != a {
            let (kind, n) = name(k);
            out.push(Change {
                kind,
                name: n,
                before: b.map(|v| short(v)),
                after: a.map(|v| short(v)),
            });
        }
    }
}

fn crate_dir(cache_dir: &Path, krate: &str) -> PathBuf {
    // Crate names are identifiers (followed by the package's after a `.` when the two
    // differ, see `pipeline/context.rs`); anything else is hashed to stay one path component.
    let safe = if krate
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        && !krate.is_empty()
        && !krate.starts_with('.')
    {
        krate.to_string()
    } else {
        Digest::of(krate.as_bytes()).to_hex()
    };
    cache_dir.join("explain").join(safe)
}

/// What a recorded file is, for people: something the linker reads (see `link.rs`) or a
/// source rustc read.
fn file_kind(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let linked = [".rlib", ".a", ".o", ".so"]
        .iter()
        .any(|e| name.ends_with(e))
        || name.contains(".so.")
        || ["collect2", "ld", "ld.lld", "ld.bfd", "ld.gold", "ld.mold"].contains(&name);
    if linked {
        "link input"
    } else {
        "source file"
    }
}

/// Every record of the crate, stored misses' and hits' alike (unreadable ones are skipped).
fn read_records(dir: &Path) -> Vec<(PathBuf, KeyRecord)> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let rec = serde_json::from_slice::<KeyRecord>(&fs::read(e.path()).ok()?).ok()?;
            Some((e.path(), rec))
        })
        .collect()
}

/// The fewest differences among those of several earlier records (`None`: no record).
fn nearest(diffs: impl IntoIterator<Item = Vec<Change>>) -> Option<Vec<Change>> {
    diffs.into_iter().min_by_key(Vec::len).map(|mut changes| {
        changes.truncate(MAX_CHANGES);
        changes
    })
}

/// Compares a newly stored entry with the crate's earlier records, then saves it among them.
/// Returns the differences from the nearest earlier record (`None`: no earlier record).
pub fn record_and_diff(
    cache_dir: &Path,
    krate: &str,
    inputs: &KeyInputs,
    candidate: &Candidate,
    time_ms: u64,
) -> Option<Vec<Change>> {
    let dir = crate_dir(cache_dir, krate);
    let current = KeyRecord {
        time_ms,
        inputs: inputs.clone(),
        files: candidate.files.clone(),
        env: candidate.env.clone(),
    };
    let mut earlier = read_records(&dir);
    let nearest = nearest(earlier.iter().map(|(_, r)| diff(r, &current)));
    // Save this one; drop the oldest beyond the limit and any identical one.
    let name = format!(
        "{}.json",
        Digest::of(
            &serde_json::to_vec(&(&current.inputs, &current.files, &current.env))
                .unwrap_or_default()
        )
    );
    if let Ok(bytes) = serde_json::to_vec(&current) {
        let _ = fsutil::write_atomic(&dir.join(&name), &bytes);
    }
    earlier.retain(|(p, _)| p.file_name().is_some_and(|n| n.to_string_lossy() != name));
    earlier.sort_by_key(|(_, r)| std::cmp::Reverse(r.time_ms));
    for (path, _) in earlier.iter().skip(KEEP - 1) {
        let _ = fs::remove_file(path);
    }
    nearest
}

/// Remembers the key inputs of the entry that a hit restored (its manifest candidate), so that
/// this cache's next miss of the crate is compared with it even when this cache never stored
/// the crate itself (it came from the server, or another build stored it). The record is named
/// by the entry's key and written once: a later hit of the same entry costs one `open` that
/// finds it there, nothing else. Writing a new one drops the crate's oldest hit records beyond
/// [`KEEP_HITS`]. Best effort, like the journal.
pub fn remember_hit(
    cache_dir: &Path,
    krate: &str,
    pre: &Digest,
    inputs: &KeyInputs,
    hit: Candidate,
) {
    let entry_key = crate::key::entry_key(pre, &hit.files, &hit.env);
    let record = || KeyRecord {
        // Unix milliseconds (journal.rs imports this module, so not its `now_ms`).
        time_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        inputs: inputs.clone(),
        files: hit.files,
        env: hit.env,
    };
    let dir = crate_dir(cache_dir, krate);
    let path = dir.join(format!("{HIT_PREFIX}{entry_key}.json"));
    let create = || {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
    };
    let file = match create() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(&dir).and_then(|()| create())
        }
        other => other,
    };
    let Ok(mut file) = file else {
        return;
    };
    let written = serde_json::to_vec(&record())
        .ok()
        .is_some_and(|bytes| std::io::Write::write_all(&mut file, &bytes).is_ok());
    if !written {
        let _ = fs::remove_file(&path);
        return;
    }
    let mut hits: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(HIT_PREFIX))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    hits.sort_by(|a, b| b.cmp(a));
    for (_, old) in hits.iter().skip(KEEP_HITS) {
        let _ = fs::remove_file(old);
    }
}

/// Whether a variable's current value matches its recorded one, and the current value.
pub type VarProbe<'a> = dyn Fn(&str, &Option<String>) -> (bool, Option<String>) + 'a;

/// How a miss that is not stored reads its inputs now: it has no candidate (what the compile
/// read was not collected), so the files and variables of a record are read again instead.
pub struct Probe<'a> {
    /// A recorded file's content hash now ([`crate::absence::ABSENT`] when there is none;
    /// `None`: not readable, counted as unchanged).
    pub file: &'a dyn Fn(&str) -> Option<Digest>,
    /// Whether a variable's current value matches its recorded one; the current value.
    pub env: &'a VarProbe<'a>,
}

/// What differs for a miss that is not stored, without saving anything: the records nearest
/// by key inputs (arguments, compiler, dependencies, ...) are found first; when one has the
/// same key inputs, the miss came from its files or `env!` variables, which are read again
/// (a stat for each unchanged file whose hash is remembered) to name the ones that changed.
/// `None`: the crate has no record.
pub fn diff_unstored(
    cache_dir: &Path,
    krate: &str,
    inputs: &KeyInputs,
    probe: &Probe<'_>,
) -> Option<Vec<Change>> {
    let records = read_records(&crate_dir(cache_dir, krate));
    let by_inputs: Vec<(Vec<Change>, &KeyRecord)> = records
        .iter()
        .map(|(_, r)| (diff_inputs(&r.inputs, inputs), r))
        .collect();
    if by_inputs.iter().all(|(changes, _)| !changes.is_empty()) {
        return nearest(by_inputs.into_iter().map(|(changes, _)| changes));
    }
    let mut seen: BTreeMap<String, Option<Digest>> = BTreeMap::new();
    let mut now = |r: &KeyRecord| {
        let files = r.files.iter().map(|(path, was)| {
            let digest = *seen
                .entry(path.clone())
                .or_insert_with(|| (probe.file)(path));
            (path.clone(), digest.unwrap_or(*was))
        });
        let env = r
            .env
            .iter()
            .map(|(name, was)| match (probe.env)(name, was) {
                (true, _) => (name.clone(), was.clone()),
                (false, value) => (name.clone(), value),
            });
        KeyRecord {
            time_ms: r.time_ms,
            inputs: r.inputs.clone(),
            files: files.collect(),
            env: env.collect(),
        }
    };
    let same = by_inputs.iter().filter(|(changes, _)| changes.is_empty());
    nearest(same.map(|(_, r)| diff(r, &now(r))).collect::<Vec<_>>())
}

/// [`diff_unstored`] with the inputs read as a lookup reads them: files through `policy`
/// and `hasher`, variables from `env`, compared as `policy` compares them.
pub fn unstored_changes(
    cache_dir: &Path,
    krate: &str,
    inputs: &KeyInputs,
    policy: &InputPolicy,
    hasher: &FileHasher,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Vec<Change>> {
    let file = |path: &str| policy.digest_now(path, hasher);
    let var = |name: &str, was: &Option<String>| {
        let now = env(name);
        (policy.env_matches(now.clone(), was), now)
    };
    let probe = Probe {
        file: &file,
        env: &var,
    };
    diff_unstored(cache_dir, krate, inputs, &probe)
}

#[cfg(test)]
mod tests;
