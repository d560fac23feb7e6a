//! The server tests' own helpers: a server in-process on port 0, an HTTP client, raw-socket
//! requests, TLS certificates. What the wrapper's tests share (the real server process,
//! bounded polling, external tools) comes from `cachet-test-support`, re-exported here.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use cachet_server::{Config, StorageSpec};
pub use cachet_test_support::{
    cachet_bin, require_tool, run_ok, spawn_server, spawn_server_env, spawn_server_logged,
    spawn_server_under, wait_for, Mount, ServerProcess,
};

/// A server running on a background thread; stopped (gracefully) on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server and waits until it has shut down.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread panicked");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts the server with `config` on 127.0.0.1:0.
pub fn start(config: Config) -> TestServer {
    let tls = config.tls.is_some();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    std_listener.set_nonblocking(true).expect("nonblocking");
    let addr = std_listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
            cachet_server::run(listener, config, async {
                let _ = rx.await;
            })
            .await
            .expect("server failed");
        });
    });
    let server = TestServer {
        addr,
        stop: Some(tx),
        thread: Some(thread),
    };
    if !tls {
        wait_for(
            "the server to answer /healthz",
            Duration::from_secs(20),
            || {
                raw_status(
                    addr,
                    "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                ) == Some(200)
            },
        );
    }
    server
}

/// An ephemeral-store configuration with the defaults.
pub fn ephemeral() -> Config {
    Config::with_storage(StorageSpec::Ephemeral)
}

/// An ephemeral-store configuration that accepts the `tokens` (token-file syntax).
pub fn with_tokens(tokens: &str) -> Config {
    let mut config = ephemeral();
    config.tokens = cachet_server::auth::Tokens::parse(tokens, "test").expect("tokens");
    config
}

/// A configuration storing in `dir`.
pub fn in_dir(dir: &Path) -> Config {
    Config::with_storage(StorageSpec::Dir(dir.to_path_buf()))
}

/// An HTTP client that returns non-2xx statuses instead of errors.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// A response: status and body.
pub struct Resp {
    pub status: u16,
    pub body: Vec<u8>,
    pub headers: http::HeaderMap,
}

/// The whole body of `resp`, however large (the client's default caps it at 10 MB).
pub fn read_body(resp: &mut http::Response<ureq::Body>) -> Result<Vec<u8>, ureq::Error> {
    resp.body_mut().with_config().limit(u64::MAX).read_to_vec()
}

/// Sends `method url` with an optional body and `Authorization` value.
pub fn send(method: &str, url: &str, body: Option<&[u8]>, auth: Option<&str>) -> Resp {
    let mut builder = http::Request::builder().method(method).uri(url);
    if let Some(a) = auth {
        builder = builder.header("Authorization", a);
    }
    let result = match body {
        Some(b) => agent().run(builder.body(b.to_vec()).expect("request")),
        None => agent().run(builder.body(()).expect("request")),
    };
    let mut resp = result.unwrap_or_else(|e| panic!("{method} {url} failed: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = read_body(&mut resp).unwrap_or_default();
    Resp {
        status,
        body,
        headers,
    }
}

pub fn get(url: &str) -> Resp {
    send("GET", url, None, None)
}

pub fn put(url: &str, body: &[u8]) -> Resp {
    send("PUT", url, Some(body), None)
}

/// Sends raw bytes on a fresh connection and returns the status code of the answer.
pub fn raw_status(addr: SocketAddr, request: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1)?.parse().ok()
}

/// Deterministic pseudo-random bytes.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A certificate for `localhost` and `127.0.0.1` issued by a fresh private CA
/// ([`cachet_test_support::issue_cert`]), as the server's configuration takes it, and the CA
/// (DER).
pub fn issue_cert(dir: &Path, name: &str) -> (cachet_server::config::TlsPaths, Vec<u8>) {
    let c = cachet_test_support::issue_cert(dir, name);
    let paths = cachet_server::config::TlsPaths {
        cert: c.cert,
        key: c.key,
    };
    (paths, c.ca_der)
}

/// A rustls client configuration trusting only the CA `ca_der`.
pub fn tls_client(ca_der: &[u8]) -> std::sync::Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(ca_der.to_vec()))
        .expect("CA");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    std::sync::Arc::new(config)
}

/// Waits until the peer closes `socket` (EOF or reset); false if it is still open after
/// `bound`.
pub fn closed_by_peer(socket: &mut TcpStream, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        socket.set_read_timeout(Some(left)).expect("read timeout");
        match socket.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a response or a GOAWAY before the close
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true, // reset
        }
    }
}

/// The value of the first line of a Prometheus exposition that starts with `series `.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Files directly or indirectly under `dir` and their total size.
pub fn tree_size(dir: &Path) -> (usize, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => {
                    files += 1;
                    bytes += m.len();
                }
                Err(_) => {}
            }
        }
    }
    (files, bytes)
}
