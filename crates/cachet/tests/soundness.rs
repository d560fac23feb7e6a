//! Soundness: change one input at a time and prove the next build misses and behaves exactly
//! like a plain `cargo build` of the same state. A wrong hit here would ship a wrong binary.

use std::fs;

use cachet_wrapper::journal::Outcome;

use crate::mutation::{assert_like_plain, profile_of, replace, replace_keeping_size_and_mtime};
use crate::util::{fixture, outcomes_for, real_rustc, write_script, Project};

/// What a build after a change must show besides the program's output.
struct Misses {
    /// Crates that must miss (compile) in this build.
    must_miss: &'static [&'static str],
    /// What `cachet explain` must name: (crate, kind, part of the name).
    explains: (&'static str, &'static str, &'static str),
}

type Mutation = crate::mutation::Mutation<Misses>;

const UNCHANGED: Mutation = Mutation::unchanged(Misses {
    must_miss: &[],
    explains: ("", "", ""),
});

const MUTATIONS: &[Mutation] = &[
    Mutation {
        name: "a source line",
        edit: |r| replace(r, "core-lib/src/lib.rs", "core-lib v1", "core-lib v2"),
        expect: "lib=core-lib v2",
        check: Misses {
            must_miss: &["core_lib", "app"],
            explains: ("core_lib", "source file", "core-lib/src/lib.rs"),
        },
        ..UNCHANGED
    },
    Mutation {
        name: "a module file",
        edit: |r| {
            replace(
                r,
                "core-lib/src/shapes.rs",
                "\"square\", 4",
                "\"square\", 5",
            )
        },
        expect: "shape=square:5",
        check: Misses {
            must_miss: &["core_lib", "app"],
            explains: ("core_lib", "source file", "core-lib/src/shapes.rs"),
        },
        ..UNCHANGED
    },
    Mutation {
        name: "an include_str! file",
        edit: |r| fs::write(r.join("core-lib/data/greeting.txt"), "Hello again\n").unwrap(),
        expect: "greeting=Hello again",
        check: Misses {
            must_miss: &["core_lib", "app"],
            explains: ("core_lib", "source file", "greeting.txt"),
        },
        ..UNCHANGED
    },
    Mutation {
        name: "a feature",
        args: &["--features", "core-lib/extra"],
        expect: "extra=true",
        check: Misses {
            must_miss: &["core_lib", "app"],
            explains: ("core_lib", "argument", "feature=\"extra\""),
        },
        ..UNCHANGED
    },
    Mutation {
        name: "a --cfg from RUSTFLAGS",
        env: &[("RUSTFLAGS", "--cfg fixture_cfg")],
        expect: "cfg=true",
        check: Misses {
            must_miss: &["core_lib", "dep_lib", "app"],
            explains: ("core_lib", "argument", "fixture_cfg"),
        },
        ..UNCHANGED
    },
    Mutation {
        name: "a variable read by option_env!",
        env: &[("FIXTURE_FLAVOR", "spicy")],
        expect: "flavor=spicy",
        check: Misses {
            must_miss: &["core_lib", "app"],
            explains: ("core_lib", "env! variable", "FIXTURE_FLAVOR"),
        },
        ..UNCHANGED
    },
    Mutation {
        name: "the edition",
        edit: |r| {
            replace(
                r,
                "core-lib/Cargo.toml",
                "edition = \"2021\"",
                "edition = \"2018\"",
            )
        },
        expect: "edition_item=&i32",
        check: Misses {
            must_miss: &["core_lib", "app"],
            explains: ("core_lib", "argument", "--edition=2018"),
        },
        ..UNCHANGED
    },
    Mutation {
        name: "the profile (opt-level, debug assertions)",
        args: &["--release"],
        expect: "debug_assertions=false",
        check: Misses {
            must_miss: &["core_lib", "dep_lib", "app"],
            explains: ("core_lib", "argument", "opt-level=3"),
        },
        ..UNCHANGED
    },
    Mutation {
        name: "a dependency's source",
        edit: |r| replace(r, "dep-lib/src/lib.rs", "    1\n", "    2\n"),
        expect: "dep=dep-lib 0.1.0 value=2",
        check: Misses {
            must_miss: &["dep_lib", "core_lib", "app"],
            explains: ("core_lib", "extern crate", "dep_lib"),
        },
        ..UNCHANGED
    },
    Mutation {
        name: "a dependency's version",
        edit: |r| {
            replace(
                r,
                "dep-lib/Cargo.toml",
                "version = \"0.1.0\"",
                "version = \"0.1.1\"",
            )
        },
        expect: "dep=dep-lib 0.1.1 value=2",
        check: Misses {
            must_miss: &["dep_lib", "core_lib", "app"],
            explains: ("core_lib", "extern crate", "dep_lib"),
        },
        ..UNCHANGED
    },
    Mutation {
        name: "a file a build script writes into OUT_DIR",
        edit: |r| fs::write(r.join("core-lib/build-input.txt"), "build input v2\n").unwrap(),
        expect: "generated=build input v2",
        check: Misses {
            must_miss: &["core_lib", "app"],
            explains: ("core_lib", "source file", "generated.rs"),
        },
        ..UNCHANGED
    },
    Mutation {
        name: "an edit that keeps the file's size and mtime",
        edit: |r| replace_keeping_size_and_mtime(r, "core-lib/src/shapes.rs", "square", "circle"),
        // cargo trusts mtimes, so it would not even call rustc; make it.
        clean: Some(&["-p", "core-lib"]),
        expect: "shape=circle:5",
        check: Misses {
            must_miss: &["core_lib", "app"],
            explains: ("core_lib", "source file", "core-lib/src/shapes.rs"),
        },
        ..UNCHANGED
    },
    Mutation {
        name: "a variable a build script reads (rerun-if-env-changed)",
        env: &[("FIXTURE_BUILD_ENV", "set")],
        expect: "build_env=set",
        check: Misses {
            must_miss: &["core_lib", "app"],
            explains: ("core_lib", "source file", "generated.rs"),
        },
        ..UNCHANGED
    },
    Mutation {
        name: "a build script's source",
        edit: |r| {
            replace(
                r,
                "core-lib/build.rs",
                "input.trim(),",
                "input.trim().to_uppercase(),",
            )
        },
        expect: "generated=BUILD INPUT V2",
        check: Misses {
            must_miss: &["build_script_build", "core_lib", "app"],
            explains: ("build_script_build", "source file", "core-lib/build.rs"),
        },
        ..UNCHANGED
    },
    Mutation {
        name: "a file a proc-macro reads",
        edit: |r| {
            fs::write(
                r.join("core-lib/data/macro-input.txt"),
                "read by a proc-macro v2\n",
            )
            .unwrap()
        },
        expect: "macro=macro v1: read by a proc-macro v2",
        check: Misses {
            must_miss: &["core_lib", "app"],
            explains: ("core_lib", "source file", "macro-input.txt"),
        },
        ..UNCHANGED
    },
    Mutation {
        name: "a proc-macro's source",
        edit: |r| replace(r, "fixture-macros/src/lib.rs", "macro v1:", "macro v2:"),
        expect: "macro=macro v2: read by a proc-macro v2",
        check: Misses {
            must_miss: &["fixture_macros", "core_lib", "app"],
            explains: ("core_lib", "extern crate", "fixture_macros"),
        },
        ..UNCHANGED
    },
    Mutation {
        name: "a native static library built by cc (read by the linker only)",
        edit: |r| replace(r, "core-lib/c/native.c", "return 42;", "return 43;"),
        expect: "native=43",
        // core_lib's own output does not contain the library (`-bundle`): only the link sees it.
        check: Misses {
            must_miss: &["app"],
            explains: ("app", "link input", "libfixturec.a"),
        },
        ..UNCHANGED
    },
];

