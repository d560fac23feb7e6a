//! The default dev profile: cargo compiles workspace members with `-C incremental`, and cachet
//! caches them like any other crate. Every build here runs without `CARGO_INCREMENTAL`, as on
//! almost every developer machine, and counts the compiles that really ran with a logging
//! rustc (`RUSTC=shim`), not with cachet's own counters.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cachet_wrapper::journal::{Outcome, Record};

use crate::util::{
    cachet_bin, copy_tree, fixture, outcomes_for, real_rustc, run_ok, workload_service,
    write_script, Project, ServerProcess,
};

/// The crates of the `members` fixture: every one is a workspace member, so every one is
/// compiled with `-C incremental` (the build script and the proc-macro too).
const MEMBERS: [&str; 6] = [
    "app",
    "report",
    "shapes",
    "words",
    "build_script_build",
    "tally_macros",
];

/// A rustc that logs each call's arguments (one line per call) to `$SHIM_LOG` and runs the
/// real one. Its content does not depend on the test, so every checkout sees the same
/// compiler.
fn logging_rustc(dir: &Path) -> PathBuf {
    write_script(
        &dir.join("rustc-logging"),
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> \"$SHIM_LOG\"\nexec {} \"$@\"\n",
            real_rustc().display()
        ),
    )
}

/// A project built in the default dev profile (incremental on) through the logging rustc.
struct DevProject {
    p: Project,
    shim: PathBuf,
    log: PathBuf,
}

impl DevProject {
    fn new(p: Project, shim: &Path) -> DevProject {
        let log = p.tmp.path().join("rustc-calls.log");
        DevProject {
            p,
            shim: shim.to_path_buf(),
            log,
        }
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = self.p.cargo_command(args);
        cmd.env_remove("CARGO_INCREMENTAL")
            .env("RUSTC", &self.shim)
            .env("SHIM_LOG", &self.log)
            .envs(env.iter().copied());
        cmd
    }

    /// Runs cargo through cachet; returns the crates rustc really compiled and the journal
    /// records of this build.
    fn cachet(&self, args: &[&str], env: &[(&str, &str)]) -> (Vec<String>, Vec<Record>) {
        let mut cmd = self.command(args, env);
        cmd.env("RUSTC_WRAPPER", cachet_bin())
            .env("CACHET_DIR", &self.p.cache);
        let (calls, before) = (self.compiled().len(), self.p.journal().len());
        run_ok(cmd);
        let mut compiled = self.compiled();
        (
            compiled.split_off(calls),
            self.p.journal().split_off(before),
        )
    }

    /// Runs cargo without cachet into `target-plain`.
    fn plain(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args, env);
        cmd.env("CARGO_TARGET_DIR", self.p.root.join("target-plain"));
        run_ok(cmd)
    }

    /// The crate of every compile the shim saw so far, in order, with `+incremental` appended
    /// when it was an incremental compile. Queries (`-vV`, `--print`) are not compiles.
    fn compiled(&self) -> Vec<String> {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let words: Vec<&str> = line.split(' ').collect();
                let at = words.iter().position(|w| *w == "--crate-name")?;
                let name = words.get(at + 1)?;
                if *name == "___" {
                    return None;
                }
                let incremental = words
                    .iter()
                    .any(|w| w.starts_with("incremental=") || w.starts_with("-Cincremental="));
                Some(if incremental {
                    format!("{name}+incremental")
                } else {
                    name.to_string()
                })
            })
            .collect()
    }

    fn program(&self, target: &str) -> String {
        self.p.run_program(target, "debug", "app")
    }
}

fn replace(root: &Path, file: &str, from: &str, to: &str) {
    let path = root.join(file);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} does not contain {from:?}");
    fs::write(&path, text.replace(from, to)).unwrap();
}

fn members_compiled_incrementally(compiled: &[String]) -> Vec<&String> {
    compiled
        .iter()
        .filter(|c| c.ends_with("+incremental"))
        .collect()
}

