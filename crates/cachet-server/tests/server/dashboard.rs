//! The dashboard's server side: call reports in, the JSON API out, token scopes, a bounded
//! history that survives a restart, and what the server itself sees of unmodified clients.
//! Data arrives as real `CallReport` batches POSTed to a real server.

use cachet_core::report::{reports_path, CallKind, CallReport, MissCause, Outcome, REPORT_VERSION};
use serde_json::Value;

use crate::util::{ephemeral, in_dir, send, start, with_tokens};

pub fn report(krate: &str, client: &str, outcome: Outcome, cause: Option<MissCause>) -> CallReport {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    CallReport {
        v: REPORT_VERSION,
        time_ms: now,
        client: client.into(),
        build: "build-1".into(),
        krate: krate.into(),
        version: Some("1.0.0".into()),
        kind: CallKind::Lib,
        outcome,
        reason: (outcome == Outcome::PassThrough).then(|| "crate-type bin".to_string()),
        cause,
        compile_ms: if outcome.is_hit() { 0 } else { 2000 },
        restore_ms: if outcome.is_hit() { 50 } else { 0 },
        stored_compile_ms: if outcome.is_hit() { 1500 } else { 0 },
        bytes: 1000,
    }
}

pub fn batch(reports: &[CallReport]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in reports {
        out.extend(serde_json::to_vec(r).unwrap());
        out.push(b'\n');
    }
    out
}

pub fn post(base: &str, ns: &str, body: &[u8], auth: Option<&str>) -> crate::util::Resp {
    send(
        "POST",
        &format!("{base}{}", reports_path(ns)),
        Some(body),
        auth,
    )
}

/// What an unmodified sccache client does through the WebDAV namespace `sccache`: one PUT,
/// one GET that hits and one that misses.
pub fn act_as_sccache(server: &crate::util::TestServer) {
    assert_eq!(
        send("PUT", &server.url("/sccache/a/b"), Some(b"x"), None).status,
        201
    );
    assert_eq!(
        send("GET", &server.url("/sccache/a/b"), None, None).status,
        200
    );
    assert_eq!(
        send("GET", &server.url("/sccache/a/c"), None, None).status,
        404
    );
}

/// Asserts the numbers `expected` holds under their names in `v`.
pub fn assert_numbers(v: &Value, expected: &[(&str, u64)]) {
    for (name, n) in expected {
        assert_eq!(v[name], *n, "{name} in {v}");
    }
}

