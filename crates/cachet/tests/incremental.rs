//! The default dev profile: cargo compiles workspace members with `-C incremental`, and cachet
//! caches them like any other crate. Every build here runs without `CARGO_INCREMENTAL`, as on
//! almost every developer machine, and counts the compiles that really ran with a logging
//! rustc (`logging_driver.rs`), not with cachet's own counters.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cachet_wrapper::journal::{Outcome, Record};

use crate::clippy::diagnostics;
use crate::logging_driver::LoggingCompilers;
use crate::mutation::{assert_like_plain, profile_of, replace, replace_keeping_size_and_mtime};
use crate::util::{
    cachet_bin, copy_tree, fixture, outcomes_for, run_ok, workload_service, write_script, Project,
    ServerProcess,
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

/// A project built in the default dev profile (incremental on) through the logging rustc.
struct DevProject<'a> {
    p: Project,
    compilers: &'a LoggingCompilers,
}

impl DevProject<'_> {
    fn new(p: Project, compilers: &LoggingCompilers) -> DevProject<'_> {
        DevProject { p, compilers }
    }

    /// cargo in the default dev profile with the logging rustc.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = self.p.cargo_command(args);
        cmd.env_remove("CARGO_INCREMENTAL")
            .envs(self.compilers.env())
            .envs(env.iter().copied());
        cmd
    }

    /// Runs cargo through cachet; returns the crates rustc really compiled and the journal
    /// records of this build.
    fn cachet(&self, args: &[&str], env: &[(&str, &str)]) -> (Vec<String>, Vec<Record>) {
        let before = self.p.journal().len();
        let (compiled, _) = self.cachet_output(args, env);
        (compiled, self.p.journal().split_off(before))
    }

    /// Runs cargo through cachet; returns the crates rustc really compiled and cargo's output.
    fn cachet_output(&self, args: &[&str], env: &[(&str, &str)]) -> (Vec<String>, Output) {
        let mut cmd = self.command(args, env);
        cmd.env("RUSTC_WRAPPER", cachet_bin())
            .env("CACHET_DIR", &self.p.cache);
        let calls = self.compiled().len();
        let out = run_ok(cmd);
        (self.compiled().split_off(calls), out)
    }

    /// Runs cargo without cachet into `target-plain`.
    fn plain(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args, env);
        cmd.env("CARGO_TARGET_DIR", self.p.root.join("target-plain"));
        run_ok(cmd)
    }

    /// Runs `cargo clippy` (as cargo would: `cargo-clippy clippy`) in the default dev profile
    /// with the logging clippy-driver, through cachet, or without it into `target-plain`;
    /// returns the crates really compiled and cargo's output.
    fn clippy(&self, through_cachet: bool) -> (Vec<String>, Output) {
        let mut cmd = self.compilers.clippy(&self.p, &[]);
        cmd.env_remove("CARGO_INCREMENTAL");
        if through_cachet {
            cmd.env("RUSTC_WRAPPER", cachet_bin())
                .env("CACHET_DIR", &self.p.cache);
        } else {
            cmd.env("CARGO_TARGET_DIR", self.p.root.join("target-plain"));
        }
        let calls = self.compiled().len();
        let out = run_ok(cmd);
        (self.compiled().split_off(calls), out)
    }

    /// The crate of every compile the logging compilers saw so far (those of every checkout
    /// that shares them), in order, with `+incremental` appended when it was an incremental
    /// compile. Queries (`-vV`, `--print`) are not compiles.
    fn compiled(&self) -> Vec<String> {
        self.compilers
            .calls()
            .iter()
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

fn members_compiled_incrementally(compiled: &[String]) -> Vec<&String> {
    compiled
        .iter()
        .filter(|c| c.ends_with("+incremental"))
        .collect()
}

/// Every member of the `members` fixture had exactly one call among `records`, with `outcome`.
fn assert_every_member(records: &[Record], outcome: Outcome) {
    for krate in MEMBERS {
        assert_eq!(outcomes_for(records, krate), vec![outcome], "{krate}");
    }
}

/// A cold build stores every member; after `cargo clean` no member is compiled; a second
/// checkout at another path, with its own empty cache, gets every member from a real server
/// and compiles nothing. Then the edit loop runs in that restored checkout.
#[test]
fn members_are_restored_after_clean_and_in_a_second_checkout_through_the_server() {
    let storage = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&["--storage", &format!("dir:{}", storage.path().display())]);
    let server_env = [("CACHET_SERVER", server.base_url())];
    let compilers = LoggingCompilers::new();
    let a = DevProject::new(Project::copy_of(&fixture("members")), &compilers);

    let (cold, records) = a.cachet(&["build"], &server_env);
    let mut members = members_compiled_incrementally(&cold);
    members.sort();
    assert_eq!(
        members.len(),
        MEMBERS.len(),
        "every member compiles incrementally in the dev profile: {cold:?}"
    );
    assert_every_member(&records, Outcome::Miss);
    let output = a.program("target");
    assert!(output.contains("edit=edit 0"), "{output}");

    a.p.cachet_cargo(&["clean"], &[]);
    let (warm, records) = a.cachet(&["build"], &server_env);
    assert_eq!(
        warm,
        Vec::<String>::new(),
        "nothing is compiled after clean"
    );
    assert_every_member(&records, Outcome::HitLocal);
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
        &compilers,
    );
    let (compiled, records) = b.cachet(&["build"], &server_env);
    assert_eq!(
        compiled,
        Vec::<String>::new(),
        "the second checkout compiles nothing"
    );
    assert_every_member(&records, Outcome::HitRemote);
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

