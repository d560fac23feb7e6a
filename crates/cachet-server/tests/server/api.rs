//! The object API, the WebDAV subset and the ops endpoints, with a real HTTP client.

use crate::dashboard::assert_numbers;
use crate::util::{bytes, ephemeral, get, put, send, start};

#[test]
fn put_get_head_delete_round_trip() {
    let server = start(ephemeral());
    let key = format!("/cachet/v1/e/{}", "ab".repeat(32));
    let url = server.url(&key);
    assert_eq!(get(&url).status, 404, "a miss is a 404");

    let data = bytes(1, 100_000);
    assert_eq!(put(&url, &data).status, 201);
    let r = get(&url);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, data);
    let h = send("HEAD", &url, None, None);
    assert_eq!(h.status, 200);
    assert_eq!(h.headers["content-length"], "100000");

    let newer = bytes(2, 3_000_000);
    assert_eq!(put(&url, &newer).status, 201, "overwrites are allowed");
    assert_eq!(get(&url).body, newer, "large objects stream back intact");

    assert_eq!(send("DELETE", &url, None, None).status, 204);
    assert_eq!(get(&url).status, 404);
    assert_eq!(send("HEAD", &url, None, None).status, 404);
}

#[test]
fn namespaces_are_separate() {
    let server = start(ephemeral());
    assert_eq!(put(&server.url("/one/k"), b"first").status, 201);
    assert_eq!(put(&server.url("/two/k"), b"second").status, 201);
    assert_eq!(get(&server.url("/one/k")).body, b"first");
    assert_eq!(get(&server.url("/two/k")).body, b"second");
    assert_eq!(get(&server.url("/three/k")).status, 404);
}

#[test]
fn empty_objects_round_trip() {
    let server = start(ephemeral());
    assert_eq!(put(&server.url("/ns/empty"), b"").status, 201);
    let r = get(&server.url("/ns/empty"));
    assert_eq!((r.status, r.body.len()), (200, 0));
}

#[test]
fn webdav_propfind_and_mkcol() {
    let server = start(ephemeral());
    let propfind = |path: &str| send("PROPFIND", &server.url(path), Some(b""), None);
    let r = propfind("/sccache/");
    assert_eq!(r.status, 207);
    let xml = String::from_utf8_lossy(&r.body).into_owned();
    assert!(
        xml.contains("<D:collection/>") && xml.contains("getlastmodified"),
        "{xml}"
    );
    assert_eq!(
        propfind("/sccache/a/b/").status,
        207,
        "every collection exists"
    );
    assert_eq!(
        send("MKCOL", &server.url("/sccache/a/"), None, None).status,
        201
    );
    assert_eq!(
        propfind("/sccache/a/b/c").status,
        404,
        "a missing object is a 404"
    );
    put(&server.url("/sccache/a/b/c"), b"12345");
    let r = propfind("/sccache/a/b/c");
    assert_eq!(r.status, 207);
    let xml = String::from_utf8_lossy(&r.body).into_owned();
    assert!(
        xml.contains("<D:getcontentlength>5</D:getcontentlength>"),
        "{xml}"
    );
    assert_eq!(
        send("OPTIONS", &server.url("/sccache/"), None, None).status,
        200
    );
}

#[test]
fn ops_endpoints_report_traffic() {
    let server = start(ephemeral());
    assert_eq!(get(&server.url("/healthz")).status, 200);
    assert_eq!(get(&server.url("/readyz")).status, 200);
    put(&server.url("/cachet/k1"), &[7; 1000]);
    get(&server.url("/cachet/k1"));
    get(&server.url("/cachet/missing"));
    get(&server.url("/cachet/missing/too"));

    let stats: serde_json::Value =
        serde_json::from_slice(&get(&server.url("/stats")).body).expect("stats is JSON");
    let expected = [
        ("hits", 1),
        ("misses", 2),
        ("bytes_in", 1000),
        ("bytes_out", 1000),
        ("objects", 1),
        ("stored_bytes", 1000),
    ];
    assert_numbers(&stats, &expected);

    let metrics = String::from_utf8(get(&server.url("/metrics")).body).expect("utf-8");
    for needle in [
        "cachet_requests_total{method=\"GET\",route=\"/{namespace}/{key}\",status=\"404\"} 2",
        "cachet_requests_total{method=\"PUT\",route=\"/{namespace}/{key}\",status=\"201\"} 1",
        "cachet_request_duration_seconds_count{method=\"GET\",route=\"/{namespace}/{key}\"} 3",
        "cachet_cache_hits_total 1",
        "cachet_cache_misses_total 2",
        "cachet_stored_bytes 1000",
        "cachet_uptime_seconds",
        "cachet_max_size_bytes",
        "cachet_evictions_total 0",
    ] {
        assert!(metrics.contains(needle), "missing {needle:?} in\n{metrics}");
    }
    assert!(
        !metrics.contains("missing/too"),
        "labels are route templates, never raw paths"
    );

    assert_eq!(
        send("DELETE", &server.url("/_admin/stats"), None, None).status,
        204
    );
    let stats: serde_json::Value =
        serde_json::from_slice(&get(&server.url("/stats")).body).expect("stats is JSON");
    assert_eq!(stats["hits"], 0, "zeroed");
    assert_eq!(stats["objects"], 1, "zeroing stats keeps the objects");
}

#[test]
fn admin_purges_one_namespace() {
    let server = start(ephemeral());
    put(&server.url("/a/k"), b"x");
    put(&server.url("/b/k"), b"y");
    let r = send("DELETE", &server.url("/_admin/namespaces/a"), None, None);
    assert_eq!(r.status, 200);
    assert_eq!(get(&server.url("/a/k")).status, 404);
    assert_eq!(get(&server.url("/b/k")).body, b"y");
    assert_eq!(
        put(&server.url("/a/k"), b"again").status,
        201,
        "a purged namespace is usable"
    );
    assert_eq!(get(&server.url("/a/k")).body, b"again");
}

/// HTTP/2 without TLS (prior knowledge, "h2c") on the same port as HTTP/1.1.
#[test]
fn http2_prior_knowledge_round_trip() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let server = start(ephemeral());
    let url = server.url("/ns/h2");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("h2 handshake");
        tokio::spawn(conn);
        let data = bytes::Bytes::from(bytes(5, 200_000));
        let put = http::Request::put(&url)
            .body(Full::new(data.clone()))
            .expect("request");
        let resp = sender.send_request(put).await.expect("put");
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let get = http::Request::get(&url)
            .body(Full::new(bytes::Bytes::new()))
            .expect("request");
        let resp = sender.send_request(get).await.expect("get");
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(body, data);
    });
}