pub fn api(base: &str, path: &str, auth: Option<&str>) -> (u16, Value) {
    let r = send("GET", &format!("{base}/_api/v1/{path}"), None, auth);
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

#[test]
fn reports_add_up_in_the_summary_and_bad_lines_are_skipped() {
    let server = start(ephemeral());
    let base = server.url("");
    let mut body = batch(&[
        report("serde", "alice", Outcome::HitRemote, None),
        report("serde", "bob", Outcome::HitLocal, None),
        report("app", "bob", Outcome::Miss, Some(MissCause::SourceFile)),
        report("build-script-build", "bob", Outcome::PassThrough, None),
    ]);
    body.extend(b"not json\n{\"v\":99}\n");
    let r = post(&base, "team", &body, None);
    assert_eq!(r.status, 204);
    assert_eq!(r.headers["x-cachet-accepted"], "4");
    assert_eq!(r.headers["x-cachet-skipped"], "2");

    let (status, s) = api(&base, "summary", None);
    assert_eq!(status, 200);
    let t = &s["namespaces"][0];
    assert_eq!(t["namespace"], "team");
    assert_numbers(
        t,
        &[
            ("calls", 4),
            ("hits_remote", 1),
            ("hits_local", 1),
            ("misses", 1),
            ("pass_through", 1),
            ("clients", 2),
        ],
    );
    // Two hits of 1500 ms stored compile time, 50 ms to restore each.
    assert_eq!(t["saved_ms"], 2900);
    assert_eq!(t["lost_ms"], 2000);
    assert_eq!(t["hit_rate"].as_f64(), Some(0.6667));
    assert_eq!(t["causes"][0]["cause"], "source-file");
    assert_eq!(t["causes"][0]["description"], "a source file changed");
    assert_eq!(t["pass_through_reasons"][0]["reason"], "crate-type bin");
    assert_eq!(s["total"]["calls"], 4);
    assert_eq!(t["top_crates"][0]["krate"], "app");
    assert_eq!(t["top_crates"][0]["lost_ms"], 2000);
    assert_eq!(t["top_crates"][0]["causes"][0]["cause"], "source-file");
    assert_eq!(t["per_client"][0]["client"], "bob");
    assert_eq!(t["per_client"][0]["calls"], 3);
    assert!(t["per_client"][0]["last_ms"].as_u64().unwrap() > 0);
    assert_eq!(s["total"]["top_crates"][0]["krate"], "app");
    assert_eq!(s["history"]["skipped"], 2);

    let (_, crates) = api(&base, "crates", None);
    assert_eq!(crates["crates"][0]["crate"], "app", "most time lost first");
    let (_, one) = api(&base, "crates/app", None);
    assert_eq!(one["calls"][0]["cause"], "source-file");
    assert_eq!(one["calls"][0]["client"], "bob");
    let (_, clients) = api(&base, "clients", None);
    assert_eq!(clients["clients"][0]["client"], "bob");
    assert_eq!(clients["clients"][0]["calls"], 3);

    // Over the batch limit: 413, nothing counted.
    let big = vec![b' '; cachet_core::report::MAX_BATCH_BYTES + 1];
    assert_eq!(post(&base, "team", &big, None).status, 413);
    // Reserved and invalid namespaces are refused.
    assert_eq!(post(&base, "_x", b"", None).status, 400);
}

#[test]
fn the_server_counts_object_gets_of_unmodified_clients() {
    let server = start(ephemeral());
    let base = server.url("");
    act_as_sccache(&server);
    let (_, s) = api(&base, "summary", None);
    let ns = &s["namespaces"][0];
    assert_eq!(ns["namespace"], "sccache");
    assert_eq!(ns["server"]["hits"], 1);
    assert_eq!(ns["server"]["misses"], 1);
    assert_eq!(ns["calls"], 0);
}

#[test]
fn a_read_token_sees_only_its_namespaces() {
    let server = start(with_tokens(
        "team-a-token read team-a\nteam-b-token read,write team-b\nadmin-token admin *",
    ));
    let base = server.url("");
    let a = Some("Bearer team-a-token");
    let b = Some("Bearer team-b-token");
    let admin = Some("Bearer admin-token");
    let ra = batch(&[report(
        "crate-a",
        "client-a",
        Outcome::Miss,
        Some(MissCause::Argument),
    )]);
    let rb = batch(&[report(
        "crate-b",
        "client-b",
        Outcome::Miss,
        Some(MissCause::Argument),
    )]);
    assert_eq!(post(&base, "team-a", &ra, None).status, 401);
    assert_eq!(post(&base, "team-b", &ra, a).status, 403);
    assert_eq!(post(&base, "team-a", &ra, a).status, 204);
    assert_eq!(post(&base, "team-b", &rb, b).status, 204);

    assert_eq!(api(&base, "summary", None).0, 401);
    assert_eq!(api(&base, "summary", Some("Bearer wrong")).0, 401);
    let (status, crates) = api(&base, "crates", a);
    assert_eq!(status, 200);
    let text = crates.to_string();
    assert!(
        text.contains("crate-a") && !text.contains("crate-b"),
        "{text}"
    );
    let (_, clients) = api(&base, "clients", a);
    let text = clients.to_string();
    assert!(
        text.contains("client-a") && !text.contains("client-b"),
        "{text}"
    );
    assert_eq!(api(&base, "crates?namespace=team-b", a).0, 403);
    assert_eq!(
        api(&base, "crates/crate-b", a).1["calls"],
        Value::Array(vec![])
    );
    let (_, all) = api(&base, "summary", admin);
    assert_eq!(all["total"]["calls"], 2);
    assert_eq!(all["namespaces"].as_array().unwrap().len(), 2);
}

#[test]
fn a_flood_of_records_stays_within_the_cap_and_the_history_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // What the history holds is tested here, not the ingestion rates (report_limits.rs).
    let mut config = in_dir(dir.path());
    config.report_rates = cachet_server::report_limit::Rates {
        client_records: 1_000_000,
        client_requests: 1_000,
        server_records: 1_000_000,
    };
    let server = start(config);
    let base = server.url("");
    let cap = cachet_server::history::Limits::default().max_records;
    // A client in a loop: more misses than the cap, each of a made-up crate.
    let mut sent = 0;
    while sent < cap + cap / 4 {
        let reports: Vec<_> = (0..2500)
            .map(|i| {
                report(
                    &format!("c{}", sent + i),
                    "looper",
                    Outcome::Miss,
                    Some(MissCause::Other),
                )
            })
            .collect();
        let r = post(&base, "flood", &batch(&reports), None);
        assert_eq!(r.status, 204);
        sent += reports.len();
    }
    let (_, s) = api(&base, "summary", None);
    assert_eq!(s["total"]["calls"], sent as u64, "every call is counted");
    assert_eq!(s["history"]["records"], cap as u64, "detail is capped");
    let (_, crates) = api(&base, "crates", None);
    let names = crates["crates"].as_array().unwrap().len();
    let max_names = cachet_server::history::Limits::default().max_names;
    assert!(names <= max_names + 1, "{names} crate rows");
    server.stop();

    let file = dir.path().join(cachet_server::history::FILE_NAME);
    let size = std::fs::metadata(&file)
        .expect("history saved at shutdown")
        .len();
    assert!(size < 16 << 20, "history file of {size} bytes");
    let server = start(in_dir(dir.path()));
    let (_, again) = api(&server.url(""), "summary", None);
    assert_eq!(again["total"]["calls"], sent as u64);
    assert_eq!(again["history"]["records"], cap as u64);
}