/// `cargo check`, `cargo test` and `cargo clippy` in the default profile: their members
/// (metadata-only compiles, test harnesses, clippy's own) are restored after `cargo clean` too,
/// the tests still run, and clippy shows the same warnings as without cachet. An edit after the
/// restore shows its new warning: clippy-driver's incremental compile beside restored outputs.
#[test]
fn check_test_and_clippy_members_are_restored_after_clean() {
    let compilers = LoggingCompilers::new();
    let d = DevProject::new(Project::copy_of(&fixture("members")), &compilers);
    let (cold_check, check_out) = d.cachet_output(&["check"], &[]);
    let (cold_test, _) = d.cachet(&["test", "--workspace", "--no-run"], &[]);
    assert!(
        !members_compiled_incrementally(&cold_check).is_empty()
            && !members_compiled_incrementally(&cold_test).is_empty(),
        "{cold_check:?} {cold_test:?}"
    );
    let (cold_clippy, out) = d.clippy(true);
    // The proc-macro twice: checked for its own lints, and built for report to run.
    let mut members = members_compiled_incrementally(&cold_clippy);
    members.sort();
    members.dedup();
    assert_eq!(
        members.len(),
        MEMBERS.len(),
        "clippy compiles every member incrementally: {cold_clippy:?}"
    );
    let shown = diagnostics(&out);
    assert!(shown.contains("clippy::single_element_loop"), "{shown}");
    let (_, plain) = d.clippy(false);
    assert_eq!(
        shown,
        diagnostics(&plain),
        "clippy through cachet and without"
    );

    d.p.cachet_cargo(&["clean"], &[]);
    let before = d.p.journal().len();
    let (check, out) = d.cachet_output(&["check"], &[]);
    assert_eq!(check, Vec::<String>::new(), "cargo check compiles nothing");
    assert_eq!(
        outcomes_for(&d.p.journal()[before..], "report"),
        vec![Outcome::HitLocal]
    );
    assert_eq!(diagnostics(&out), diagnostics(&check_out), "cargo check");
    let (test, _) = d.cachet(&["test", "--workspace", "--no-run"], &[]);
    assert_eq!(test, Vec::<String>::new(), "cargo test compiles nothing");
    let mut cmd = d.command(&["test", "--workspace"], &[]);
    cmd.env("RUSTC_WRAPPER", cachet_bin())
        .env("CACHET_DIR", &d.p.cache);
    let out = String::from_utf8(run_ok(cmd).stdout).unwrap();
    assert!(out.contains("test tests::square_area ... ok"), "{out}");
    let before = d.p.journal().len();
    let (compiled, out) = d.clippy(true);
    assert_eq!(
        compiled,
        Vec::<String>::new(),
        "cargo clippy compiles nothing"
    );
    for krate in MEMBERS {
        let outcomes = outcomes_for(&d.p.journal()[before..], krate);
        assert!(
            !outcomes.is_empty() && outcomes.iter().all(|o| *o == Outcome::HitLocal),
            "{krate}: {outcomes:?}"
        );
    }
    assert_eq!(diagnostics(&out), shown, "replayed warnings");

    // An edit that adds a warning: report is compiled, and both warnings show, as without
    // cachet.
    replace(
        &d.p.root,
        "report/src/lib.rs",
        "let mut out = vec![",
        "let _empty = EDIT.len() == 0;\n    let mut out = vec![",
    );
    let (compiled, out) = d.clippy(true);
    assert!(
        compiled.contains(&"report+incremental".to_string()),
        "{compiled:?}"
    );
    let edited = diagnostics(&out);
    assert!(
        edited.contains("clippy::len_zero") && edited.contains("clippy::single_element_loop"),
        "{edited}"
    );
    let (_, plain) = d.clippy(false);
    assert_eq!(edited, diagnostics(&plain), "after the edit");
}

