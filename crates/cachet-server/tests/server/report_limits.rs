//! Call-report ingestion limits (#16): a real server process with small rates, real HTTP
//! clients. A client over its rate gets 429 with Retry-After before its body is parsed, every
//! record let in before that is in the API, other clients and object requests are served
//! meanwhile, and `/metrics` counts the refusals.

use cachet_core::report::{CLIENT_HEADER, RECORDS_HEADER};
use serde_json::Value;

use crate::dashboard::{batch, report};
use crate::util::{agent, metric, send, spawn_server, ServerProcess};
use cachet_core::report::Outcome;

/// POSTs `n` records of `client` (each a call of crate `krate-<i>`), saying so in the headers.
fn post_as(server: &ServerProcess, client: &str, n: usize) -> http::Response<ureq::Body> {
    let reports: Vec<_> = (0..n)
        .map(|i| report(&format!("krate-{i}"), client, Outcome::HitRemote, None))
        .collect();
    let req = http::Request::post(server.url("/_reports/cachet"))
        .header(RECORDS_HEADER, n.to_string())
        .header(CLIENT_HEADER, client)
        .body(batch(&reports))
        .unwrap();
    agent().run(req).unwrap()
}

/// The calls the API holds per client.
fn calls_by_client(server: &ServerProcess) -> Vec<(String, u64)> {
    let r = send("GET", &server.url("/_api/v1/clients?since=1d"), None, None);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    v["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["client"].as_str().unwrap().to_string(),
                c["calls"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn metrics(server: &ServerProcess) -> String {
    String::from_utf8(send("GET", &server.url("/metrics"), None, None).body).unwrap()
}

#[test]
fn a_client_over_its_report_rate_gets_429_and_everything_let_in_is_in_the_api() {
    // 10 records/s per client: a full bucket holds 600.
    let server = spawn_server(&["--storage", "ephemeral", "--report-rate", "10"]);
    let mut accepted = 0;
    let refused = loop {
        let resp = post_as(&server, "alice", 100);
        match resp.status().as_u16() {
            204 => accepted += 100,
            429 => break resp,
            s => panic!("unexpected status {s}"),
        }
        assert!(accepted <= 1000, "never refused");
    };
    assert_eq!(
        accepted, 600,
        "a full bucket lets a minute's worth in at once"
    );
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=11).contains(&retry_after),
        "Retry-After: {retry_after}"
    );

    // Meanwhile another client reports, and objects are stored and served.
    assert_eq!(post_as(&server, "bob", 100).status(), 204);
    assert_eq!(
        send("PUT", &server.url("/cachet/k1"), Some(b"object"), None).status,
        201
    );
    let got = send("GET", &server.url("/cachet/k1"), None, None);
    assert_eq!((got.status, &got.body[..]), (200, &b"object"[..]));

    // Every record let in is in the API; the refused batch's are not.
    let mut clients = calls_by_client(&server);
    clients.sort();
    assert_eq!(
        clients,
        vec![("alice".to_string(), 600), ("bob".to_string(), 100)]
    );
    let text = metrics(&server);
    let refused = |reason: &str| {
        metric(
            &text,
            &format!("cachet_report_requests_refused_total{{reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(refused("client_records"), Some(1.0), "{text}");
    assert_eq!(refused("server_records"), Some(0.0), "{text}");
    assert_eq!(
        metric(&text, "cachet_report_records_refused_total"),
        Some(100.0)
    );
    assert_eq!(metric(&text, "cachet_report_records_total"), Some(700.0));
    // The storage page's part of the API says the same.
    let r = send("GET", &server.url("/_api/v1/storage"), None, None);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["reports"]["counts"]["refused_client_records"], 1, "{v}");
    assert_eq!(v["reports"]["client_records_per_s"], 10, "{v}");
}

#[test]
fn the_server_ceiling_refuses_every_client_once_spent() {
    // 20 records/s for everyone together: 100 at once.
    let server = spawn_server(&["--storage", "ephemeral", "--report-ceiling", "20"]);
    assert_eq!(post_as(&server, "alice", 100).status(), 204);
    let resp = post_as(&server, "bob", 10);
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let text = metrics(&server);
    assert_eq!(
        metric(
            &text,
            "cachet_report_requests_refused_total{reason=\"server_records\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(calls_by_client(&server), vec![("alice".to_string(), 100)]);
}
