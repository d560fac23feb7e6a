//! Abuse and small promises: the upload memory budget (503 with Retry-After past it), `/stats`
//! and `/metrics` behind a token when asked, `OPTIONS *`, and the request log's byte count.
//!
//! What broke (issue 15): 200 slow uploads took the server from 36 to 331 MiB (nothing bounded
//! buffered upload bytes); `/stats` answered anyone; `OPTIONS *` got 400 where docs/server.md
//! promises 200 with `DAV: 1`; the debug log's `bytes=` showed the declared Content-Length.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use cachet_server::auth::Tokens;

use crate::util::{bytes, ephemeral, get, put, send, spawn_server_logged, start, wait_for};

/// Starts a PUT announcing `len` bytes and sends only its headers.
fn stalled_upload(addr: std::net::SocketAddr, key: &str, len: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "PUT /ns/{key} HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n\r\n"
    )
    .expect("headers");
    s.write_all(&[1; 1000]).expect("some body");
    s
}

#[test]
fn uploads_past_the_memory_budget_get_503_with_retry_after() {
    let mut config = ephemeral();
    config.upload_memory = 2 << 20;
    let server = start(config);
    let mut stalled: Vec<TcpStream> = (0..2)
        .map(|i| stalled_upload(server.addr, &format!("slow{i}"), 4 << 20))
        .collect();
    // Both stalled uploads hold their 1 MiB of budget once the server has read their headers.
    wait_for("the budget to fill", Duration::from_secs(30), || {
        let r = put(&server.url("/ns/probe"), &bytes(1, 200_000));
        if r.status == 201 {
            return false;
        }
        assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(
            r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
            Some("2")
        );
        let body = String::from_utf8_lossy(&r.body);
        assert!(body.contains("busy with other uploads"), "{body}");
        true
    });
    let metrics = String::from_utf8(get(&server.url("/metrics")).body).expect("utf-8");
    assert!(
        crate::util::metric(&metrics, "cachet_uploads_busy_total").unwrap_or(0.0) >= 1.0,
        "{metrics}"
    );
    // Small reads and writes within the budget still work... once room is back.
    stalled.clear();
    wait_for("the budget to free up", Duration::from_secs(30), || {
        put(&server.url("/ns/after"), &bytes(2, 200_000)).status == 201
    });
    assert!(get(&server.url("/ns/after")).body == bytes(2, 200_000));
}

#[test]
fn stats_and_metrics_can_require_a_token() {
    let tokens = Tokens::parse(
        "reader-everything read *\nreader-one-ns read cachet\n",
        "test",
    )
    .expect("tokens");
    let mut config = ephemeral();
    config.tokens = tokens.clone();
    config.protect_stats = true;
    let server = start(config);
    for route in ["/stats", "/metrics"] {
        let url = server.url(route);
        assert_eq!(send("GET", &url, None, None).status, 401, "{route}");
        assert_eq!(
            send("GET", &url, None, Some("Bearer reader-one-ns")).status,
            403,
            "{route}: a token for one namespace does not see them all"
        );
        assert_eq!(
            send("GET", &url, None, Some("Bearer reader-everything")).status,
            200,
            "{route}"
        );
    }
    assert_eq!(get(&server.url("/healthz")).status, 200);
    drop(server);

    // The default stays as documented: open.
    let mut config = ephemeral();
    config.tokens = tokens;
    let server = start(config);
    assert_eq!(get(&server.url("/stats")).status, 200);
}

#[test]
fn options_star_answers_with_dav() {
    let server = start(ephemeral());
    let mut s = TcpStream::connect(server.addr).expect("connect");
    s.write_all(b"OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("\r\ndav: 1\r\n"),
        "{answer}"
    );
}

#[test]
fn the_request_log_counts_the_bytes_that_arrived() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("server.log");
    let server = spawn_server_logged(
        &["--storage", "ephemeral"],
        &[("CACHET_LOG", "cachet_server::api=debug")],
        &[],
        &log,
    );
    let mut s = TcpStream::connect(server.addr).expect("connect");
    s.write_all(b"PUT /ns/cut HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
        .expect("headers");
    s.write_all(&[7; 1234]).expect("part of the body");
    s.flush().expect("flush");
    drop(s);
    wait_for("the request's log line", Duration::from_secs(30), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("path=/ns/cut")
    });
    let logged = std::fs::read_to_string(&log).expect("log");
    let line = logged
        .lines()
        .find(|l| l.contains("path=/ns/cut") && l.contains("status="))
        .expect("request line");
    assert!(line.contains("bytes=1234"), "{line}");
}

/// A Redis-only store assembles each upload whole in memory (Redis takes a value in one
/// command): that memory counts against `--upload-memory` like the disk store's write buffer
/// (it was outside any bound), and a Redis at `maxmemory` answers 507 saying so, where the
/// client got 503 "storage unavailable" before; reads go on.
#[test]
fn redis_uploads_count_against_the_budget_and_a_full_redis_gets_507() {
    let redis = cachet_test_support::backends::RedisServer::start();
    // The default policy, noeviction, refuses writes past maxmemory.
    redis.cli(&["CONFIG", "SET", "maxmemory", "12mb"]);
    let server =
        crate::util::spawn_server(&["--storage", &redis.spec("mem/"), "--upload-memory", "4M"]);
    let object = |i: u64| bytes(i, 1_300_000);
    assert_eq!(put(&server.url("/ns/first"), &object(0)).status, 201);

    // More than the whole budget: refused with a body that says what to do.
    let r = put(&server.url("/ns/big"), &bytes(9, 5 << 20));
    assert_eq!(r.status, 507);
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.contains("--upload-memory"), "{body}");
    assert_eq!(get(&server.url("/ns/big")).status, 404);

    // Redis fills up: 507 naming the cause, not 503.
    let mut refused = None;
    for i in 1..20 {
        let r = put(&server.url(&format!("/ns/k{i}")), &object(i));
        if r.status != 201 {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("Redis never filled up past maxmemory");
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, 507, "{body}");
    assert!(body.contains("Redis is out of memory"), "{body}");
    let r = get(&server.url("/ns/first"));
    assert!(r.status == 200 && r.body == object(0), "reads go on");
}