/// The pinned workload in the default dev profile: after `cargo clean`, its member (and every
/// dependency) is restored for `cargo build` and for `cargo test` (the member's test harness),
/// nothing is compiled, the program prints the same and the tests run with the same output.
/// (`cargo check` and `cargo clippy` of the workload in this profile: `clippy.rs`.)
#[test]
fn workload_member_is_restored_under_the_default_dev_profile() {
    let compilers = LoggingCompilers::new();
    let w = DevProject::new(Project::copy_of(&workload_service()), &compilers);
    w.p.cachet_cargo(&["fetch", "--locked"], &[]);
    let build = ["build", "--locked", "--offline"];
    let test = ["test", "--locked", "--offline"];
    let (cold, _) = w.cachet(&build, &[]);
    let members = members_compiled_incrementally(&cold);
    assert!(
        members.iter().any(|m| m.starts_with("wl_service")),
        "the member compiles incrementally: {members:?}"
    );
    let output = w.p.run_program("target", "debug", "wl-service");
    // The dependencies are the build's; only the member's test harness is compiled.
    let (cold_test, tested) = w.cachet_output(&test, &[]);
    assert_eq!(cold_test, ["wl_service+incremental"]);

    w.p.cachet_cargo(&["clean"], &[]);
    let (warm, records) = w.cachet(&build, &[]);
    // (Build scripts run again after clean, and autocfg's probes are compiles of theirs.)
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
    let (warm_test, retested) = w.cachet_output(&test, &[]);
    assert_eq!(
        warm_test,
        Vec::<String>::new(),
        "cargo test compiles nothing"
    );
    assert_eq!(diagnostics(&retested), diagnostics(&tested), "cargo test");
    let ran = String::from_utf8_lossy(&retested.stdout);
    assert!(ran.contains("test result: ok."), "{ran}");
}

/// What a build after a change to the `members` fixture must show besides the program's
/// output, and the compiler it runs.
struct Compiles {
    /// The compiler cargo runs for this build.
    compiler: Compiler,
    /// Members that must not be restored in this build.
    must_compile: &'static [&'static str],
}

type Mutation = crate::mutation::Mutation<Compiles>;

/// A mutation built by the real rustc, in which `must_compile` compile.
const fn by_rustc(must_compile: &'static [&'static str]) -> Compiles {
    Compiles {
        compiler: Compiler::Rustc,
        must_compile,
    }
}

const UNCHANGED: Mutation = Mutation::unchanged(by_rustc(&[]));

/// The compilers the mutations use (all of them log their calls, see [`LoggingCompilers`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Compiler {
    /// The real rustc.
    Rustc,
    /// A different rustc with the same `-vV`: a script that adds `--cfg members_cfg` to every
    /// compile. Its results must not be shared with the real one's.
    Other,
    /// The real rustc, but the build first runs once through a script that edits report's
    /// source right after rustc compiled it: what it compiled is the old text, so it must not
    /// be stored under the new one.
    EditsReportWhileCompiling,
}