#[test]
fn each_input_change_misses_and_matches_a_plain_build() {
    let p = Project::copy_of(&fixture("soundness"));
    p.cachet_cargo(&["build"], &[]);
    p.plain_cargo(&["build"], &[]);
    let mut previous = p.run_program("target", "debug", "app");
    assert_eq!(previous, p.run_program("target-plain", "debug", "app"));
    assert_eq!(outcomes_for(&p.journal(), "core_lib"), vec![Outcome::Miss]);

    for m in MUTATIONS {
        (m.edit)(&p.root);
        if let Some(clean) = m.clean {
            let mut args = vec!["clean"];
            args.extend_from_slice(clean);
            p.cachet_cargo(&args, &[]);
            p.plain_cargo(&args, &[]);
        }
        let mut args = vec!["build"];
        args.extend_from_slice(m.args);
        let before = p.journal().len();
        p.cachet_cargo(&args, m.env);
        p.plain_cargo(&args, m.env);
        let records = p.journal().split_off(before);
        for krate in m.check.must_miss {
            let outcomes = outcomes_for(&records, krate);
            assert!(
                outcomes.contains(&Outcome::Miss) && !outcomes.contains(&Outcome::HitLocal),
                "changing {}: {krate} should have missed, got {outcomes:?}",
                m.name
            );
        }
        let (explained, kind, name) = m.check.explains;
        let missed = records
            .iter()
            .find(|r| r.krate.as_deref() == Some(explained) && r.outcome == Outcome::Miss)
            .unwrap_or_else(|| panic!("changing {}: no miss of {explained}", m.name));
        let changes = missed.changes.clone().unwrap_or_default();
        assert!(
            changes
                .iter()
                .any(|c| c.kind == kind && c.name.contains(name)),
            "changing {}: explain should name {:?}, got {changes:#?}",
            m.name,
            m.check.explains
        );
        let profile = profile_of(m.args);
        let cached = p.run_program("target", profile, "app");
        let plain = p.run_program("target-plain", profile, "app");
        assert_like_plain(m.name, &cached, &plain, m.expect);
        if m.args.is_empty() && m.env.is_empty() {
            assert_ne!(
                cached, previous,
                "changing {} did not change the output",
                m.name
            );
            previous = cached;
        }
    }

    // Back to a state built before: after `cargo clean`, every crate hits, the linked ones
    // (program, build script, proc-macro) included.
    let records = p.rebuild_after_clean(&[]);
    for krate in [
        "core_lib",
        "dep_lib",
        "app",
        "build_script_build",
        "fixture_macros",
    ] {
        assert_eq!(
            outcomes_for(&records, krate),
            vec![Outcome::HitLocal],
            "{krate} after clean"
        );
    }
    assert_eq!(p.run_program("target", "debug", "app"), previous);
}