/// A cold build stores every member; after `cargo clean` no member is compiled; a second
/// checkout at another path, with its own empty cache, gets every member from a real server
/// and compiles nothing. Then the edit loop runs in that restored checkout.
#[test]
fn members_are_restored_after_clean_and_in_a_second_checkout_through_the_server() {
    let storage = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&["--storage", &format!("dir:{}", storage.path().display())]);
    let server_env = [("CACHET_SERVER", server.url.as_str())];
    let shim_dir = tempfile::tempdir().unwrap();
    let shim = logging_rustc(shim_dir.path());
    let a = DevProject::new(Project::copy_of(&fixture("members")), &shim);

    let (cold, records) = a.cachet(&["build"], &server_env);
    let mut members = members_compiled_incrementally(&cold);
    members.sort();
    assert_eq!(
        members.len(),
        MEMBERS.len(),
        "every member compiles incrementally in the dev profile: {cold:?}"
    );
    for krate in MEMBERS {
        assert_eq!(
            outcomes_for(&records, krate),
            vec![Outcome::Miss],
            "{krate}"
        );
    }
    let output = a.program("target");
    assert!(output.contains("edit=edit 0"), "{output}");

    a.p.cachet_cargo(&["clean"], &[]);
    let (warm, records) = a.cachet(&["build"], &server_env);
    assert_eq!(
        warm,
        Vec::<String>::new(),
        "nothing is compiled after clean"
    );
    for krate in MEMBERS {
        assert_eq!(
            outcomes_for(&records, krate),
            vec![Outcome::HitLocal],
            "{krate}"
        );
    }
    assert_eq!(a.program("target"), output);

    // Another path at another depth, its own empty local cache, the same server.
    let other = a.p.tmp.path().join("elsewhere/deeper/checkout");
    copy_tree(&fixture("members"), &other);
    let b = DevProject::new(
        Project {
            tmp: tempfile::tempdir().unwrap(),
            root: other,
            cache: a.p.tmp.path().join("cache-b"),
        },
        &shim,
    );
    let (compiled, records) = b.cachet(&["build"], &server_env);
    assert_eq!(
        compiled,
        Vec::<String>::new(),
        "the second checkout compiles nothing"
    );
    for krate in MEMBERS {
        assert_eq!(
            outcomes_for(&records, krate),
            vec![Outcome::HitRemote],
            "{krate}"
        );
    }
    assert_eq!(b.program("target"), output);

    edit_loop_from_restored_members(&b);
}

/// From a checkout whose members were all restored (no incremental state at all): change one
/// line of one member and rebuild, five times; the program shows every change. A member that
/// keeps missing is stored for its first miss only, and a return to a stored state
/// still hits; the next compile after that hit runs against the incremental state the hit left
/// beside the restored outputs, and is still right.
fn edit_loop_from_restored_members(b: &DevProject) {
    let mut report_outcomes = Vec::new();
    for i in 1..=5 {
        replace(
            &b.p.root,
            "report/src/lib.rs",
            &format!("\"edit {}\"", i - 1),
            &format!("\"edit {i}\""),
        );
        let (compiled, records) = b.cachet(&["build"], &[]);
        let mut members = members_compiled_incrementally(&compiled);
        members.sort();
        assert_eq!(
            members,
            ["app+incremental", "report+incremental"],
            "edit {i}: the edited member and the program compile, incrementally"
        );
        assert!(
            b.program("target").contains(&format!("edit=edit {i}")),
            "edit {i}"
        );
        report_outcomes.extend(outcomes_for(&records, "report"));
    }
    assert_eq!(
        report_outcomes,
        [
            Outcome::Miss,
            Outcome::MissNotStored,
            Outcome::MissNotStored,
            Outcome::MissNotStored,
            Outcome::MissNotStored
        ],
        "the crate being edited is stored for its first miss only"
    );

    // Back to the text of the first edit, which was stored: restored, not compiled, although
    // rustc's incremental directory describes the fifth edit.
    replace(&b.p.root, "report/src/lib.rs", "\"edit 5\"", "\"edit 1\"");
    let (compiled, records) = b.cachet(&["build"], &[]);
    assert_eq!(compiled, Vec::<String>::new());
    assert_eq!(outcomes_for(&records, "report"), vec![Outcome::HitLocal]);
    assert!(b.program("target").contains("edit=edit 1"));

    // Back to the fifth edit, which was not stored: rustc compiles it against its session of
    // the fifth edit and reuses all of it, including the `.rmeta` it hard-links between the
    // session and the out-dir. Had the hit written the first edit's metadata into that file
    // instead of replacing it, `app` would read "edit 1" from it.
    replace(&b.p.root, "report/src/lib.rs", "\"edit 1\"", "\"edit 5\"");
    let (compiled, _) = b.cachet(&["build"], &[]);
    assert!(
        compiled.contains(&"report+incremental".to_string()),
        "{compiled:?}"
    );
    let cached = b.program("target");
    assert!(
        cached.contains("edit=edit 5") && cached.contains("app sees edit 5"),
        "{cached}"
    );
    b.plain(&["build"], &[]);
    assert_eq!(cached, b.program("target-plain"));
}

