//! Hostile and broken requests: traversal, oversized bodies, stalled clients.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::util::{in_dir, put, raw_status, send, start};

#[test]
fn traversal_is_refused_and_touches_nothing() {
    let outer = tempfile::tempdir().expect("tempdir");
    let store = outer.path().join("store");
    let sentinel = outer.path().join("sentinel");
    std::fs::write(&sentinel, "keep").expect("write");
    let server = start(in_dir(&store));
    for path in [
        "/ns/../sentinel",
        "/ns/%2e%2e/sentinel",
        "/ns/%2E%2E/%2e%2e/sentinel",
        "/ns/a/..%2f..%2fsentinel",
        "/%2e%2e/sentinel",
        "/../sentinel",
        "//etc/passwd",
        "/ns/a\\..\\sentinel",
        "/ns/a%5c..%5csentinel",
        "/ns/%00",
        "/ns/a%ffb",
        "/_reserved/k",
        "/_admin/namespaces/..",
    ] {
        for method in ["GET", "PUT", "DELETE", "PROPFIND", "MKCOL"] {
            let req = format!(
                "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nConnection: close\r\n\r\nevil"
            );
            let status = raw_status(server.addr, &req);
            assert_eq!(status, Some(400), "{method} {path}");
        }
    }
    // Absolute-form targets are not paths into the store either.
    let status = raw_status(
        server.addr,
        "PUT http://t/../sentinel HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nConnection: close\r\n\r\nevil",
    );
    assert_ne!(status, Some(201));
    assert_eq!(
        std::fs::read_to_string(&sentinel).expect("sentinel"),
        "keep"
    );
    let mut names: Vec<String> = std::fs::read_dir(outer.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["sentinel", "store"],
        "nothing created outside the store"
    );
    let objects = std::fs::read_dir(store.join("objects-v1"))
        .expect("objects")
        .count();
    assert_eq!(objects, 0, "no object stored");
}

#[test]
fn bodies_over_the_limit_get_413() {
    let mut config = crate::util::ephemeral();
    config.max_object_size = 1000;
    let server = start(config);
    assert_eq!(put(&server.url("/ns/fits"), &[1; 1000]).status, 201);
    assert_eq!(put(&server.url("/ns/big"), &[1; 1001]).status, 413);
    // Without a Content-Length (chunked), the limit is enforced while streaming.
    let chunk = "x".repeat(600);
    let req = format!(
        "PUT /ns/chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    assert_eq!(raw_status(server.addr, &req), Some(413));
    assert_eq!(send("GET", &server.url("/ns/big"), None, None).status, 404);
    assert_eq!(
        send("GET", &server.url("/ns/chunked"), None, None).status,
        404
    );
}

/// A client that announces a body and stops sending must not hold a worker forever.
#[test]
fn stalled_uploads_time_out() {
    let mut config = crate::util::ephemeral();
    config.body_timeout = Duration::from_secs(1);
    config.header_timeout = Duration::from_secs(1);
    let server = start(config);
    let mut s = TcpStream::connect(server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    s.write_all(b"PUT /ns/slow HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nonly-a-little")
        .expect("write");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf); // returns once the server gives up and closes
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert_eq!(send("GET", &server.url("/ns/slow"), None, None).status, 404);

    // Headers that never finish are cut off too.
    let mut s = TcpStream::connect(server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    s.write_all(b"GET /ns/slow HTTP/1.1\r\nHost: t\r\n")
        .expect("write");
    let mut buf = Vec::new();
    let n = s.read_to_end(&mut buf);
    assert!(n.is_ok(), "the server closed the connection: {n:?}");
}

/// A client that asks for a large object and never reads it must not park its connection
/// (and the server's buffers) forever: the stalled write fails after the body timeout.
#[test]
fn clients_that_stop_reading_are_cut_off() {
    let mut config = crate::util::ephemeral();
    config.body_timeout = Duration::from_secs(1);
    let server = start(config);
    let size = 32 << 20;
    assert_eq!(put(&server.url("/ns/big"), &vec![3u8; size]).status, 201);
    let mut s = TcpStream::connect(server.addr).expect("connect");
    s.write_all(b"GET /ns/big HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("write");
    // Do not read until the server reports that it cut the connection off.
    crate::util::wait_for(
        "the stalled connection to be cut off",
        Duration::from_secs(60),
        || {
            String::from_utf8_lossy(&crate::util::get(&server.url("/metrics")).body)
                .contains("cachet_stalled_connections_total 1")
        },
    );
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server kept the stalled connection open: {e}"),
        }
    }
    assert!(
        received < size,
        "the server gave up before sending everything ({received} bytes)"
    );
}
