//! The life cycle of connections, with real sockets: silent, idle and half-sent connections
//! are closed after their timeouts, whatever the protocol, and a flood of them never keeps
//! `/healthz` from answering, even with few file descriptors.
//!
//! What broke (issue 15): a socket that never sent a byte was never closed (hyper-util's
//! protocol detection reads before any header timeout applies), nor an HTTP/2 connection after
//! its preface or a TLS one after its handshake; 300 of them took a server with 256 open files
//! down ("Too many open files").

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::util::{
    closed_by_peer, ephemeral, get, issue_cert, metric, raw_status, spawn_server_under, start,
    tls_client,
};

/// The HTTP/2 connection preface and an empty SETTINGS frame: a client that says "HTTP/2" and
/// then nothing.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

fn healthz_answers(addr: std::net::SocketAddr) -> bool {
    raw_status(
        addr,
        "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ) == Some(200)
}

#[test]
fn silent_idle_and_half_sent_connections_are_closed() {
    let mut config = ephemeral();
    config.header_timeout = Duration::from_secs(1);
    config.idle_timeout = Duration::from_secs(2);
    let server = start(config);

    let mut silent: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(server.addr).expect("connect"))
        .collect();
    let mut h2 = TcpStream::connect(server.addr).expect("connect");
    h2.write_all(H2_PREFACE).expect("preface");
    let mut half_sent = TcpStream::connect(server.addr).expect("connect");
    half_sent
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .expect("half a request");
    // A keep-alive connection that made one request and then went quiet.
    let mut kept = TcpStream::connect(server.addr).expect("connect");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("request");
    let mut answer = [0u8; 256];
    let n = kept.read(&mut answer).expect("response");
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));

    for _ in 0..5 {
        assert!(
            healthz_answers(server.addr),
            "/healthz must answer throughout"
        );
    }
    let bound = Duration::from_secs(30);
    for (i, s) in silent.iter_mut().enumerate() {
        assert!(closed_by_peer(s, bound), "silent socket {i} is still open");
    }
    assert!(closed_by_peer(&mut h2, bound), "silent HTTP/2 client");
    assert!(closed_by_peer(&mut half_sent, bound), "half-sent request");
    assert!(
        closed_by_peer(&mut kept, bound),
        "idle keep-alive connection"
    );

    let metrics = String::from_utf8(get(&server.url("/metrics")).body).expect("utf-8");
    let closed = |reason: &str| {
        metric(
            &metrics,
            &format!("cachet_connections_closed_total{{reason=\"{reason}\"}}"),
        )
        .unwrap_or(0.0)
    };
    assert!(closed("header_timeout") >= 1002.0, "{metrics}");
    assert!(closed("idle_timeout") >= 1.0, "{metrics}");
    assert!(healthz_answers(server.addr));
}

#[test]
fn a_silent_tls_client_is_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (paths, ca) = issue_cert(dir.path(), "server");
    let mut config = ephemeral();
    config.tls = Some(paths);
    config.header_timeout = Duration::from_secs(1);
    config.handshake_timeout = Duration::from_secs(1);
    let server = start(config);

    // Connects and never starts the handshake.
    let mut no_handshake = TcpStream::connect(server.addr).expect("connect");
    // Finishes the handshake, then says nothing.
    let tcp = TcpStream::connect(server.addr).expect("connect");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(tls_client(&ca), name).expect("client");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).expect("TLS handshake");
    }
    tls.sock
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let mut buf = [0u8; 64];
    let closed = match tls.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!("unexpected {n} bytes from the server"),
        Err(err) => !matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    };
    assert!(
        closed,
        "a TLS client silent after its handshake stays connected"
    );
    assert!(
        closed_by_peer(&mut no_handshake, Duration::from_secs(30)),
        "a client that never starts its handshake stays connected"
    );
}

/// The open-file soft limit is raised to the hard limit at start, and the connection cap
/// follows it; with only 256 descriptors, 400 silent sockets (and a header timeout far longer
/// than the test) still leave room for `/healthz`: at the cap, idle connections are shed.
#[test]
fn idle_sockets_do_not_starve_healthz_under_a_low_open_file_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics_of = |server: &crate::util::ServerProcess| {
        String::from_utf8(get(&server.url("/metrics")).body).expect("utf-8")
    };
    let args = [
        "--storage",
        "ephemeral",
        "--header-timeout",
        "10m",
        "--idle-timeout",
        "10m",
    ];
    {
        let raised = spawn_server_under(
            &["prlimit", "--nofile=256:4096"],
            &args,
            &dir.path().join("raised.log"),
        );
        let text = metrics_of(&raised);
        assert_eq!(
            metric(&text, "cachet_connections_max"),
            Some(2016.0),
            "soft limit raised to 4096: (4096 - 64) / 2 connections"
        );
    }

    let log = dir.path().join("server.log");
    let server = spawn_server_under(&["prlimit", "--nofile=256:256"], &args, &log);
    let _silent: Vec<TcpStream> = (0..400)
        .map(|_| TcpStream::connect(server.addr).expect("connect"))
        .collect();
    for _ in 0..3 {
        assert!(
            healthz_answers(server.addr),
            "/healthz must answer while 400 silent sockets are open"
        );
    }
    let text = metrics_of(&server);
    assert_eq!(metric(&text, "cachet_connections_max"), Some(96.0));
    assert!(
        metric(&text, "cachet_connection_limit_reached_total").unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert!(
        metric(&text, "cachet_connections_closed_total{reason=\"shed\"}").unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(logged.contains("connection limit reached"), "{logged}");
    assert!(!logged.contains("Too many open files"), "{logged}");
}
