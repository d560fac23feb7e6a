//! `SIGHUP` reloads the tokens and the TLS certificate of a running server (the real binary):
//! a revoked token is refused from the next request on, a new certificate is served from the
//! next handshake on, a bad new file changes nothing (and the log says why), and requests
//! running meanwhile are not disturbed.
//!
//! What broke (issue 15): the token file was read once, `kill -HUP` ended the server (exit 129,
//! nothing logged), and a certificate could only be rotated by a restart.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use crate::util::{
    bytes, issue_cert, send, spawn_server_logged, tls_client, wait_for, ServerProcess,
};

const READER: &str = "reader-token-1";
const REVOKED: &str = "revoked-token-2";

/// Sends SIGHUP and waits for the `count`-th log line containing `what`.
fn hup_and_wait(server: &ServerProcess, log: &Path, what: &str, count: usize) {
    server.signal("HUP");
    wait_for(what, Duration::from_secs(30), || {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .matches(what)
            .count()
            >= count
    });
}

fn alive(server: &mut ServerProcess) -> bool {
    server.child.try_wait().expect("try_wait").is_none()
}

/// A server reading its tokens from `tokens`, logging at `info` to `log`.
fn token_file_server(tokens: &Path, log: &Path) -> ServerProcess {
    spawn_server_logged(
        &[
            "--storage",
            "ephemeral",
            "--token-file",
            tokens.to_str().expect("utf-8"),
        ],
        &[("CACHET_LOG", "info")],
        &[],
        log,
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn sighup_reloads_tokens_and_keeps_them_when_the_new_file_is_bad() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.txt");
    std::fs::write(
        &tokens,
        format!("{READER} read,write *\n{REVOKED} read,write *\n"),
    )
    .expect("tokens");
    let log = dir.path().join("server.log");
    let mut server = token_file_server(&tokens, &log);
    let url = server.url("/ns/key");
    assert_eq!(
        send("PUT", &url, Some(b"v1"), Some(&bearer(REVOKED))).status,
        201
    );

    std::fs::write(&tokens, format!("{READER} read,write *\n")).expect("tokens");
    hup_and_wait(&server, &log, "reloaded the tokens", 1);
    assert_eq!(send("GET", &url, None, Some(&bearer(REVOKED))).status, 401);
    assert_eq!(send("GET", &url, None, Some(&bearer(READER))).status, 200);

    // A broken file keeps the tokens in force.
    std::fs::write(&tokens, "short read\n").expect("tokens");
    hup_and_wait(&server, &log, "failed to reload", 1);
    assert_eq!(send("GET", &url, None, Some(&bearer(READER))).status, 200);
    assert_eq!(send("GET", &url, None, Some(&bearer(REVOKED))).status, 401);
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(
        logged.contains("must be at least 8 characters"),
        "the log says why: {logged}"
    );
    assert!(alive(&mut server), "SIGHUP must not end the server");
}

fn handshake_succeeds(addr: SocketAddr, ca: &[u8]) -> bool {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(tls_client(ca), name).expect("client");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            return false;
        }
    }
    true
}

#[test]
fn sighup_rotates_the_tls_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, first_ca) = issue_cert(dir.path(), "first");
    let (second, second_ca) = issue_cert(dir.path(), "second");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::copy(&first.cert, &cert).expect("cert");
    std::fs::copy(&first.key, &key).expect("key");
    let log = dir.path().join("server.log");
    let mut server = spawn_server_logged(
        &[
            "--storage",
            "ephemeral",
            "--tls-cert",
            cert.to_str().expect("utf-8"),
            "--tls-key",
            key.to_str().expect("utf-8"),
        ],
        &[("CACHET_LOG", "info")],
        &[],
        &log,
    );
    assert!(handshake_succeeds(server.addr, &first_ca));
    assert!(!handshake_succeeds(server.addr, &second_ca));

    std::fs::copy(&second.cert, &cert).expect("cert");
    std::fs::copy(&second.key, &key).expect("key");
    hup_and_wait(&server, &log, "reloaded the tokens", 1);
    assert!(handshake_succeeds(server.addr, &second_ca));
    assert!(!handshake_succeeds(server.addr, &first_ca));

    // A key that does not parse keeps the certificate in force.
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nbroken\n").expect("key");
    hup_and_wait(&server, &log, "failed to reload", 1);
    assert!(handshake_succeeds(server.addr, &second_ca));
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(logged.contains("private key"), "the log says why: {logged}");
    assert!(alive(&mut server));
}

#[test]
fn a_reload_under_load_drops_no_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.txt");
    std::fs::write(&tokens, format!("{READER} read,write *\n")).expect("tokens");
    let log = dir.path().join("server.log");
    let server = token_file_server(&tokens, &log);
    let base = server.url("");
    let done = std::sync::atomic::AtomicBool::new(false);
    let reloads = 10;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4u64)
            .map(|w| {
                let (base, done) = (&base, &done);
                scope.spawn(move || {
                    let mut requests = 0;
                    for i in 0u64.. {
                        if done.load(std::sync::atomic::Ordering::Relaxed) && i >= 20 {
                            break;
                        }
                        let url = format!("{base}/ns/w{w}-{}", i % 8);
                        let data = bytes(w * 1000 + i, 20_000);
                        let put = send("PUT", &url, Some(&data), Some(&bearer(READER)));
                        assert_eq!(put.status, 201, "PUT {url}");
                        let got = send("GET", &url, None, Some(&bearer(READER)));
                        assert_eq!(got.status, 200, "GET {url}");
                        assert!(got.body == data, "GET {url} returned other bytes");
                        requests += 2;
                    }
                    requests
                })
            })
            .collect();
        for n in 1..=reloads {
            hup_and_wait(&server, &log, "reloaded the tokens", n);
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in workers {
            assert!(w.join().expect("worker") >= 40);
        }
    });
}
