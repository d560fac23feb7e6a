//! Shared helpers: start a server in-process on port 0 (or the real binary when a test must
//! kill it), an HTTP client, raw-socket requests, bounded polling, and external tools.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cachet_server::{Config, StorageSpec};

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
    let body = resp
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap_or_default();
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

/// Polls `cond` until it holds, failing the test after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(10);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
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

/// An external tool the test needs: from `env` if set, else `fallback` paths, else PATH.
/// Fails (never skips) when missing, since a skipped test would pass with the feature untested.
pub fn require_tool(env: &str, name: &str, fallbacks: &[PathBuf]) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "{env}={} does not exist: run scripts/setup.sh",
            p.display()
        );
        return p;
    }
    for f in fallbacks {
        if f.exists() {
            return f.clone();
        }
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let p = dir.join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed (set {env} or put it on PATH): run scripts/setup.sh");
}

/// The `cachet` binary: `CACHET_TEST_BIN`, else built with cargo into this test's target dir.
pub fn cachet_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CACHET_TEST_BIN") {
        return PathBuf::from(p);
    }
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            // .../target/debug/deps/server-HASH -> .../target
            let exe = std::env::current_exe().expect("current exe");
            let profile_dir = exe.parent().and_then(Path::parent).expect("profile dir");
            let target_dir = profile_dir.parent().expect("target dir");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "cachet", "--bin", "cachet"])
                .env("CARGO_TARGET_DIR", target_dir)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo build");
            assert!(status.success(), "cargo build -p cachet failed");
            profile_dir.join("cachet")
        })
        .clone()
}

/// The real `cachet server` process.
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    /// Holds the port file the server wrote (removed on drop).
    _port_dir: Option<tempfile::TempDir>,
}

impl ServerProcess {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cachet server --listen 127.0.0.1:PORT ARGS...` and waits for /healthz.
pub fn spawn_server(args: &[&str]) -> ServerProcess {
    spawn_server_env(args, &[])
}

/// [`spawn_server`] with extra environment variables.
pub fn spawn_server_env(args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
    spawn_server_with(&[], args, env, &[], Stdio::inherit())
}

/// [`spawn_server_env`] without the inherited variables `unset`, and with the server's log
/// (stderr, at `warn` unless `env` sets `CACHET_LOG`) written to the file `log`.
pub fn spawn_server_logged(
    args: &[&str],
    env: &[(&str, &str)],
    unset: &[&str],
    log: &Path,
) -> ServerProcess {
    let file = std::fs::File::create(log).expect("create the server's log file");
    spawn_server_with(&[], args, env, unset, file.into())
}

/// [`spawn_server_logged`] started through `prefix` (e.g. `prlimit --nofile=256:256`).
pub fn spawn_server_under(prefix: &[&str], args: &[&str], log: &Path) -> ServerProcess {
    let file = std::fs::File::create(log).expect("create the server's log file");
    spawn_server_with(prefix, args, &[], &[], file.into())
}

fn spawn_server_with(
    prefix: &[&str],
    args: &[&str],
    env: &[(&str, &str)],
    unset: &[&str],
    stderr: Stdio,
) -> ServerProcess {
    // Port 0: the server binds a port the system picks and writes it to the port file, so no
    // port that was free a moment ago is handed to another process.
    let port_dir = tempfile::tempdir().expect("port file directory");
    let port_file = port_dir.path().join("port");
    let mut cmd = match prefix {
        [] => Command::new(cachet_bin()),
        [program, rest @ ..] => {
            let mut c = Command::new(program);
            c.args(rest).arg(cachet_bin());
            c
        }
    };
    cmd.arg("server")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--port-file")
        .arg(&port_file)
        .args(args)
        .env_remove("CACHET_CONFIG");
    for var in unset {
        cmd.env_remove(var);
    }
    let child = cmd
        .env(
            "CACHET_LOG",
            std::env::var("CACHET_TEST_SERVER_LOG").unwrap_or("warn".into()),
        )
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn cachet server");
    let mut p = ServerProcess {
        child,
        addr: "127.0.0.1:0".parse().expect("addr"),
        _port_dir: None,
    };
    wait_for(
        "cachet server to write its port file",
        Duration::from_secs(60),
        || {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("cachet server exited early: {status}");
            }
            std::fs::read_to_string(&port_file).is_ok_and(|t| t.ends_with('\n'))
        },
    );
    let port: u16 = std::fs::read_to_string(&port_file)
        .expect("port file")
        .trim()
        .parse()
        .expect("a port number in the port file");
    p.addr = SocketAddr::from(([127, 0, 0, 1], port));
    p._port_dir = Some(port_dir);
    let addr = p.addr;
    wait_for(
        "cachet server to answer /healthz",
        Duration::from_secs(60),
        || {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("cachet server exited early: {status}");
            }
            if args.contains(&"--tls-cert") {
                // Plain HTTP gets no answer from a TLS port: being able to connect is enough.
                TcpStream::connect(addr).is_ok()
            } else {
                raw_status(
                    addr,
                    "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                ) == Some(200)
            }
        },
    );
    p
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A certificate for `localhost` and `127.0.0.1` issued by a fresh private CA: writes
/// `<name>-cert.pem` and `<name>-key.pem` into `dir`, returns their paths and the CA (DER).
pub fn issue_cert(dir: &Path, name: &str) -> (cachet_server::config::TlsPaths, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("leaf params")
        .signed_by(&leaf_key, &ca)
        .expect("leaf");
    let cert = dir.join(format!("{name}-cert.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    std::fs::write(&cert, leaf.pem()).expect("cert");
    std::fs::write(&key, leaf_key.serialize_pem()).expect("key");
    (
        cachet_server::config::TlsPaths { cert, key },
        ca.der().to_vec(),
    )
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

/// A tmpfs mounted over a directory for the test's duration (the suite runs as root).
pub struct Mount(PathBuf);

impl Mount {
    pub fn tmpfs(dir: &Path, options: &str) -> Mount {
        std::fs::create_dir_all(dir).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount is needed for this test");
        assert!(
            status.success(),
            "mounting a tmpfs at {} failed: this test needs root (CI runs as root)",
            dir.display()
        );
        Mount(dir.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
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
