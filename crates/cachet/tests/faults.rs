//! Faults: a damaged or unusable cache never fails a build and is never restored from.

use std::fs;
use std::path::{Path, PathBuf};

use cachet_wrapper::journal::Outcome;

use cachet_test_support::Mount;

use crate::util::{fixture, outcomes_for, stderr_of, Project, FIXTURE_CRATES};

fn entry_files(cache: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for shard in fs::read_dir(cache.join("v1/entries")).unwrap() {
        for f in fs::read_dir(shard.unwrap().path()).unwrap() {
            let f = f.unwrap().path();
            if !f.file_name().unwrap().to_string_lossy().starts_with('.') {
                out.push(f);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn truncated_and_corrupted_entries_are_removed_never_restored() {
    let p = Project::copy_of(&fixture("soundness"));
    p.cachet_cargo(&["build"], &[]);
    let output = p.run_program("target", "debug", "app");
    let entries = entry_files(&p.cache);
    assert_eq!(entries.len(), FIXTURE_CRATES.len());
    // Every other entry cut in half, the rest with one flipped byte in the middle.
    for (i, entry) in entries.iter().enumerate() {
        let mut bytes = fs::read(entry).unwrap();
        if i % 2 == 0 {
            bytes.truncate(bytes.len() / 2);
        } else {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x01;
        }
        fs::write(entry, &bytes).unwrap();
    }

    let records = p.rebuild_after_clean(&[]);
    for krate in FIXTURE_CRATES {
        assert_eq!(
            outcomes_for(&records, krate),
            vec![Outcome::Miss],
            "{krate} must not be restored"
        );
    }
    assert_eq!(p.run_program("target", "debug", "app"), output);
    assert_eq!(
        p.stats().errors.get("corrupt entry removed"),
        Some(&(FIXTURE_CRATES.len() as u64))
    );

    // The entries were replaced by good ones.
    let records = p.rebuild_after_clean(&[]);
    assert_eq!(outcomes_for(&records, "core_lib"), vec![Outcome::HitLocal]);
}

#[test]
fn garbage_manifest_is_a_miss() {
    let p = Project::copy_of(&fixture("soundness"));
    p.cachet_cargo(&["build"], &[]);
    for shard in fs::read_dir(p.cache.join("v1/manifests")).unwrap() {
        for f in fs::read_dir(shard.unwrap().path()).unwrap() {
            fs::write(f.unwrap().path(), b"{\"version\":1,\"candidates\":[[").unwrap();
        }
    }
    let records = p.rebuild_after_clean(&[]);
    assert_eq!(outcomes_for(&records, "core_lib"), vec![Outcome::Miss]);
    p.assert_app_prints("lib=core-lib v1");
}

/// Builds the fixture with its cache directory on a tmpfs mounted with `options`: the build
/// succeeds and the wrapper warns exactly once that it cannot write. Returns the project, its
/// cache still mounted while the returned mount lives.
fn build_on_unwritable_cache(options: &str) -> (Project, Mount) {
    let p = Project::copy_of(&fixture("soundness"));
    let mount = Mount::tmpfs(&p.cache, options);
    let out = p.cachet_cargo(&["build"], &[]);
    p.assert_app_prints("lib=core-lib v1");
    let err = stderr_of(&out);
    assert_eq!(
        err.matches("warning: cachet: cannot write").count(),
        1,
        "exactly one warning:\n{err}"
    );
    (p, mount)
}

#[test]
fn read_only_cache_dir_still_builds_and_warns_once() {
    build_on_unwritable_cache("ro,size=1m");
}

#[test]
fn full_cache_filesystem_still_builds_and_warns_once() {
    let (p, _mount) = build_on_unwritable_cache("size=16k");
    // Whatever did get written is never half an entry.
    if p.cache.join("v1/entries").is_dir() {
        for f in entry_files(&p.cache) {
            let key = f.file_name().unwrap().to_string_lossy().parse().unwrap();
            cachet_core::entry::Entry::decode(&fs::read(&f).unwrap(), &key).unwrap();
        }
    }
}
