//! HTTPS with a certificate issued by a CA made in the test, over HTTP/1.1 and HTTP/2 (ALPN).

use std::sync::Arc;

use crate::util::{bytes, ephemeral, issue_cert, start, tls_client};

#[test]
fn tls_round_trip_with_a_private_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (paths, ca_der) = issue_cert(dir.path(), "server");
    let mut config = ephemeral();
    config.tls = Some(paths);
    let server = start(config);

    let roots =
        ureq::tls::RootCerts::Specific(Arc::new(vec![
            ureq::tls::Certificate::from_der(&ca_der).to_owned()
        ]));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
        .build()
        .into();
    let url = format!("https://localhost:{}/ns/secret", server.addr.port());
    let data = bytes(9, 50_000);
    let status = agent.put(&url).send(&data[..]).expect("https put").status();
    assert_eq!(status.as_u16(), 201);
    let mut resp = agent.get(&url).call().expect("https get");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.body_mut().read_to_vec().expect("body"), data);

    // A client that does not trust the CA is refused.
    let untrusting: ureq::Agent = ureq::Agent::config_builder().build().into();
    assert!(untrusting.get(&url).call().is_err());

    // HTTP/2, negotiated by ALPN.
    let body = h2_get(server.addr, &ca_der, &url);
    assert_eq!(body, data);
}

/// GETs `url` over TLS with ALPN `h2` only, asserting the answer came over HTTP/2.
fn h2_get(addr: std::net::SocketAddr, ca_der: &[u8], url: &str) -> Vec<u8> {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let mut tls = (*tls_client(ca_der)).clone();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        let stream = connector.connect(name, tcp).await.expect("TLS handshake");
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("h2 handshake");
        tokio::spawn(conn);
        let req = http::Request::get(url)
            .body(Empty::<bytes::Bytes>::new())
            .expect("request");
        let resp = sender.send_request(req).await.expect("get");
        assert_eq!(resp.version(), http::Version::HTTP_2);
        assert_eq!(resp.status(), 200);
        resp.into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec()
    })
}