/// `cargo check` and `cargo test` in the default profile: their members (metadata-only
/// compiles, test harnesses) are restored after `cargo clean` too, and the tests still run.
#[test]
fn check_and_test_members_are_restored_after_clean() {
    let shim_dir = tempfile::tempdir().unwrap();
    let shim = logging_rustc(shim_dir.path());
    let d = DevProject::new(Project::copy_of(&fixture("members")), &shim);
    let (cold_check, _) = d.cachet(&["check"], &[]);
    let (cold_test, _) = d.cachet(&["test", "--workspace", "--no-run"], &[]);
    assert!(
        !members_compiled_incrementally(&cold_check).is_empty()
            && !members_compiled_incrementally(&cold_test).is_empty(),
        "{cold_check:?} {cold_test:?}"
    );
    d.p.cachet_cargo(&["clean"], &[]);
    let (check, records) = d.cachet(&["check"], &[]);
    assert_eq!(check, Vec::<String>::new(), "cargo check compiles nothing");
    assert_eq!(outcomes_for(&records, "report"), vec![Outcome::HitLocal]);
    let (test, _) = d.cachet(&["test", "--workspace", "--no-run"], &[]);
    assert_eq!(test, Vec::<String>::new(), "cargo test compiles nothing");
    let mut cmd = d.command(&["test", "--workspace"], &[]);
    cmd.env("RUSTC_WRAPPER", cachet_bin())
        .env("CACHET_DIR", &d.p.cache);
    let out = String::from_utf8(run_ok(cmd).stdout).unwrap();
    assert!(out.contains("test tests::square_area ... ok"), "{out}");
}

/// The pinned workload in the default dev profile: after `cargo clean`, its member (and every
/// dependency) is restored, nothing is compiled, and the program prints the same.
#[test]
fn workload_member_is_restored_under_the_default_dev_profile() {
    let shim_dir = tempfile::tempdir().unwrap();
    let shim = logging_rustc(shim_dir.path());
    let w = DevProject::new(Project::copy_of(&workload_service()), &shim);
    w.p.cachet_cargo(&["fetch", "--locked"], &[]);
    let (cold, _) = w.cachet(&["build", "--locked", "--offline"], &[]);
    let members = members_compiled_incrementally(&cold);
    assert!(
        members.iter().any(|m| m.starts_with("wl_service")),
        "the member compiles incrementally: {members:?}"
    );
    let output = w.p.run_program("target", "debug", "wl-service");

    w.p.cachet_cargo(&["clean"], &[]);
    let (warm, records) = w.cachet(&["build", "--locked", "--offline"], &[]);
    assert_eq!(
        members_compiled_incrementally(&warm),
        Vec::<&String>::new(),
        "no member is compiled after clean"
    );
    assert_eq!(
        outcomes_for(&records, "wl_service"),
        vec![Outcome::HitLocal]
    );
    assert_eq!(w.p.run_program("target", "debug", "wl-service"), output);
}