const MUTATIONS: &[Mutation] = &[
    Mutation {
        name: "a source line",
        edit: |r| replace(r, "report/src/lib.rs", "\"edit 0\"", "\"edit 1\""),
        expect: "edit=edit 1",
        check: by_rustc(&["report", "app"]),
        ..UNCHANGED
    },
    Mutation {
        name: "a feature",
        args: &["--features", "report/fancy"],
        expect: "fancy=true",
        check: by_rustc(&["shapes", "report", "app"]),
        ..UNCHANGED
    },
    Mutation {
        name: "a --cfg from RUSTFLAGS",
        env: &[("RUSTFLAGS", "--cfg members_cfg")],
        expect: "cfg=true",
        check: by_rustc(&["shapes", "words", "report", "app"]),
        ..UNCHANGED
    },
    Mutation {
        name: "a variable read by option_env!",
        env: &[("MEMBERS_MOOD", "sunny")],
        expect: "mood=sunny",
        check: by_rustc(&["report", "app"]),
        ..UNCHANGED
    },
    Mutation {
        name: "a flag (-C debug-assertions from the profile)",
        env: &[("CARGO_PROFILE_DEV_DEBUG_ASSERTIONS", "false")],
        expect: "debug_assertions=false",
        check: by_rustc(&["shapes", "words", "report", "app"]),
        ..UNCHANGED
    },
    Mutation {
        name: "a dependency's source",
        edit: |r| replace(r, "shapes/src/lib.rs", "shapes dep 1", "shapes dep 2"),
        expect: "dep=shapes dep 2",
        check: by_rustc(&["shapes", "report", "app"]),
        ..UNCHANGED
    },
    Mutation {
        name: "a file a build script reads",
        edit: |r| fs::write(r.join("words/words.txt"), "echo\nfoxtrot\n").unwrap(),
        expect: "words=2 words [echo foxtrot] top o3,t2,c1",
        check: by_rustc(&["words", "report", "app"]),
        ..UNCHANGED
    },
    Mutation {
        name: "a proc-macro's source",
        edit: |r| replace(r, "tally-macros/src/lib.rs", ".count();", ".count() * 10;"),
        expect: "tally=40",
        check: by_rustc(&["tally_macros", "report", "app"]),
        ..UNCHANGED
    },
    Mutation {
        name: "a file a proc-macro reads, added",
        edit: add_file_read_by_a_proc_macro,
        expect: "macro=read by a proc-macro v1",
        check: by_rustc(&["tally_macros", "report", "app"]),
        ..UNCHANGED
    },
    Mutation {
        name: "a file a proc-macro reads, changed",
        edit: |r| fs::write(r.join(MACRO_INPUT), "read by a proc-macro v2\n").unwrap(),
        expect: "macro=read by a proc-macro v2",
        check: by_rustc(&["report", "app"]),
        ..UNCHANGED
    },
    Mutation {
        name: "a module file",
        edit: |r| replace(r, "report/src/extra.rs", "extra 1", "extra 2"),
        expect: "extra=extra 2",
        check: by_rustc(&["report", "app"]),
        ..UNCHANGED
    },
    Mutation {
        name: "an include_str! file",
        edit: |r| fs::write(r.join("report/src/greeting.txt"), "hello again\n").unwrap(),
        expect: "greeting=hello again",
        check: by_rustc(&["report", "app"]),
        ..UNCHANGED
    },
    Mutation {
        name: "an edit that keeps the file's size and mtime",
        edit: |r| {
            replace_keeping_size_and_mtime(r, "report/src/lib.rs", "\"edit 1\"", "\"edit 7\"")
        },
        // cargo trusts mtimes, so it would not even call rustc; make it.
        clean: Some(&["-p", "report"]),
        expect: "edit=edit 7",
        check: by_rustc(&["report", "app"]),
        ..UNCHANGED
    },
    Mutation {
        name: "a source edited while rustc compiles it",
        // Makes cargo compile report; the compiler then edits "edit 7" to "edit 8".
        edit: |r| replace(r, "report/src/extra.rs", "extra 2", "extra 3"),
        expect: "edit=edit 8",
        check: Compiles {
            compiler: Compiler::EditsReportWhileCompiling,
            must_compile: &["report", "app"],
        },
        ..UNCHANGED
    },
    Mutation {
        name: "a variable a build script reads (rerun-if-env-changed)",
        env: &[("WORDS_EXTRA", "golf")],
        expect: "words=3 words [echo foxtrot golf] top o4,f2,t2",
        check: by_rustc(&["words", "report", "app"]),
        ..UNCHANGED
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
        expect: "words=2 words [ECHO FOXTROT] top O3,T2,C1",
        check: by_rustc(&["build_script_build", "words", "report", "app"]),
        ..UNCHANGED
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
        expect: "shapes_version=0.1.1",
        check: by_rustc(&["shapes", "report", "app"]),
        ..UNCHANGED
    },
    Mutation {
        name: "the edition",
        edit: |r| {
            replace(
                r,
                "shapes/Cargo.toml",
                "edition = \"2021\"",
                "edition = \"2018\"",
            )
        },
        expect: "edition_item=&i32",
        check: by_rustc(&["shapes", "report", "app"]),
        ..UNCHANGED
    },
    Mutation {
        name: "a native static library built by cc (read by the linker only)",
        edit: |r| replace(r, "words/c/native.c", "return 42;", "return 43;"),
        expect: "native=43",
        // words' rlib does not contain the library (`-bundle`): only the link reads it.
        check: by_rustc(&["app"]),
        ..UNCHANGED
    },
    // The release profile is not incremental unless asked; asked, its compiles are keyed apart
    // from the dev profile's. (Build scripts and proc-macros are compiled alike in both
    // profiles, so they may be restored.)
    Mutation {
        name: "the release profile, incremental",
        args: &["--release"],
        env: &[("CARGO_PROFILE_RELEASE_INCREMENTAL", "true")],
        expect: "debug_assertions=false",
        check: by_rustc(&["shapes", "words", "report", "app"]),
        ..UNCHANGED
    },
    // Last, and after a build without extra variables: every crate's current state was just
    // stored by the real rustc, so a key blind to the compiler would restore all of them.
    Mutation {
        name: "a different rustc with the same version",
        // The same `-vV`, so cargo's fingerprints do not change: clean to make it call rustc.
        clean: Some(&[]),
        expect: "cfg=true",
        check: Compiles {
            compiler: Compiler::Other,
            must_compile: &[
                "shapes",
                "words",
                "build_script_build",
                "tally_macros",
                "report",
                "app",
            ],
        },
        ..UNCHANGED
    },
];

