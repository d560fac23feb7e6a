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

use crate::fsutil;
use crate::key::KeyInputs;
use crate::manifest::Candidate;

/// Records kept per crate.
pub const KEEP: usize = 8;
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

/// The inputs that differ between an earlier record and the current one.
pub fn diff(old: &KeyRecord, new: &KeyRecord) -> Vec<Change> {
    let mut out = Vec::new();
    // Arguments are a multiset (several `--cfg`, `-C` lines); other labels are single values.
    let args = |r: &KeyRecord| -> BTreeSet<String> {
        r.inputs
            .0
            .iter()
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
    let singles = |r: &KeyRecord| -> BTreeMap<String, String> {
        r.inputs
            .0
            .iter()
            .filter(|(l, _)| l != "arg")
            .cloned()
            .collect()
    };
    push_map_changes(&mut out, &singles(old), &singles(new), kind_of);
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
    // Crate names are identifiers; anything else is hashed to stay one path component.
    let safe = if krate
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !krate.is_empty()
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
    let mut earlier: Vec<(PathBuf, KeyRecord)> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let rec = serde_json::from_slice::<KeyRecord>(&fs::read(e.path()).ok()?).ok()?;
            Some((e.path(), rec))
        })
        .collect();
    let nearest = earlier
        .iter()
        .map(|(_, r)| diff(r, &current))
        .min_by_key(Vec::len)
        .map(|mut changes| {
            changes.truncate(MAX_CHANGES);
            changes
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        args: &[&str],
        files: &[(&str, &[u8])],
        env: &[(&str, Option<&str>)],
        compiler: &str,
    ) -> KeyRecord {
        let mut inputs = vec![("compiler".to_string(), compiler.to_string())];
        inputs.extend(args.iter().map(|a| ("arg".to_string(), a.to_string())));
        KeyRecord {
            time_ms: 0,
            inputs: KeyInputs(inputs),
            files: files
                .iter()
                .map(|(p, c)| (p.to_string(), Digest::of(c)))
                .collect(),
            env: env
                .iter()
                .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
                .collect(),
        }
    }

    #[test]
    fn names_each_kind_of_change() {
        let a = rec(
            &["--edition=2021", "--cfg=x"],
            &[("src/lib.rs", b"a"), ("src/m.rs", b"m")],
            &[("FLAVOR", None)],
            "c1",
        );
        let b = rec(
            &["--edition=2018", "--cfg=x"],
            &[("src/lib.rs", b"b"), ("src/n.rs", b"n")],
            &[("FLAVOR", Some("spicy"))],
            "c2",
        );
        let changes = diff(&a, &b);
        let has = |kind: &str, name: &str| changes.iter().any(|c| c.kind == kind && c.name == name);
        assert!(has("argument", "--edition=2021"), "{changes:?}");
        assert!(has("argument", "--edition=2018"));
        assert!(!has("argument", "--cfg=x"));
        assert!(has("compiler", ""));
        assert!(has("source file", "src/lib.rs"));
        assert!(has("source file", "src/m.rs"));
        assert!(has("source file", "src/n.rs"));
        assert!(has("env! variable", "FLAVOR"));
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn nearest_record_wins_and_old_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cand = |c: &[u8]| Candidate {
            files: vec![("f".into(), Digest::of(c))],
            env: vec![],
        };
        let inputs = KeyInputs(vec![("compiler".into(), "c".into())]);
        assert_eq!(
            record_and_diff(dir.path(), "k", &inputs, &cand(b"1"), 1),
            None
        );
        for i in 2..20u8 {
            let changes =
                record_and_diff(dir.path(), "k", &inputs, &cand(&[i]), u64::from(i)).unwrap();
            assert_eq!(changes.len(), 1);
        }
        // An exact earlier match gives no change.
        assert_eq!(
            record_and_diff(dir.path(), "k", &inputs, &cand(&[19]), 30),
            Some(vec![])
        );
        assert!(fs::read_dir(crate_dir(dir.path(), "k")).unwrap().count() <= KEEP);
    }
}