/// One change to the `members` fixture, made for one build.
struct Mutation {
    name: &'static str,
    edit: fn(&Path),
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    /// `cargo clean -p` this package first, because cargo itself would not notice the edit.
    clean: Option<&'static str>,
    /// A line the program must print afterwards.
    expect: &'static str,
    /// Members that must not be restored in this build.
    must_compile: &'static [&'static str],
}

fn no_edit(_: &Path) {}

const MUTATIONS: &[Mutation] = &[
    Mutation {
        name: "a source line",
        edit: |r| replace(r, "report/src/lib.rs", "\"edit 0\"", "\"edit 1\""),
        args: &[],
        env: &[],
        clean: None,
        expect: "edit=edit 1",
        must_compile: &["report", "app"],
    },
    Mutation {
        name: "a feature",
        edit: no_edit,
        args: &["--features", "report/fancy"],
        env: &[],
        clean: None,
        expect: "fancy=true",
        must_compile: &["shapes", "report", "app"],
    },
    Mutation {
        name: "a --cfg from RUSTFLAGS",
        edit: no_edit,
        args: &[],
        env: &[("RUSTFLAGS", "--cfg members_cfg")],
        clean: None,
        expect: "cfg=true",
        must_compile: &["shapes", "words", "report", "app"],
    },
    Mutation {
        name: "a variable read by option_env!",
        edit: no_edit,
        args: &[],
        env: &[("MEMBERS_MOOD", "sunny")],
        clean: None,
        expect: "mood=sunny",
        must_compile: &["report", "app"],
    },
    Mutation {
        name: "a flag (-C debug-assertions from the profile)",
        edit: no_edit,
        args: &[],
        env: &[("CARGO_PROFILE_DEV_DEBUG_ASSERTIONS", "false")],
        clean: None,
        expect: "debug_assertions=false",
        must_compile: &["shapes", "words", "report", "app"],
    },
    Mutation {
        name: "a dependency's source",
        edit: |r| replace(r, "shapes/src/lib.rs", "shapes dep 1", "shapes dep 2"),
        args: &[],
        env: &[],
        clean: None,
        expect: "dep=shapes dep 2",
        must_compile: &["shapes", "report", "app"],
    },
    Mutation {
        name: "a file a build script reads",
        edit: |r| fs::write(r.join("words/words.txt"), "echo\nfoxtrot\n").unwrap(),
        args: &[],
        env: &[],
        clean: None,
        expect: "words=2 words [echo foxtrot] top o3,t2,c1",
        must_compile: &["words", "report", "app"],
    },
    Mutation {
        name: "a proc-macro's source",
        edit: |r| replace(r, "tally-macros/src/lib.rs", ".count();", ".count() * 10;"),
        args: &[],
        env: &[],
        clean: None,
        expect: "tally=40",
        must_compile: &["tally_macros", "report", "app"],
    },
    Mutation {
        name: "a module file",
        edit: |r| replace(r, "report/src/extra.rs", "extra 1", "extra 2"),
        args: &[],
        env: &[],
        clean: None,
        expect: "extra=extra 2",
        must_compile: &["report", "app"],
    },
    Mutation {
        name: "an include_str! file",
        edit: |r| fs::write(r.join("report/src/greeting.txt"), "hello again\n").unwrap(),
        args: &[],
        env: &[],
        clean: None,
        expect: "greeting=hello again",
        must_compile: &["report", "app"],
    },
    Mutation {
        name: "an edit that keeps the file's size and mtime",
        edit: keep_size_and_mtime_edit,
        args: &[],
        env: &[],
        // cargo trusts mtimes, so it would not even call rustc; make it.
        clean: Some("report"),
        expect: "edit=edit 7",
        must_compile: &["report", "app"],
    },
    Mutation {
        name: "a variable a build script reads (rerun-if-env-changed)",
        edit: no_edit,
        args: &[],
        env: &[("WORDS_EXTRA", "golf")],
        clean: None,
        expect: "words=3 words [echo foxtrot golf] top o4,f2,t2",
        must_compile: &["words", "report", "app"],
    },
    Mutation {
        name: "a build script's source",
        edit: |r| {
            replace(
                r,
                "words/build.rs",
                "format!(\"{w:?}\")",
                "format!(\"{:?}\", w.to_uppercase())",
            )
        },
        args: &[],
        env: &[],
        clean: None,
        expect: "words=2 words [ECHO FOXTROT] top O3,T2,C1",
        must_compile: &["build_script_build", "words", "report", "app"],
    },
    Mutation {
        name: "a dependency's version",
        edit: |r| {
            replace(
                r,
                "shapes/Cargo.toml",
                "version = \"0.1.0\"",
                "version = \"0.1.1\"",
            )
        },
        args: &[],
        env: &[],
        clean: None,
        expect: "shapes_version=0.1.1",
        must_compile: &["shapes", "report", "app"],
    },
];

