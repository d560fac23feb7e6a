//! Texts a user reads (`--help`, `stats`, `status`), as insta snapshots: a change of wording,
//! alignment or counting shows up as a reviewed diff (`cargo insta review`), not as a
//! `contains` that still passes. Paths, times, sizes and the version are filtered out.
//!
//! None of these builds a cargo project: one rustc and one C compiler call each way (good and
//! broken) are enough to exercise every counter the issue found wrong, in about a second.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use cachet_wrapper::journal::{self, Outcome};

use crate::util::{cachet_bin, real_rustc, stderr_of};

/// Snapshot settings: the filters that make the text the same on every machine and run.
fn settings(dir: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("snapshots");
    s.set_prepend_module_to_snapshot(false);
    s.add_filter(&regex_escape(&dir.display().to_string()), "[DIR]");
    s.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]");
    s.add_filter(r"\d+(\.\d+)? (B|KiB|MiB|GiB)\b", "[SIZE]");
    s.add_filter(r"\d+\.\d s\b", "[SECS]");
    s.add_filter(r"\d+\.\d\d ms\b", "[MS]");
    s.add_filter(r"cachet \d+\.\d+\.\d+", "cachet [VERSION]");
    s
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// `cachet ARGS` with the cache in `cache` and nothing of the caller's CACHET_* settings.
fn cachet(cache: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(cachet_bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("CACHET_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .env("CACHET_DIR", cache)
        .envs(env.iter().copied());
    cmd.output().unwrap()
}

#[test]
fn help_lists_every_storage_kind_and_variable() {
    let tmp = tempfile::tempdir().unwrap();
    let out = cachet(tmp.path(), &["--help"], &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    // What `--storage` accepts (the issue: help said "dir:PATH or ephemeral" only).
    for kind in ["dir:PATH", "ephemeral", "redis://", "s3://", "LOCAL,SHARED"] {
        assert!(text.contains(kind), "{kind} missing from --help:\n{text}");
    }
    settings(tmp.path()).bind(|| insta::assert_snapshot!("help", text));
}

/// The counters the issue found wrong: a failed compile (a build script's probe) was also a
/// miss that the journal did not show, a server that was never reached counted "misses on the
/// server", and a long reason ran into its count (`...recent failure5`).
#[test]
fn stats_agree_with_the_journal_when_compiles_fail_and_the_server_is_down() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let work = tmp.path().join("work");
    fs::create_dir_all(work.join("out")).unwrap();
    fs::write(work.join("good.rs"), "pub fn f() -> u32 { 1 }\n").unwrap();
    fs::write(work.join("bad.rs"), "pub fn f() -> u32 { nope }\n").unwrap();
    fs::write(work.join("good.c"), "int good(void) { return 1; }\n").unwrap();
    fs::write(work.join("bad.c"), "int bad(void) { return nope; }\n").unwrap();
    // Nothing listens on port 1 (and only root could bind it): the server is unreachable.
    let env = [("CACHET_SERVER", "http://127.0.0.1:1")];
    let rustc = real_rustc();
    let rustc = rustc.to_str().unwrap();
    let calls: [&[&str]; 4] = [
        &[
            rustc,
            "--crate-name",
            "good",
            "--edition=2021",
            "--crate-type",
            "lib",
        ],
        &[
            rustc,
            "--crate-name",
            "bad",
            "--edition=2021",
            "--crate-type",
            "lib",
        ],
        &["cc", "-c", "good.c", "-o", "good.o"],
        &["cc", "-c", "bad.c", "-o", "bad.o"],
    ];
    for (i, call) in calls.iter().enumerate() {
        let mut args = call.to_vec();
        if i < 2 {
            let source = if i == 0 { "good.rs" } else { "bad.rs" };
            args.extend(["--emit=dep-info,metadata,link", "--out-dir", "out", source]);
        }
        let out = Command::new(cachet_bin())
            .args(&args)
            .current_dir(&work)
            .env("CACHET_DIR", &cache)
            .envs(env)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            out.status.success(),
            i % 2 == 0,
            "{args:?}: {}",
            stderr_of(&out)
        );
    }

    let records = journal::read(&cache);
    let count = |f: fn(Outcome) -> bool| records.iter().filter(|r| f(r.outcome)).count() as u64;
    let out = cachet(&cache, &["stats", "--json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stat = |k: &str| v["stats"][k].as_u64().unwrap();
    assert_eq!(
        stat("misses"),
        count(|o| matches!(o, Outcome::Miss | Outcome::MissNotStored)),
        "{v}"
    );
    assert_eq!(stat("misses"), 2, "{v}");
    assert_eq!(
        stat("compile_failures"),
        count(|o| o == Outcome::CompileFailed)
    );
    assert_eq!(stat("compile_failures"), 2, "{v}");
    assert_eq!(
        stat("cacheable_calls"),
        stat("hits_local") + stat("hits_remote") + stat("misses") + stat("compile_failures")
    );
    assert_eq!(
        stat("misses_remote"),
        0,
        "the server was never reached: {v}"
    );

    let out = cachet(&cache, &["stats"], &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    settings(&cache).bind(|| insta::assert_snapshot!("stats", text));
}

/// `cachet status` warns like the wrapper does (`warning: cachet: ...`), and says why the
/// server is unreachable.
#[test]
fn status_warns_like_the_wrapper_and_names_an_unreachable_server() {
    let tmp = tempfile::tempdir().unwrap();
    let out = cachet(
        tmp.path(),
        &["status"],
        &[
            ("CACHET_SERVER", "http://127.0.0.1:1"),
            ("CACHET_NO_SUCH_SETTING", "1"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "unreachable server: exit 1");
    let stderr = stderr_of(&out);
    assert!(stderr.starts_with("warning: cachet: "), "{stderr}");
    let text = format!(
        "stderr:\n{stderr}\nstdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    settings(tmp.path()).bind(|| insta::assert_snapshot!("status", text));
}

/// A closed stdout ends a command quietly with exit 0 (it used to panic and exit 101).
#[test]
fn a_closed_stdout_ends_every_printing_command_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["stats"][..],
        &["stats", "--json"],
        &["status"],
        &["--help"],
        &["server", "--print-default-config"],
        &["stats", "--help"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = Command::new(cachet_bin());
        for (k, _) in std::env::vars() {
            if k.starts_with("CACHET_") {
                cmd.env_remove(k);
            }
        }
        let out = cmd
            .args(args)
            .env("CACHET_DIR", tmp.path())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = stderr_of(&out);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
}

/// `cachet server --help` and `cachet server prune --help`: every flag, its variable and its
/// default as an operator reads them. The flags are declared in the binary and the defaults
/// come from the server library's one `Defaults`: a change on either side shows up here.
#[test]
fn server_help_names_every_flag_variable_and_default() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, args) in [
        ("server-help", &["server", "--help"][..]),
        ("server-prune-help", &["server", "prune", "--help"][..]),
    ] {
        let out = cachet(tmp.path(), args, &[]);
        assert!(out.status.success(), "{}", stderr_of(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        settings(tmp.path()).bind(|| insta::assert_snapshot!(name, text));
    }
}

/// The server is its own executable, `cachet-server`, installed beside `cachet`:
/// `cachet server ARGS` runs it, and both take the same flags. `cachet-server --help` shows the
/// options of `cachet server --help`, and a bad setting is refused by the server through
/// either name. Without `cachet-server` beside it or on PATH, `cachet server` says what is
/// missing and where it is installed from.
#[test]
fn cachet_server_is_the_server_binary_beside_cachet() {
    let tmp = tempfile::tempdir().unwrap();
    let server_bin = cachet_bin().with_file_name("cachet-server");
    // `cachet-server --version` is the one option of its own.
    let options = |text: &str| -> Vec<String> {
        let start = text.find("Options:").expect("an options section");
        let lines = text[start..].lines().filter(|l| !l.contains("--version"));
        lines.map(String::from).collect()
    };
    let via_cachet = cachet(tmp.path(), &["server", "--help"], &[]);
    let direct = Command::new(&server_bin).arg("--help").output().unwrap();
    assert!(direct.status.success(), "{}", stderr_of(&direct));
    let (via_cachet, direct) = (
        String::from_utf8(via_cachet.stdout).unwrap(),
        String::from_utf8(direct.stdout).unwrap(),
    );
    assert_eq!(options(&via_cachet), options(&direct));
    assert!(
        direct.contains("Usage: cachet-server [OPTIONS]"),
        "{direct}"
    );

    // A bad setting is refused by the server binary, whichever name started it.
    let config = tmp.path().join("bad.toml");
    fs::write(&config, "max_size = \"lots\"\n").unwrap();
    for out in [
        cachet(
            tmp.path(),
            &[
                "server",
                "--config",
                config.to_str().unwrap(),
                "--check-config",
            ],
            &[],
        ),
        Command::new(&server_bin)
            .args(["--config", config.to_str().unwrap(), "--check-config"])
            .output()
            .unwrap(),
    ] {
        assert!(!out.status.success());
        assert!(stderr_of(&out).contains("lots"), "{}", stderr_of(&out));
    }

    // A `cachet` copied alone, with no `cachet-server` on PATH.
    let alone = tmp.path().join("alone");
    fs::create_dir(&alone).unwrap();
    fs::copy(cachet_bin(), alone.join("cachet")).unwrap();
    let out = Command::new(alone.join("cachet"))
        .args(["server", "--check-config"])
        .env("PATH", &alone)
        .env("CACHET_DIR", tmp.path().join("cache"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("cannot run cachet-server")
            && err.contains("cargo install --path crates/cachet"),
        "{err}"
    );
}
