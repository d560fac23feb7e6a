//! Call reports for the server's dashboard, end to end: real cargo builds through the wrapper,
//! a real `cachet server`, and its JSON API as the witness of what arrived.

use std::fs;
use std::time::Duration;

use cachet_wrapper::journal::Outcome;
use cachet_wrapper::remote::{Remote, RemoteConfig};
use serde_json::Value;

use cachet_test_support::wait_for;

use crate::util::{cacheable, fixture, run_ok, Project, ServerProcess, FIXTURE_CRATES};

/// `GET path` on the server's API, as JSON.
pub(crate) fn api(url: &str, path: &str) -> Value {
    let remote = Remote::new(RemoteConfig {
        url: url.to_string(),
        token: None,
        ca_cert: None,
        namespace: "cachet".into(),
        timeout: Duration::from_secs(10),
        max_download: 1 << 20,
    })
    .unwrap();
    let (status, body) = remote.get_path(path).unwrap();
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// The calls the server holds for `krate`, as (client, outcome, cause) triples.
fn calls_of(url: &str, krate: &str) -> Vec<(String, String, Option<String>)> {
    let v = api(url, &format!("/_api/v1/crates/{krate}?since=1d"));
    v["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["client"].as_str().unwrap().to_string(),
                c["outcome"].as_str().unwrap().to_string(),
                c["cause"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// The server's rolled-up numbers of `krate`: (calls, hits_local, misses).
fn counts_of(url: &str, krate: &str) -> (u64, u64, u64) {
    let v = api(url, "/_api/v1/crates?since=1d");
    let row = v["crates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["crate"] == krate)
        .cloned()
        .unwrap_or_default();
    let n = |k: &str| row[k].as_u64().unwrap_or(0);
    (n("calls"), n("hits_local"), n("misses"))
}

/// `cachet flush` for the project's cache, with `env`.
pub(crate) fn flush(p: &Project, env: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(crate::util::cachet_bin());
    cmd.arg("flush").env("CACHET_DIR", &p.cache);
    cmd.envs(env.iter().map(|(k, v)| (*k, *v)));
    cmd
}

fn spool(p: &Project) -> std::path::PathBuf {
    cachet_wrapper::reports::spool_path(&p.cache)
}

/// Makes the records waiting in the spool `by` older, as if they had waited that long.
fn age_spool(p: &Project, by: Duration) {
    let text = fs::read_to_string(spool(p)).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        let t = v["time_ms"].as_u64().unwrap();
        v["time_ms"] = (t - by.as_millis() as u64).into();
        out.push_str(&format!("{v}\n"));
    }
    fs::write(spool(p), out).unwrap();
}

/// Adds a function named `name` to the fixture's `dep-lib/src/lib.rs`.
fn edit_dep_lib(p: &Project, name: &str) {
    let lib = p.root.join("dep-lib/src/lib.rs");
    let text = fs::read_to_string(&lib).unwrap();
    fs::write(&lib, format!("{text}\npub fn {name}() {{}}\n")).unwrap();
}

/// `cachet explain` of the project's last build.
fn explain(p: &Project) -> String {
    let mut cmd = std::process::Command::new(crate::util::cachet_bin());
    cmd.arg("explain").env("CACHET_DIR", &p.cache);
    String::from_utf8_lossy(&run_ok(cmd).stdout).into_owned()
}

#[test]
fn every_call_the_journal_records_reaches_the_dashboard_with_its_cause() {
    let server = ServerProcess::start(&["--storage", "ephemeral"]);
    let p = Project::copy_of(&fixture("soundness"));
    let env = [
        ("CACHET_SERVER", server.base_url()),
        ("CACHET_CLIENT_NAME", "alice"),
    ];
    // A cold build, then `cachet flush`: the server holds each cacheable call the journal
    // recorded, with the same outcome, and a first build's misses say so.
    p.cachet_cargo(&["build"], &env);
    let out = run_ok(flush(&p, &env));
    assert!(String::from_utf8_lossy(&out.stdout).contains("call reports"));
    let journal = p.journal();
    for krate in FIXTURE_CRATES {
        let of = |o: Option<Outcome>| {
            journal
                .iter()
                .filter(|r| r.krate.as_deref() == Some(krate) && o.is_none_or(|o| r.outcome == o))
                .count() as u64
        };
        assert!(of(None) > 0, "{krate} was not in the journal");
        assert_eq!(
            counts_of(server.base_url(), krate),
            (
                of(None),
                of(Some(Outcome::HitLocal)),
                of(Some(Outcome::Miss))
            ),
            "{krate}: (calls, local hits, misses) on the server and in the journal"
        );
        // Misses are kept in detail, with their cause: nothing was built here before.
        for (client, outcome, cause) in calls_of(server.base_url(), krate) {
            assert_eq!(client, "alice");
            if outcome == "miss" {
                assert_eq!(cause.as_deref(), Some("first-build"), "{krate}");
            }
        }
    }
    assert!(p.stats().reports_sent >= FIXTURE_CRATES.len() as u64);

    // Every crate hits the local cache: that build talks to no server, so once its records
    // have waited (aged here instead of slept), a hit starts a background flush that
    // delivers them without `cachet flush`.
    p.cachet_cargo(&["clean"], &[]);
    p.cachet_cargo(&["build"], &env);
    for r in cacheable(&p.journal()).iter().rev().take(3) {
        assert_eq!(r.outcome, Outcome::HitLocal, "{r:?}");
    }
    age_spool(&p, Duration::from_secs(60));
    p.cachet_cargo(&["clean"], &[]);
    p.cachet_cargo(&["build"], &env);
    wait_for(
        "the background flush to deliver the local hits",
        Duration::from_secs(30),
        || counts_of(server.base_url(), "dep_lib").1 >= 1,
    );

    // An edited source file: the crate's miss arrives with the cause "a source file changed".
    edit_dep_lib(&p, "added_for_the_dashboard");
    p.cachet_cargo(&["build"], &env);
    run_ok(flush(&p, &env));
    let v = api(server.base_url(), "/_api/v1/crates/dep_lib?since=1d");
    let edited = v["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["outcome"] == "miss" && c["cause"] == "source-file")
        .unwrap_or_else(|| panic!("no source-file miss for dep_lib: {v}"));
    assert_eq!(edited["cause_description"], "a source file changed");
    assert!(edited["compile_ms"].as_u64().is_some());
    // `cachet stats --server` prints the same overview, for people.
    let mut cmd = std::process::Command::new(crate::util::cachet_bin());
    cmd.args(["stats", "--server"]).env("CACHET_DIR", &p.cache);
    cmd.envs(env.iter().map(|(k, v)| (*k, *v)));
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for shown in [
        "Hit rate",
        "Time saved",
        "a source file changed",
        "dep_lib",
        "alice",
    ] {
        assert!(text.contains(shown), "missing {shown:?} in\n{text}");
    }
    assert!(!text.contains("hits_local"), "raw JSON keys in\n{text}");
    // Records carry no absolute path of this machine.
    let tmp = p.tmp.path().to_string_lossy().into_owned();
    assert!(!v.to_string().contains(&tmp), "{v}");
}

#[test]
fn an_unreachable_server_keeps_then_drops_and_counts_reports_and_reports_off_sends_nothing() {
    let p = Project::copy_of(&fixture("soundness"));
    // Nothing listens on this port.
    let dead = format!("http://127.0.0.1:{}", cachet_test_support::closed_port());
    let env = [("CACHET_SERVER", dead.as_str())];
    let out = p.cachet_cargo(&["build"], &env);
    let err = crate::util::stderr_of(&out);
    // The build succeeded (cachet_cargo checks) and said nothing about reports.
    assert!(!err.contains("report"), "{err}");
    let waiting = fs::read_to_string(spool(&p)).unwrap().lines().count();
    assert!(waiting >= FIXTURE_CRATES.len(), "{waiting} records spooled");
    // `cachet flush` cannot deliver them: it says so, fails, and keeps them.
    let out = flush(&p, &env).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("call reports not sent"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Records that waited past the limit are dropped, and counted, when a server answers.
    fs::rename(p.cache.join("reports/outbox.jsonl"), spool(&p)).unwrap();
    age_spool(&p, Duration::from_secs(8 * 24 * 3600));
    let server = ServerProcess::start(&["--storage", "ephemeral"]);
    let _ = fs::remove_file(p.cache.join("remote-down"));
    let live = [("CACHET_SERVER", server.base_url())];
    run_ok(flush(&p, &live));
    let stats = p.stats();
    assert_eq!(stats.reports_sent, 0);
    assert_eq!(
        stats.reports_dropped.get("older than 7 days").copied(),
        Some(waiting as u64),
        "{stats:?}"
    );
    assert_eq!(
        api(server.base_url(), "/_api/v1/summary?since=30d")["total"]["calls"],
        0
    );

    // CACHET_REPORTS=0: a build through a live server spools and sends nothing.
    let off = [
        ("CACHET_SERVER", server.base_url()),
        ("CACHET_REPORTS", "0"),
    ];
    p.cachet_cargo(&["clean"], &[]);
    p.cachet_cargo(&["build"], &off);
    run_ok(flush(&p, &off));
    assert!(!spool(&p).exists());
    assert_eq!(
        api(server.base_url(), "/_api/v1/summary?since=30d")["total"]["calls"],
        0
    );
}

/// A server that refuses the reports' token stops the sending at once, as an object request's
/// refusal does: a rejected token (401) trips the breaker and the records wait for a fixed
/// token; a token that may not report to the namespace (403) drops them, counted, and backs
/// off automatic sends. Before, each batch was sent and refused in turn.
#[test]
fn a_refused_token_stops_the_reports_like_any_auth_failure() {
    let p = Project::copy_of(&fixture("soundness"));
    // Records wait in the spool: the build's server is down.
    let dead = format!("http://127.0.0.1:{}", cachet_test_support::closed_port());
    p.cachet_cargo(&["build"], &[("CACHET_SERVER", dead.as_str())]);
    let waiting = fs::read_to_string(spool(&p)).unwrap().lines().count();
    assert!(waiting >= FIXTURE_CRATES.len(), "{waiting} records spooled");
    let server = ServerProcess::start(&[
        "--storage",
        "ephemeral",
        "--tokens",
        "writer-token read,write cachet; elsewhere-token read,write other",
    ]);
    let down = p.cache.join("remote-down");
    let _ = fs::remove_file(&down);

    // 401: nothing sent, nothing dropped, the breaker tripped, the records kept.
    let wrong = [
        ("CACHET_SERVER", server.base_url()),
        ("CACHET_TOKEN", "nope"),
    ];
    // Reports only: pending uploads would meet the same 401 and trip the breaker themselves.
    let reports_only = |env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(crate::util::cachet_bin());
        cmd.args(["flush", "--reports-only"])
            .env("CACHET_DIR", &p.cache);
        cmd.envs(env.iter().map(|(k, v)| (*k, *v)));
        cmd.output().unwrap()
    };
    let out = reports_only(&wrong);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("rejected the token (401)"), "{err}");
    assert!(err.contains("kept for the next try"), "{err}");
    assert!(down.exists(), "a 401 trips the breaker");
    let stats = p.stats();
    assert_eq!(stats.reports_sent, 0);
    assert!(stats.reports_dropped.is_empty(), "{stats:?}");
    let kept = fs::read_to_string(p.cache.join("reports/outbox.jsonl")).unwrap();
    assert_eq!(kept.lines().count(), waiting);

    // 403: the token may not report to this namespace: stop, drop and count, back off.
    let _ = fs::remove_file(&down);
    let elsewhere = [
        ("CACHET_SERVER", server.base_url()),
        ("CACHET_TOKEN", "elsewhere-token"),
    ];
    let out = reports_only(&elsewhere);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("no read permission on namespace cachet"),
        "{err}"
    );
    assert!(err.contains("dropped"), "{err}");
    let stats = p.stats();
    assert_eq!(stats.reports_sent, 0);
    assert_eq!(
        stats.reports_dropped.get("token may not report").copied(),
        Some(waiting as u64),
        "{stats:?}"
    );
    assert!(!p.cache.join("reports/outbox.jsonl").exists());
    assert!(p.cache.join("reports/refused").exists());
    // A read-only refusal of reports does not make object requests skip the server.
    assert!(!down.exists());

    // The right token delivers what is recorded from then on.
    let good = [
        ("CACHET_SERVER", server.base_url()),
        ("CACHET_TOKEN", "writer-token"),
    ];
    p.cachet_cargo(&["clean"], &[]);
    p.cachet_cargo(&["build"], &good);
    run_ok(flush(&p, &good));
    assert!(p.stats().reports_sent >= FIXTURE_CRATES.len() as u64);
}

/// A client that never stored a crate still says what changed when it misses it: bob's cache
/// is empty, his first build hits alice's entries on the server, then he edits a source file.
/// His miss is "a source file changed" on the dashboard and in `cachet explain`, not "first
/// build" (a hit leaves the key inputs of the entry it restored for the next miss to compare
/// with). In cargo's dev profile his second edit is compiled and not stored (the edit loop,
/// see edit_loop.rs): that miss names its cause too, beside its not-stored reason.
#[test]
fn misses_after_server_hits_and_misses_not_stored_name_what_changed() {
    let server = ServerProcess::start(&["--storage", "ephemeral"]);
    let env = |client| {
        [
            ("CACHET_SERVER", server.base_url()),
            ("CACHET_CLIENT_NAME", client),
            ("CARGO_INCREMENTAL", "1"),
        ]
    };
    let alice = Project::copy_of(&fixture("soundness"));
    alice.cachet_cargo(&["build"], &env("alice"));
    let bob = Project::copy_of(&fixture("soundness"));
    bob.cachet_cargo(&["build"], &env("bob"));
    let dep_lib = |p: &Project| -> Vec<Outcome> {
        let journal = p.journal();
        let of_dep_lib = journal
            .iter()
            .filter(|r| r.krate.as_deref() == Some("dep_lib"));
        of_dep_lib.map(|r| r.outcome).collect()
    };
    assert_eq!(dep_lib(&bob), [Outcome::HitRemote]);

    edit_dep_lib(&bob, "first_edit");
    bob.cachet_cargo(&["build"], &env("bob"));
    let text = explain(&bob);
    let line = text.lines().find(|l| l.contains("dep_lib"));
    assert!(
        line.is_some_and(|l| l.starts_with("miss") && l.contains("dep-lib/src/lib.rs changed")),
        "{text}"
    );
    edit_dep_lib(&bob, "second_edit");
    bob.cachet_cargo(&["build"], &env("bob"));
    assert_eq!(
        dep_lib(&bob),
        [Outcome::HitRemote, Outcome::Miss, Outcome::MissNotStored]
    );
    let text = explain(&bob);
    assert!(
        text.contains(cachet_wrapper::edit_loop::NOT_STORED.as_str())
            && text.contains("dep-lib/src/lib.rs changed"),
        "{text}"
    );

    run_ok(flush(&bob, &env("bob")));
    let v = api(server.base_url(), "/_api/v1/crates/dep_lib?since=1d");
    let bobs: Vec<&Value> = v["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["client"] == "bob")
        .collect();
    let of = |outcome: &str| {
        bobs.iter()
            .find(|c| c["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {outcome} of bob's dep_lib: {v}"))
    };
    for outcome in ["miss", "miss-not-stored"] {
        assert_eq!(of(outcome)["cause"], "source-file", "{v}");
        assert_eq!(of(outcome)["cause_description"], "a source file changed");
    }
    assert_eq!(
        of("miss-not-stored")["reason"],
        cachet_wrapper::edit_loop::NOT_STORED.as_str()
    );
}

/// A server over its report rate answers 429 with Retry-After: the wrapper keeps every record
/// (none dropped), does not ask again before that time, and delivers them once it has passed.
/// (Before, a 429 fell under "batch rejected by the server": the records were dropped.)
#[test]
fn a_server_over_its_report_rate_keeps_the_records_until_it_lets_them_in() {
    // The server takes 100 records/s from everyone together, 500 at once.
    let server = ServerProcess::start(&["--storage", "ephemeral", "--report-ceiling", "100"]);
    let p = Project::copy_of(&fixture("soundness"));
    let env = [
        ("CACHET_SERVER", server.base_url()),
        ("CACHET_CLIENT_NAME", "bob"),
    ];
    // The build's records stay in the spool: the test holds the send lock, so no call of the
    // build (nor a background flush) sends them.
    let rdir = cachet_wrapper::reports::dir(&p.cache);
    fs::create_dir_all(&rdir).unwrap();
    let lock = fs::File::create(rdir.join("send.lock")).unwrap();
    lock.lock().unwrap();
    p.cachet_cargo(&["build"], &env);
    drop(lock);
    let waiting = fs::read_to_string(spool(&p)).unwrap().lines().count();
    assert!(waiting >= FIXTURE_CRATES.len(), "{waiting} records waiting");

    // Another client declares 1 record and sends 1,500: let in (the bucket was full), it
    // leaves the server's bucket 1,000 records short, 10 s at 100/s.
    let remote = Remote::new(RemoteConfig {
        url: server.base_url().to_string(),
        token: None,
        ca_cert: None,
        namespace: "other".into(),
        timeout: Duration::from_secs(10),
        max_download: 1 << 20,
    })
    .unwrap();
    let line = r#"{"v":1,"time_ms":0,"client":"flood","build":"b","krate":"x","kind":"lib","outcome":"hit-local","compile_ms":0,"restore_ms":1,"stored_compile_ms":5,"bytes":1}"#;
    let body = format!("{line}\n").repeat(1500);
    let headers = [("x-cachet-records", "1"), ("x-cachet-client", "flood")];
    let answer = remote
        .post_path("/_reports/other", &headers, body.as_bytes())
        .unwrap();
    assert_eq!(answer.status, 204);

    // `cachet flush` with 1 s to spare: the server says 429, wait ~10 s; the records are kept.
    let short = [env[0], env[1], ("CACHET_SERVER_TIMEOUT", "1s")];
    let out = flush(&p, &short).arg("--reports-only").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!("{waiting} still waiting")) && text.contains("report rate"),
        "{text}"
    );
    assert_eq!(counts_of(server.base_url(), "dep_lib").0, 0);
    assert!(p.stats().reports_dropped.is_empty(), "{:?}", p.stats());

    // A later `cachet flush` with time to wait delivers every record, asking once more only.
    let out = run_ok(flush(&p, &env).arg("--reports-only"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("sent {waiting} call reports")),
        "{text}"
    );
    let journal = p.journal();
    for krate in FIXTURE_CRATES {
        let calls = journal
            .iter()
            .filter(|r| r.krate.as_deref() == Some(krate))
            .count() as u64;
        assert_eq!(counts_of(server.base_url(), krate).0, calls, "{krate}");
    }
    assert!(p.stats().reports_dropped.is_empty(), "{:?}", p.stats());
    let (_, metrics) = remote.get_path("/metrics").unwrap();
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("cachet_report_requests_refused_total{reason=\"server_records\"} 1\n"),
        "{metrics}"
    );
}
