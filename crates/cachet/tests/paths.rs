//! Path-independent keys: a checkout at another path with another `CARGO_HOME` restores what
//! the first one compiled, files that differ never share an entry, and what rustc embeds
//! (panic locations, debug info) points at the current checkout.

use std::fs;
use std::path::Path;
use std::process::Command;

use cachet_wrapper::journal::Outcome;

use crate::util::{cacheable, copy_tree, fixture, outcomes_for, workload_service, Project};

/// A second checkout of `p`'s project at a deeper, different path, sharing `p`'s cache.
fn second_checkout(p: &Project, source: &Path) -> Project {
    let root = p.tmp.path().join("somewhere/else entirely/checkout");
    copy_tree(source, &root);
    Project {
        tmp: tempfile::tempdir().unwrap(),
        root,
        cache: p.cache.clone(),
    }
}

#[test]
fn another_path_and_cargo_home_restore_every_crate_of_the_workload() {
    let p = Project::copy_of(&workload_service());
    p.cachet_cargo(&["fetch", "--locked"], &[]);
    p.cachet_cargo(&["build", "--locked", "--offline"], &[]);
    let output = p.run_program("target", "debug", "wl-service");
    let stored: Vec<String> = p
        .journal()
        .iter()
        .filter(|r| r.outcome == Outcome::Miss)
        .filter_map(|r| r.krate.clone())
        .collect();

    let q = second_checkout(&p, &workload_service());
    let home = q.tmp.path().join("other-cargo-home");
    let home_env = [("CARGO_HOME", home.to_str().unwrap())];
    q.cachet_cargo(&["fetch", "--locked"], &home_env);
    let records = q.cachet_cargo_records(&["build", "--locked", "--offline"], &home_env);
    let calls = cacheable(&records);
    let missed: Vec<_> = calls
        .iter()
        .filter(|r| !matches!(r.outcome, Outcome::HitLocal | Outcome::CompileFailed))
        .collect();
    // A crate whose `env!` path value is not proven to be only `include!`d is keyed with the
    // literal value and compiled per checkout (docs/design.md): that, and nothing else, may
    // make it miss here.
    for r in &missed {
        let changes = r.changes.as_deref().unwrap_or_default();
        assert!(
            !changes.is_empty()
                && changes.iter().all(|c| c.kind == "env! variable"
                    && matches!(c.name.as_str(), "OUT_DIR" | "CARGO_MANIFEST_DIR")),
            "the second checkout missed for another reason: {r:#?}"
        );
    }
    let per_checkout: Vec<_> = missed.iter().filter_map(|r| r.krate.clone()).collect();
    let restored = calls.len() - missed.len();
    eprintln!(
        "second checkout: {restored} of {} cacheable calls restored; compiled per checkout: \
         {per_checkout:?}",
        calls.len()
    );
    assert!(
        restored * 100 >= calls.len() * 95,
        "only {restored} of {} restored: {per_checkout:?}",
        calls.len()
    );
    for krate in stored.iter().filter(|k| !per_checkout.contains(k)) {
        assert!(
            outcomes_for(&records, krate).contains(&Outcome::HitLocal),
            "{krate} was not restored"
        );
    }
    assert_eq!(q.run_program("target", "debug", "wl-service"), output);

    // Change one dependency's source in the second CARGO_HOME only: it misses, and the
    // program shows the change; the first checkout keeps its own result.
    let src = fs::read_dir(home.join("registry/src"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("itertools-0.13.0/src/free.rs");
    let text = fs::read_to_string(&src).unwrap();
    let needle = "    iterable.into_iter().sorted()\n";
    assert!(text.contains(needle));
    fs::write(
        &src,
        text.replacen(
            needle,
            "    iterable.into_iter().sorted_by(|a, b| b.cmp(a))\n",
            1,
        ),
    )
    .unwrap();
    q.cachet_cargo(&["clean", "-p", "itertools"], &home_env);
    let records = q.cachet_cargo_records(&["build", "--locked", "--offline"], &home_env);
    assert_eq!(outcomes_for(&records, "itertools"), vec![Outcome::Miss]);
    let changed = q.run_program("target", "debug", "wl-service");
    assert!(changed.contains("\"sorted\":[9,5,3,1]"), "{changed}");

    p.cachet_cargo(&["clean", "-p", "itertools"], &[]);
    let records = p.cachet_cargo_records(&["build", "--locked", "--offline"], &[]);
    assert_eq!(outcomes_for(&records, "itertools"), vec![Outcome::HitLocal]);
    assert_eq!(p.run_program("target", "debug", "wl-service"), output);
}

/// What users see in backtraces and debuggers of a program linked from restored crates:
/// paths relative to the workspace (`./dep-lib/src/lib.rs`), resolved against the current
/// checkout, never the checkout that compiled them.
#[test]
fn backtraces_and_gdb_show_the_current_checkout() {
    let p = Project::copy_of(&fixture("soundness"));
    p.cachet_cargo(&["build"], &[]);
    let q = second_checkout(&p, &p.root);
    let records = q.cachet_cargo_records(&["build"], &[]);
    assert_eq!(outcomes_for(&records, "dep_lib"), vec![Outcome::HitLocal]);
    // core_lib `include!`s from OUT_DIR and invokes a proc-macro, which could expand to a read
    // of OUT_DIR the scan cannot see: its OUT_DIR is keyed literally, and it compiles here
    // (docs/design.md, "Path-valued env! variables").
    assert_eq!(outcomes_for(&records, "core_lib"), vec![Outcome::Miss]);
    // The first checkout is gone: nothing may point there.
    let first = p.root.to_string_lossy().into_owned();
    fs::remove_dir_all(&p.root).unwrap();

    let exe = q.root.join("target/debug/app");
    let out = Command::new(&exe)
        .env("FIXTURE_PANIC", "1")
        .env("RUST_BACKTRACE", "1")
        .current_dir(&q.root)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("panicked at dep-lib/src/lib.rs:"), "{err}");
    assert!(err.contains("dep_lib::explode"), "{err}");
    assert!(err.contains("./dep-lib/src/lib.rs:"), "{err}");
    assert!(
        !err.contains(&first),
        "the backtrace names the first checkout:\n{err}"
    );

    // gdb, started in the checkout, finds the restored crate's source there.
    let gdb = Command::new("gdb")
        .args(["-batch", "-nx", "-ex", "list dep_lib::explode"])
        .arg(&exe)
        .current_dir(&q.root)
        .output()
        .expect("gdb is needed for this test (Debian package gdb; scripts/setup.sh installs it)");
    let listing = String::from_utf8_lossy(&gdb.stdout);
    assert!(
        listing.contains("panic!(\"fixture panic in dep-lib\")"),
        "gdb could not show the source:\n{listing}\n{}",
        String::from_utf8_lossy(&gdb.stderr)
    );
}

/// cargo writes `CACHEDIR.TAG` only into a target directory it creates; one made before the
/// first build (a CI cache mount, `mkdir target`) has none. It is still the target directory:
/// found by cargo's layout, its keys are a normal build's, and every crate is restored.
#[test]
fn a_target_dir_created_before_cargo_ran_is_recognised() {
    let p = Project::copy_of(&fixture("soundness"));
    p.cachet_cargo(&["build"], &[]);
    let output = p.run_program("target", "debug", "app");
    p.cachet_cargo(&["clean"], &[]);
    fs::create_dir(p.root.join("target")).unwrap();
    let records = p.cachet_cargo_records(&["build"], &[]);
    assert!(
        !p.root.join("target/CACHEDIR.TAG").exists(),
        "cargo tagged a target directory it did not create"
    );
    let calls = cacheable(&records);
    assert_eq!(calls.len(), 5, "{records:#?}");
    for r in &calls {
        assert_eq!(r.outcome, Outcome::HitLocal, "{r:#?}");
    }
    assert_eq!(p.run_program("target", "debug", "app"), output);
}