/// Where the proc-macro added by [`add_file_read_by_a_proc_macro`] reads.
const MACRO_INPUT: &str = "report/data/macro-input.txt";

/// Gives tally-macros a macro that reads a file while it expands and registers it with rustc
/// as the soundness fixture's does (an `include_bytes!` in the expansion, so the file is in
/// dep-info: `proc_macro::tracked::path` is nightly-only), and makes report call it.
fn add_file_read_by_a_proc_macro(root: &Path) {
    let mut text = fs::read_to_string(root.join("tally-macros/src/lib.rs")).unwrap();
    text.push_str(
        r#"
/// `file_text!("path")`: the trimmed text of `path` (relative to the calling crate's manifest
/// directory), as a string literal.
#[proc_macro]
pub fn file_text(input: TokenStream) -> TokenStream {
    let rel = input.to_string();
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let path = std::path::Path::new(&dir).join(rel.trim().trim_matches('"'));
    let text = std::fs::read_to_string(&path).expect("file_text! input");
    let path = path.display().to_string();
    format!("{{ const _: &[u8] = include_bytes!({path:?}); {:?} }}", text.trim())
        .parse()
        .unwrap()
}
"#,
    );
    fs::write(root.join("tally-macros/src/lib.rs"), text).unwrap();
    fs::create_dir_all(root.join("report/data")).unwrap();
    fs::write(root.join(MACRO_INPUT), "read by a proc-macro v1\n").unwrap();
    replace(
        root,
        "report/src/lib.rs",
        "        format!(\"shapes={}\"",
        "        format!(\"macro={}\", tally_macros::file_text!(\"data/macro-input.txt\")),\n        format!(\"shapes={}\"",
    );
}