#[test]
fn evictions_by_the_disk_store_are_counted_with_bytes_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = in_dir(dir.path());
    config.max_size = 10_000;
    let server = start(config);
    let base = server.url("");
    // Five objects of 4000 bytes under a 10,000-byte limit: three are evicted.
    for i in 0..5 {
        let r = send(
            "PUT",
            &server.url(&format!("/cachet/k{i}")),
            Some(&vec![b'x'; 4000]),
            None,
        );
        assert_eq!(r.status, 201);
    }
    let (_, e) = api(&base, "evictions", None);
    assert_eq!(e["count"], 3, "{e}");
    assert_eq!(e["bytes"], 12_000);
    assert!(e["mean_age_ms"].is_u64());
    assert!(e["seen"].as_str().unwrap().contains("not seen"));
    let (_, s) = api(&base, "storage", None);
    assert_eq!(s["evictions"]["count"], 3);
}

/// Signing in and out: the cookie is `HttpOnly; SameSite=Strict`, `Secure` only when the server
/// serves TLS (a browser then never sends it over plain HTTP), and signing out clears it.
#[test]
fn sign_in_sets_a_cookie_secure_over_tls_and_sign_out_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = "reader-token read team\n";
    for tls in [false, true] {
        let mut config = with_tokens(tokens);
        let mut ca = None;
        if tls {
            let (paths, ca_der) = crate::util::issue_cert(dir.path(), "ui");
            config.tls = Some(paths);
            ca = Some(ca_der);
        }
        let server = start(config);
        let mut builder = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0);
        if let Some(ca_der) = &ca {
            let roots = ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                ureq::tls::Certificate::from_der(ca_der).to_owned(),
            ]));
            builder = builder.tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
        }
        let agent: ureq::Agent = builder.build().into();
        let base = format!(
            "{}://localhost:{}",
            if tls { "https" } else { "http" },
            server.addr.port()
        );
        let login = agent
            .post(&format!("{base}/ui/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .send(&b"token=reader-token"[..])
            .expect("login");
        assert_eq!(login.status().as_u16(), 303);
        let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(
            cookie.starts_with("cachet_token=reader%2Dtoken;"),
            "{cookie}"
        );
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert_eq!(cookie.contains("Secure"), tls, "{cookie}");

        // Signed in, a page offers "Sign out"; signing out clears the cookie.
        let mut page = agent
            .get(&format!("{base}/ui"))
            .header("cookie", "cachet_token=reader-token")
            .call()
            .expect("page");
        assert_eq!(page.status().as_u16(), 200);
        let html = page.body_mut().read_to_string().unwrap();
        assert!(html.contains("action=\"/ui/logout\""), "{html}");
        let out = agent
            .post(&format!("{base}/ui/logout"))
            .header("cookie", "cachet_token=reader-token")
            .send(&b""[..])
            .expect("logout");
        assert_eq!(out.status().as_u16(), 303);
        assert_eq!(out.headers()["location"], "/ui/login");
        let cleared = out.headers()["set-cookie"].to_str().unwrap();
        assert!(cleared.starts_with("cachet_token=;"), "{cleared}");
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
        assert_eq!(cleared.contains("Secure"), tls, "{cleared}");
        // Without the cookie: the login form, no numbers.
        let mut anon = agent.get(&format!("{base}/ui")).call().expect("page");
        assert_eq!(anon.status().as_u16(), 401);
        assert!(!anon.body_mut().read_to_string().unwrap().contains("logout"));
        server.stop();
    }
}

/// `cachet server` prints the dashboard's address at start, and that address serves the page.
#[test]
fn the_server_prints_the_dashboard_link_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = crate::util::spawn_server_logged(
        &["--storage", "ephemeral"],
        &[("CACHET_LOG", "info")],
        &[],
        &log,
    );
    let want = format!("dashboard: http://127.0.0.1:{}/ui", server.addr.port());
    crate::util::wait_for(
        "the dashboard link in the log",
        std::time::Duration::from_secs(30),
        || std::fs::read_to_string(&log).is_ok_and(|l| l.contains(&want)),
    );
    let url = format!("http://127.0.0.1:{}/ui", server.addr.port());
    let page = send("GET", &url, None, None);
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("<h1>Overview</h1>"));
}
