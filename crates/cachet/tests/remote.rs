//! The shared server as the wrapper's second level: remote hits for a fresh client, a dead or
//! silent server that costs one wait per build, tokens, TLS, and `cachet status`.

use std::fs;

use cachet_test_support::closed_port;
use cachet_wrapper::journal::Outcome;

use crate::util::{
    cacheable, fixture, outcomes_for, real_rustc, stderr_of, write_script, Project, ServerProcess,
    FIXTURE_CRATES,
};

fn server_env(url: &str) -> Vec<(&str, &str)> {
    vec![("CACHET_SERVER", url)]
}

/// Asserts that `p`'s build uploaded an entry and a manifest per crate of the fixture.
fn assert_uploaded_every_crate(p: &Project) {
    let stats = p.stats();
    assert_eq!(
        stats.uploads,
        2 * FIXTURE_CRATES.len() as u64,
        "an entry and a manifest per crate: {stats:?}"
    );
}

#[test]
fn a_fresh_client_gets_remote_hits_and_fills_its_local_cache() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&["--storage", &format!("dir:{}", dir.path().display())]);
    let a = Project::copy_of(&fixture("soundness"));
    a.cachet_cargo(&["build"], &server_env(server.base_url()));
    let output = a.run_program("target", "debug", "app");
    assert_uploaded_every_crate(&a);

    let b = a.clean_client("cache-b");
    b.cachet_cargo(&["build"], &server_env(server.base_url()));
    for krate in FIXTURE_CRATES {
        assert_eq!(
            outcomes_for(&b.journal(), krate),
            vec![Outcome::HitRemote],
            "{krate}"
        );
    }
    assert_eq!(b.run_program("target", "debug", "app"), output);

    // The remote hits filled b's local cache: with the server gone, b still hits.
    drop(server);
    let records = b.rebuild_after_clean(&[]);
    assert_eq!(outcomes_for(&records, "core_lib"), vec![Outcome::HitLocal]);
}

#[test]
fn a_killed_server_never_fails_the_build_and_keeps_complete_entries() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!("dir:{}", dir.path().display());
    let mut server = ServerProcess::start(&["--storage", &storage]);
    let a = Project::copy_of(&fixture("soundness"));
    // A rustc shim that kills the server (once) just before core_lib compiles, after dep_lib
    // was stored and uploaded.
    let real = real_rustc();
    let flag = a.tmp.path().join("killed");
    let shim = a.tmp.path().join("rustc-kill-server");
    write_script(
        &shim,
        &format!(
            "#!/bin/sh\ncase \" $* \" in *\" --crate-name core_lib \"*)\n\
             if [ ! -e {flag} ]; then touch {flag}; kill -9 {pid}; fi;;\nesac\nexec {real} \"$@\"\n",
            flag = flag.display(),
            pid = server.pid(),
            real = real.display()
        ),
    );
    let env = [
        ("CACHET_SERVER", server.base_url()),
        ("RUSTC", shim.to_str().unwrap()),
    ];
    let out = a.cachet_cargo(&["build"], &env);
    assert!(flag.exists());
    a.assert_app_prints("lib=core-lib v1");
    let err = stderr_of(&out);
    assert_eq!(
        err.matches("warning: cachet: cannot reach the cache server")
            .count(),
        1,
        "{err}"
    );
    assert!(a.stats().upload_failures >= 1, "{:?}", a.stats());

    // Restarted on the same storage: dep_lib's entry is there and whole; core_lib's upload
    // is pending and `cachet flush` delivers it.
    server = server.restart();
    let url = server.base_url().to_string();
    let flush = {
        let mut cmd = std::process::Command::new(crate::util::cachet_bin());
        cmd.arg("flush")
            .env("CACHET_DIR", &a.cache)
            .env("CACHET_SERVER", &url);
        cmd.output().unwrap()
    };
    assert!(
        flush.status.success(),
        "{}",
        String::from_utf8_lossy(&flush.stdout)
    );
    let b = a.clean_client("cache-b");
    b.cachet_cargo(
        &["build"],
        &[
            ("CACHET_SERVER", url.as_str()),
            ("RUSTC", shim.to_str().unwrap()),
        ],
    );
    for krate in ["core_lib", "dep_lib"] {
        assert_eq!(
            outcomes_for(&b.journal(), krate),
            vec![Outcome::HitRemote],
            "{krate}"
        );
    }
    b.assert_app_prints("lib=core-lib v1");
}

/// Counts of the breaker's work in a client's statistics.
fn waits_and_skips(p: &Project) -> (u64, u64) {
    let s = p.stats();
    let waited = s.errors.get("server unreachable").copied().unwrap_or(0);
    let skipped = s
        .errors
        .get("server skipped after a recent failure")
        .copied()
        .unwrap_or(0);
    (waited, skipped)
}

#[test]
fn a_server_that_refuses_connections_costs_one_attempt_per_build() {
    let port = closed_port();
    let p = Project::copy_of(&fixture("soundness"));
    let url = format!("http://127.0.0.1:{port}");
    let out = p.cachet_cargo(&["build"], &server_env(&url));
    p.assert_app_prints("lib=core-lib v1");
    let (waited, skipped) = waits_and_skips(&p);
    assert_eq!(waited, 1, "only the first call may try the dead server");
    assert!(skipped >= 1, "later calls skip it");
    let err = stderr_of(&out);
    assert_eq!(
        err.matches("cannot reach the cache server").count(),
        1,
        "{err}"
    );
    // Results were kept locally and queued for upload.
    assert_eq!(p.stats().entries_written, FIXTURE_CRATES.len() as u64);
    let status = std::process::Command::new(crate::util::cachet_bin())
        .arg("status")
        .env("CACHET_DIR", &p.cache)
        .env("CACHET_SERVER", &url)
        .output()
        .unwrap();
    assert!(
        !status.status.success(),
        "status must fail when the server is down"
    );
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("reachable") && text.contains("no:"), "{text}");
    assert!(
        text.contains("Pending uploads") && !text.contains("Pending uploads     0"),
        "{text}"
    );
}