/// Soundness under incremental compilation: one input changed at a time, each build compared
/// with a plain (also incremental) build of the same state; no changed crate is restored.
/// Then the original sources again: restored, beside incremental state of later compiles.
///
/// Every miss is stored here (`CACHET_EDIT_STORE=all`), so that every state is in the cache
/// and a key blind to a change would restore it; with the default setting, the crate being
/// edited would be stored for its first miss only (see the edit-loop test), which would hide
/// such a key.
#[test]
fn each_input_change_under_incremental_matches_a_plain_build() {
    let compilers = LoggingCompilers::new();
    let shim = &compilers.rustc;
    let scripts = tempfile::tempdir().unwrap();
    let other = other_rustc(scripts.path(), shim);
    let d = DevProject::new(Project::copy_of(&fixture("members")), &compilers);
    let editing = rustc_editing_report(scripts.path(), shim, &d.p.root);
    let store_all = ("CACHET_EDIT_STORE", "all");
    d.cachet(&["build"], &[store_all]);
    d.plain(&["build"], &[]);
    let original = d.program("target");
    assert_eq!(original, d.program("target-plain"));

    let mut report_outcomes = Vec::new();
    for m in MUTATIONS {
        (m.edit)(&d.p.root);
        if let Some(clean) = m.clean {
            let args = [&["clean"], clean].concat();
            d.p.cachet_cargo(&args, &[]);
            d.plain(&args, &[]);
        }
        let mut args = vec!["build"];
        args.extend_from_slice(m.args);
        let mut env = vec![store_all];
        env.extend_from_slice(m.env);
        let rustc = match m.check.compiler {
            Compiler::Rustc => shim,
            Compiler::Other => &other,
            Compiler::EditsReportWhileCompiling => {
                let mut editing_env = env.clone();
                editing_env.push(("RUSTC", editing.to_str().unwrap()));
                let (_, records) = d.cachet(&args, &editing_env);
                let report = records
                    .iter()
                    .find(|r| r.krate.as_deref() == Some("report"))
                    .expect("report compiled");
                assert_eq!(
                    (report.outcome, report.reason.as_deref()),
                    (
                        Outcome::MissNotStored,
                        Some("input modified during compile")
                    ),
                    "changing {}",
                    m.name
                );
                let shown = d.program("target");
                assert!(
                    shown.contains("edit=edit 7") && shown.contains("extra=extra 3"),
                    "changing {}: the program shows what rustc compiled\n{shown}",
                    m.name
                );
                shim
            }
        };
        let rustc = ("RUSTC", rustc.to_str().unwrap());
        env.push(rustc);
        let (compiled, records) = d.cachet(&args, &env);
        d.plain(&args, &env);
        for krate in m.check.must_compile {
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
        report_outcomes.extend(outcomes_for(&records, "report"));
        let profile = profile_of(m.args);
        let cached = d.p.run_program("target", profile, "app");
        let plain = d.p.run_program("target-plain", profile, "app");
        assert_like_plain(m.name, &cached, &plain, m.expect);
    }
    // The setting at work: report missed again and again, and every result was stored.
    assert!(
        report_outcomes.len() > 5 && report_outcomes.iter().all(|o| *o == Outcome::Miss),
        "with CACHET_EDIT_STORE=all every miss is stored: {report_outcomes:?}"
    );

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

/// A rustc with the same `-vV` as the real one that compiles differently: every compile gets
/// `--cfg members_cfg` (queries are passed through unchanged, so cargo sees the same compiler).
fn other_rustc(dir: &Path, logging: &Path) -> PathBuf {
    write_script(
        &dir.join("rustc-with-cfg"),
        &format!(
            "#!/bin/sh\n\
             for a in \"$@\"; do case \"$a\" in -vV|-V|--version|--print*|-) exec {logging} \"$@\";; esac; done\n\
             exec {logging} \"$@\" --cfg members_cfg\n",
            logging = logging.display()
        ),
    )
}

/// A rustc that, the first time it compiles `report`, changes `"edit 7"` to `"edit 8"` in
/// report's source once rustc has read it (after the compile, before cachet stores).
fn rustc_editing_report(dir: &Path, logging: &Path, root: &Path) -> PathBuf {
    write_script(
        &dir.join("rustc-then-edit"),
        &format!(
            "#!/bin/sh\n{logging} \"$@\"\nstatus=$?\n\
             case \" $* \" in *\" --crate-name report \"*)\n\
               if [ ! -e {flag} ]; then touch {flag}; sed -i 's/edit 7/edit 8/' {src}; fi;;\n\
             esac\nexit $status\n",
            logging = logging.display(),
            flag = dir.join("edited").display(),
            src = root.join("report/src/lib.rs").display()
        ),
    )
}
