//! Hits: a rebuild after `cargo clean` restores every library crate, replays its warnings, and
//! produces the same program; a second checkout elsewhere shows what is shared today.

use cachet_wrapper::journal::Outcome;

use crate::util::{cacheable, copy_tree, fixture, outcomes_for, stderr_of, Project};

#[test]
fn clean_rebuild_hits_every_crate_and_replays_warnings() {
    let p = Project::copy_of(&fixture("soundness"));
    let first = p.cachet_cargo(&["build"], &[]);
    let output = p.run_program("target", "debug", "app");
    let warning = "function `unused_helper` is never used";
    assert!(
        stderr_of(&first).contains(warning),
        "fixture should warn:\n{}",
        stderr_of(&first)
    );

    p.cachet_cargo(&["clean"], &[]);
    let (second, records) = p.records_during(|| p.cachet_cargo(&["build"], &[]));
    for krate in ["core_lib", "dep_lib"] {
        assert_eq!(
            outcomes_for(&records, krate),
            vec![Outcome::HitLocal],
            "{krate}"
        );
    }
    assert!(cacheable(&records)
        .iter()
        .all(|r| r.outcome == Outcome::HitLocal));
    assert!(
        stderr_of(&second).contains(warning),
        "a cached crate's warning must still show:\n{}",
        stderr_of(&second)
    );
    assert_eq!(p.run_program("target", "debug", "app"), output);

    let stats = p.stats();
    assert_eq!(stats.hits_local, 5);
    assert_eq!(stats.misses, 5);
    assert!(stats.saved_millis > 0 || stats.hit_millis > 0);
}

/// Keys are relative to the workspace, the target dir and CARGO_HOME, so a second checkout at
/// another path with its own target dir restores every library crate (see also paths.rs).
#[test]
fn second_checkout_elsewhere_restores_every_path_independent_crate() {
    let p = Project::copy_of(&fixture("soundness"));
    p.cachet_cargo(&["build"], &[]);
    let output = p.run_program("target", "debug", "app");

    let other = p.tmp.path().join("elsewhere/checkout");
    copy_tree(&p.root, &other);
    std::fs::remove_dir_all(other.join("target")).ok();
    let q = Project {
        tmp: tempfile::tempdir().unwrap(),
        root: other,
        cache: p.cache,
    };
    let records = q.cachet_cargo_records(&["build"], &[]);
    let hits = cacheable(&records)
        .iter()
        .filter(|r| r.outcome == Outcome::HitLocal)
        .count();
    eprintln!(
        "second checkout at another path: {hits} of {} cacheable crates hit",
        cacheable(&records).len()
    );
    assert_eq!(cacheable(&records).len(), 5);
    // The libraries, the proc-macro and the build script are restored. core_lib reads OUT_DIR
    // and invokes a proc-macro, so its OUT_DIR is keyed literally (docs/design.md): it compiles
    // here. It has to: the proc-macro builds an absolute path from CARGO_MANIFEST_DIR, and the
    // rlib's metadata carries a hash of that path, so the program relinks too.
    for krate in ["dep_lib", "fixture_macros", "build_script_build"] {
        assert_eq!(
            outcomes_for(&records, krate),
            vec![Outcome::HitLocal],
            "{krate}"
        );
    }
    assert_eq!(hits, 3);
    assert_eq!(q.run_program("target", "debug", "app"), output);
    // Why core_lib compiled here is said where a user looks: `cachet explain` and the stats.
    let core = records
        .iter()
        .find(|r| r.krate.as_deref() == Some("core_lib"))
        .unwrap();
    let reason = core.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("env! OUT_DIR keyed literally")
            && reason.contains("macros of other crates may run"),
        "{reason:?}"
    );
    let explained = String::from_utf8(q.cachet(&["explain", "core_lib"]).stdout).unwrap();
    assert!(
        explained.contains("env! OUT_DIR keyed literally"),
        "{explained}"
    );
    assert!(q.stats().stored_per_checkout["path-valued env! keyed literally"] >= 1);
}