/// A compiler whose `-vV` is identical to the real one but which compiles differently (here: a
/// wrapper script adding `--cfg injected`) must not share entries with it.
#[test]
fn a_different_rustc_with_the_same_version_misses() {
    let p = Project::copy_of(&fixture("soundness"));
    p.cachet_cargo(&["build"], &[]);
    let baseline = p.run_program("target", "debug", "app");
    assert!(baseline.contains("injected=false"));

    let real = real_rustc();
    let script = p.tmp.path().join("rustc-with-cfg");
    write_script(
        &script,
        &format!(
            "#!/bin/sh\n# Same -vV as rustc; every compile gets --cfg injected.\n\
             for a in \"$@\"; do case \"$a\" in -vV|-V|--version|--print*|-) exec {real} \"$@\";; esac; done\n\
             exec {real} \"$@\" --cfg injected\n",
            real = real.display()
        ),
    );
    let script_env = script.to_str().unwrap();

    // Same -vV, so cargo's own fingerprints do not change: clean to make it call rustc.
    p.cachet_cargo(&["clean"], &[]);
    let before = p.journal().len();
    p.cachet_cargo(&["build"], &[("RUSTC", script_env)]);
    let records = p.journal().split_off(before);
    for krate in ["core_lib", "dep_lib"] {
        assert_eq!(
            outcomes_for(&records, krate),
            vec![Outcome::Miss],
            "{krate} with another rustc"
        );
    }
    let out = p.run_program("target", "debug", "app");
    assert!(out.contains("injected=true"), "{out}");
    let core = records
        .iter()
        .find(|r| r.krate.as_deref() == Some("core_lib"))
        .unwrap();
    assert!(
        core.changes.iter().flatten().any(|c| c.kind == "compiler"),
        "explain should name the compiler: {:?}",
        core.changes
    );
    // And the command says it to a person.
    let text = String::from_utf8(p.cachet(&["explain", "core_lib"]).stdout).unwrap();
    assert!(
        text.contains("miss") && text.contains("compiler changed"),
        "{text}"
    );
}

/// A source edited while rustc runs: rustc compiled the old text, so the result must not be
/// stored under the new text's hash (a later build of the new text would restore old code).
#[test]
fn a_source_edited_during_the_compile_is_not_stored() {
    let p = Project::copy_of(&fixture("soundness"));
    let real = real_rustc();
    let flag = p.tmp.path().join("edited");
    let script = p.tmp.path().join("rustc-then-edit");
    write_script(
        &script,
        &format!(
            "#!/bin/sh\n{real} \"$@\"\nstatus=$?\n\
             case \" $* \" in *\" --crate-name core_lib \"*)\n\
               if [ ! -e {flag} ]; then touch {flag}; sed -i s/core-lib\\ v1/core-lib\\ v3/ {src}; fi;;\n\
             esac\nexit $status\n",
            real = real.display(),
            flag = flag.display(),
            src = p.root.join("core-lib/src/lib.rs").display()
        ),
    );
    let rustc = [("RUSTC", script.to_str().unwrap())];

    p.cachet_cargo(&["build"], &rustc);
    assert!(flag.exists(), "the shim did not edit the source");
    assert!(p
        .run_program("target", "debug", "app")
        .contains("lib=core-lib v1"));
    let records = p.journal();
    assert_eq!(
        outcomes_for(&records, "core_lib"),
        vec![Outcome::MissNotStored]
    );
    assert_eq!(
        records
            .iter()
            .find(|r| r.krate.as_deref() == Some("core_lib"))
            .unwrap()
            .reason
            .as_deref(),
        Some("input modified during compile")
    );

    // cargo sees the edit and rebuilds: the new text must be compiled, not restored.
    let before = p.journal().len();
    p.cachet_cargo(&["build"], &rustc);
    let records = p.journal().split_off(before);
    assert_eq!(outcomes_for(&records, "core_lib"), vec![Outcome::Miss]);
    assert!(p
        .run_program("target", "debug", "app")
        .contains("lib=core-lib v3"));
}