/// Changes `"edit 1"` to `"edit 7"` in report's source and puts the old mtime back: same size,
/// same mtime, other contents.
fn keep_size_and_mtime_edit(root: &Path) {
    let path = root.join("report/src/lib.rs");
    let before = fs::metadata(&path).unwrap();
    let mtime = before.modified().unwrap();
    replace(root, "report/src/lib.rs", "\"edit 1\"", "\"edit 7\"");
    let f = fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    let after = fs::metadata(&path).unwrap();
    assert_eq!(
        (before.len(), mtime),
        (after.len(), after.modified().unwrap())
    );
}

/// Soundness under incremental compilation: one input changed at a time, each build compared
/// with a plain (also incremental) build of the same state; no changed crate is restored.
/// Then the original sources again: restored, beside incremental state of later compiles.
#[test]
fn each_input_change_under_incremental_matches_a_plain_build() {
    let shim_dir = tempfile::tempdir().unwrap();
    let shim = logging_rustc(shim_dir.path());
    let d = DevProject::new(Project::copy_of(&fixture("members")), &shim);
    d.cachet(&["build"], &[]);
    d.plain(&["build"], &[]);
    let original = d.program("target");
    assert_eq!(original, d.program("target-plain"));

    for m in MUTATIONS {
        (m.edit)(&d.p.root);
        if let Some(package) = m.clean {
            d.p.cachet_cargo(&["clean", "-p", package], &[]);
            d.plain(&["clean", "-p", package], &[]);
        }
        let mut args = vec!["build"];
        args.extend_from_slice(m.args);
        let (compiled, records) = d.cachet(&args, m.env);
        d.plain(&args, m.env);
        for krate in m.must_compile {
            assert!(
                compiled.contains(&format!("{krate}+incremental")),
                "changing {}: {krate} must compile, compiled {compiled:?}",
                m.name
            );
            let outcomes = outcomes_for(&records, krate);
            assert!(
                !outcomes.iter().any(|o| matches!(o, Outcome::HitLocal)),
                "changing {}: {krate} was restored: {outcomes:?}",
                m.name
            );
        }
        let cached = d.program("target");
        assert_eq!(
            cached,
            d.program("target-plain"),
            "changing {}: output differs from a plain build",
            m.name
        );
        assert!(
            cached.lines().any(|l| l == m.expect),
            "changing {}: expected {:?} in\n{cached}",
            m.name,
            m.expect
        );
    }

    // The original sources again: every member was stored by the first build and is restored
    // now, although rustc's incremental directories hold the state of the last mutations.
    for member in ["report", "shapes", "words", "tally-macros"] {
        fs::remove_dir_all(d.p.root.join(member)).unwrap();
        copy_tree(&fixture("members").join(member), &d.p.root.join(member));
    }
    let (compiled, _) = d.cachet(&["build"], &[]);
    assert_eq!(compiled, Vec::<String>::new());
    assert_eq!(d.program("target"), original);
}