#[test]
fn a_server_that_never_answers_costs_one_wait_per_build() {
    // Accepts connections and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
            if held.len() > 64 {
                break;
            }
        }
    });
    let p = Project::copy_of(&fixture("soundness"));
    let out = p.cachet_cargo(&["build"], &server_env(&format!("http://127.0.0.1:{port}")));
    p.assert_app_prints("lib=core-lib v1");
    let (waited, skipped) = waits_and_skips(&p);
    assert_eq!(
        waited, 1,
        "only the first call may wait for the silent server"
    );
    assert!(skipped >= 1);
    assert_eq!(
        stderr_of(&out)
            .matches("cannot reach the cache server")
            .count(),
        1
    );
}

#[test]
fn tokens_wrong_read_only_and_write() {
    let server = ServerProcess::start(&[
        "--storage",
        "ephemeral",
        "--tokens",
        "reader-token read cachet; writer-token read,write cachet",
    ]);
    let a = Project::copy_of(&fixture("soundness"));

    // A wrong token: the build succeeds on local compiles, with one warning.
    let wrong = [
        ("CACHET_SERVER", server.base_url()),
        ("CACHET_TOKEN", "nope"),
    ];
    let out = a.cachet_cargo(&["build"], &wrong);
    let err = stderr_of(&out);
    assert_eq!(err.matches("rejected the token (401)").count(), 1, "{err}");
    assert_eq!(a.stats().uploads, 0);

    // A writer fills the server.
    let w = a.clean_client("cache-writer");
    w.cachet_cargo(
        &["build"],
        &[
            ("CACHET_SERVER", server.base_url()),
            ("CACHET_TOKEN", "writer-token"),
        ],
    );
    assert_uploaded_every_crate(&w);

    // A reader gets hits, and cannot upload what it compiles (one warning, build succeeds).
    let r = a.client("cache-reader");
    let reader = [
        ("CACHET_SERVER", server.base_url()),
        ("CACHET_TOKEN", "reader-token"),
    ];
    r.cachet_cargo(&["clean"], &[]);
    r.cachet_cargo(&["build"], &reader);
    assert_eq!(
        outcomes_for(&r.journal(), "core_lib"),
        vec![Outcome::HitRemote]
    );
    fs::write(
        a.root.join("core-lib/src/lib.rs"),
        fs::read_to_string(a.root.join("core-lib/src/lib.rs"))
            .unwrap()
            .replace("core-lib v1", "core-lib v9"),
    )
    .unwrap();
    let out = r.cachet_cargo(&["build"], &reader);
    r.assert_app_prints("lib=core-lib v9");
    let err = stderr_of(&out);
    assert_eq!(err.matches("no write permission").count(), 1, "{err}");

    // The reader's result never reached the server: a fresh writer misses it.
    let w2 = a.clean_client("cache-writer-2");
    w2.cachet_cargo(
        &["build"],
        &[
            ("CACHET_SERVER", server.base_url()),
            ("CACHET_TOKEN", "writer-token"),
        ],
    );
    assert_eq!(outcomes_for(&w2.journal(), "core_lib"), vec![Outcome::Miss]);
    assert_eq!(
        outcomes_for(&w2.journal(), "dep_lib"),
        vec![Outcome::HitRemote]
    );

    // `cachet status` shows what each token may do.
    let status = |token: &str| {
        let out = std::process::Command::new(crate::util::cachet_bin())
            .args(["status", "--json"])
            .env("CACHET_DIR", &a.cache)
            .env("CACHET_SERVER", server.base_url())
            .env("CACHET_TOKEN", token)
            .output()
            .unwrap();
        (
            out.status.success(),
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        )
    };
    let (ok, v) = status("reader-token");
    assert!(ok);
    assert_eq!(v["server"]["scopes"], serde_json::json!(["read"]));
    assert_eq!(v["server"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["server"]["round_trip_ms"].as_f64().unwrap() >= 0.0);
    // The dashboard's address, to open in a browser.
    assert_eq!(
        v["server"]["dashboard"],
        format!("{}/ui", server.base_url().trim_end_matches('/'))
    );
    assert!(!status("nope").0);
}

#[test]
fn tls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let tls = cachet_test_support::issue_cert(dir.path(), "server");
    let (cert, key, ca_pem) = (tls.cert, tls.key, tls.ca_pem);
    let server = ServerProcess::start(&[
        "--storage",
        "ephemeral",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(server.base_url().starts_with("https://"));
    let env = [
        ("CACHET_SERVER", server.base_url()),
        ("CACHET_CA_CERT", ca_pem.to_str().unwrap()),
    ];
    let a = Project::copy_of(&fixture("soundness"));
    a.cachet_cargo(&["build"], &env);
    assert_uploaded_every_crate(&a);
    let b = a.clean_client("cache-b");
    b.cachet_cargo(&["build"], &env);
    assert_eq!(
        outcomes_for(&b.journal(), "core_lib"),
        vec![Outcome::HitRemote]
    );

    // Without the CA the server is not trusted: the build still succeeds, locally.
    let c = a.clean_client("cache-c");
    let out = c.cachet_cargo(&["build"], &[("CACHET_SERVER", server.base_url())]);
    assert_eq!(
        stderr_of(&out)
            .matches("cannot reach the cache server")
            .count(),
        1
    );
    assert!(cacheable(&c.journal())
        .iter()
        .all(|r| r.outcome != Outcome::HitRemote));
}
