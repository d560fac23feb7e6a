//! Tests of comparing a miss with the crate's earlier records: stored misses', hits', and a
//! miss that is not stored, which reads the recorded inputs again.

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
        let changes = record_and_diff(dir.path(), "k", &inputs, &cand(&[i]), u64::from(i)).unwrap();
        assert_eq!(changes.len(), 1);
    }
    // An exact earlier match gives no change.
    assert_eq!(
        record_and_diff(dir.path(), "k", &inputs, &cand(&[19]), 30),
        Some(vec![])
    );
    assert!(fs::read_dir(crate_dir(dir.path(), "k")).unwrap().count() <= KEEP);
}

fn cand(contents: &[u8]) -> Candidate {
    Candidate {
        files: vec![("src/lib.rs".into(), Digest::of(contents))],
        env: vec![],
    }
}

fn inputs(args: &[&str]) -> KeyInputs {
    let mut lines = vec![("compiler".to_string(), "c".to_string())];
    lines.extend(args.iter().map(|a| ("arg".to_string(), a.to_string())));
    KeyInputs(lines)
}

#[test]
fn a_miss_after_a_hit_is_compared_with_the_entry_the_hit_restored() {
    let dir = tempfile::tempdir().unwrap();
    let pre = Digest::of(b"pre");
    remember_hit(dir.path(), "k", &pre, &inputs(&[]), cand(b"1"));
    let changes = record_and_diff(dir.path(), "k", &inputs(&[]), &cand(b"2"), 5).unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        (changes[0].kind.as_str(), changes[0].name.as_str()),
        ("source file", "src/lib.rs")
    );
    // A changed argument is named as well: the hit's key inputs were kept.
    remember_hit(dir.path(), "j", &pre, &inputs(&[]), cand(b"1"));
    let changes = record_and_diff(dir.path(), "j", &inputs(&["-O"]), &cand(b"1"), 6).unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].kind, "argument");
}

#[test]
fn hits_leave_one_record_per_entry_and_a_bounded_number() {
    let dir = tempfile::tempdir().unwrap();
    let pre = Digest::of(b"pre");
    let hit_files = || {
        fs::read_dir(crate_dir(dir.path(), "k"))
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with(HIT_PREFIX)
            })
            .count()
    };
    for _ in 0..3 {
        remember_hit(dir.path(), "k", &pre, &inputs(&[]), cand(b"1"));
    }
    assert_eq!(hit_files(), 1);
    for i in 0..20u8 {
        remember_hit(dir.path(), "k", &pre, &inputs(&[]), cand(&[i]));
    }
    assert_eq!(hit_files(), KEEP_HITS);
}

#[test]
fn a_miss_not_stored_reads_the_recorded_files_again() {
    let dir = tempfile::tempdir().unwrap();
    record_and_diff(dir.path(), "k", &inputs(&[]), &cand(b"1"), 1);
    let now = |contents: &'static [u8]| move |_: &str| Some(Digest::of(contents));
    let same_env = |_: &str, was: &Option<String>| (true, was.clone());
    let edited = now(b"2");
    let probe = Probe {
        file: &edited,
        env: &same_env,
    };
    let changes = diff_unstored(dir.path(), "k", &inputs(&[]), &probe).unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].kind, "source file");
    // Nothing differs: the entry is gone, and the miss says so.
    let unchanged = now(b"1");
    let probe = Probe {
        file: &unchanged,
        env: &same_env,
    };
    assert_eq!(
        diff_unstored(dir.path(), "k", &inputs(&[]), &probe),
        Some(vec![])
    );
    // Other key inputs: those are the difference, and no file is read.
    let unread = |_: &str| -> Option<Digest> { panic!("a file was read") };
    let probe = Probe {
        file: &unread,
        env: &same_env,
    };
    let changes = diff_unstored(dir.path(), "k", &inputs(&["-O"]), &probe).unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].kind, "argument");
    assert_eq!(
        diff_unstored(dir.path(), "none", &inputs(&[]), &probe),
        None
    );
}

#[test]
fn crate_dirs_are_one_path_component() {
    let dir = Path::new("/cache");
    let named = |name: &str| crate_dir(dir, name);
    assert_eq!(named("serde_json"), dir.join("explain/serde_json"));
    assert_eq!(
        named("build_script_build.ring"),
        dir.join("explain/build_script_build.ring")
    );
    for odd in ["..", ".", "a/b", ""] {
        let path = named(odd);
        assert_eq!(
            path.parent(),
            Some(dir.join("explain").as_path()),
            "{odd:?}"
        );
        assert_eq!(path.file_name().unwrap().len(), 64, "{odd:?} is hashed");
    }
}
