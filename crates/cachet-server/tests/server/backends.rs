//! Real shared-storage servers for the tier tests: `redis-server` (one node, or a 3-node
//! Redis Cluster made with `redis-cli --cluster create`) and an S3-compatible server (moto in
//! server mode), each on loopback ports in its own scratch directory, killed on drop.
//!
//! Only std: this file is also compiled into the `cachet` crate's test binary (`#[path]`), so
//! that the build tests there and the HTTP tests here start backends the same way. Tools come
//! from `CACHET_TEST_REDIS_SERVER` / `CACHET_TEST_REDIS_CLI` / `CACHET_TEST_MOTO`, else
//! scripts/setup.d/50-storage.sh's install, else PATH; a missing tool fails the test.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Polls `cond` every 50 ms until it holds; panics after `timeout` naming `what`.
pub fn poll_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tool(env: &str, name: &str, cached: Option<PathBuf>) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    if let Some(p) = cached.filter(|p| p.exists()) {
        return p;
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let p = dir.join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed (set {env} or put it on PATH): run scripts/setup.sh");
}

fn ci_cache() -> Option<PathBuf> {
    std::env::var_os("CACHET_CI_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/cachet-ci")))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn port_open(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// One `redis-server` process (no persistence: a restart starts empty, like a lost node).
pub struct RedisServer {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    cluster: bool,
    /// Extra `redis-server` arguments (users, passwords).
    extra: Vec<String>,
    /// `redis-cli` arguments that log in and pick the database.
    cli_auth: Vec<String>,
}

impl RedisServer {
    /// A single node on a free port.
    pub fn start() -> RedisServer {
        Self::start_node(false)
    }

    /// A single node where only user `cachet` (password `s3cret`) may log in; `redis-cli`
    /// calls log in as that user on database `db`.
    pub fn start_with_user(db: u32) -> RedisServer {
        let mut r = Self::new(false);
        r.extra = [
            "--user", "default", "off", "--user", "cachet", "on", ">s3cret", "~*", "&*", "+@all",
        ]
        .map(String::from)
        .to_vec();
        r.cli_auth = [
            "--user",
            "cachet",
            "--pass",
            "s3cret",
            "--no-auth-warning",
            "-n",
        ]
        .map(String::from)
        .to_vec();
        r.cli_auth.push(db.to_string());
        r.spawn();
        r
    }

    /// A single node that speaks only TLS on its port, with the certificate and key in
    /// `cert`/`key` (PEM).
    pub fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> RedisServer {
        let mut r = Self::new(false);
        let port = r.port.to_string();
        r.extra = vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port,
            "--tls-cert-file".into(),
            cert.display().to_string(),
            "--tls-key-file".into(),
            key.display().to_string(),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        r.spawn();
        r
    }

    fn new(cluster: bool) -> RedisServer {
        RedisServer {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
            cluster,
            extra: Vec::new(),
            cli_auth: Vec::new(),
        }
    }

    fn start_node(cluster: bool) -> RedisServer {
        let mut r = Self::new(cluster);
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(tool("CACHET_TEST_REDIS_SERVER", "redis-server", None));
        cmd.current_dir(self.dir.path())
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(&self.extra);
        if self.cluster {
            cmd.args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", "nodes.conf"]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let port = self.port;
        poll_until("redis-server to listen", Duration::from_secs(30), || {
            port_open(port)
        });
    }

    /// `kill -9`: the data is gone, as when a node is lost.
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts it again, empty, on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The process id, for a shim that stops it mid-build.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// `--storage` spec of this node.
    pub fn spec(&self, prefix: &str) -> String {
        format!("redis://127.0.0.1:{}/0?prefix={prefix}", self.port)
    }

    /// Runs `redis-cli -p PORT ARGS...` and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut all: Vec<&str> = self.cli_auth.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        redis_cli(self.port, &all)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `redis-cli -p PORT ARGS...`.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new(tool("CACHET_TEST_REDIS_CLI", "redis-cli", None))
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A 3-node Redis Cluster (3 masters, no replicas) on loopback ports.
pub struct RedisCluster {
    /// The nodes.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three nodes and joins them with `redis-cli --cluster create`.
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::start_node(true)).collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addrs.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = Command::new(tool("CACHET_TEST_REDIS_CLI", "redis-cli", None))
            .args(&args)
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = RedisCluster { nodes };
        for n in &cluster.nodes {
            poll_until(
                "the Redis Cluster to be ready",
                Duration::from_secs(60),
                || n.cli(&["cluster", "info"]).contains("cluster_state:ok"),
            );
        }
        cluster
    }

    /// The nodes' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(RedisServer::pid).collect()
    }

    /// `--storage` spec with two of the three nodes as seeds.
    pub fn spec(&self, prefix: &str) -> String {
        format!(
            "redis+cluster://127.0.0.1:{},127.0.0.1:{}?prefix={prefix}",
            self.nodes[0].port, self.nodes[1].port
        )
    }

    /// Kills every node (`kill -9`; data gone, cluster configuration kept in `nodes.conf`).
    pub fn stop(&mut self) {
        for n in &mut self.nodes {
            n.stop();
        }
    }

    /// Starts every node again on its port; they find each other from `nodes.conf`.
    pub fn restart(&mut self) {
        for n in &mut self.nodes {
            n.restart();
        }
        for n in &self.nodes {
            poll_until(
                "the Redis Cluster to be ready again",
                Duration::from_secs(60),
                || n.cli(&["cluster", "info"]).contains("cluster_state:ok"),
            );
        }
    }

    /// Number of keys under `prefix` on all nodes.
    pub fn count_keys(&self, prefix: &str) -> usize {
        self.nodes
            .iter()
            .map(|n| {
                n.cli(&["--scan", "--pattern", &format!("{prefix}*")])
                    .lines()
                    .filter(|l| !l.is_empty())
                    .count()
            })
            .sum()
    }
}

/// An S3-compatible server (moto in server mode) with one bucket; by default it takes any
/// signature, with [`S3Server::start_with_auth`] it checks every request like AWS does.
pub struct S3Server {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The bucket the tests use.
    pub bucket: String,
    /// With authentication: the access key of an IAM user allowed `s3:*` (a new one after
    /// each restart).
    pub key: Option<S3Key>,
    auth: bool,
    /// Holds `moto.log`, moto's request log (one line per request: method, target, status).
    dir: tempfile::TempDir,
}

/// An access key moto knows (created through its IAM API).
#[derive(Debug, Clone)]
pub struct S3Key {
    /// `AWS_ACCESS_KEY_ID`.
    pub id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret: String,
}

/// Environment a cachet server needs to sign requests to [`S3Server`] (moto accepts any key).
pub const S3_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "cachet-test"),
    ("AWS_SECRET_ACCESS_KEY", "cachet-test-secret"),
    ("AWS_REGION", "us-east-1"),
];

/// Run by moto's own Python (its virtualenv has boto3): `bootstrap PORT BUCKET` creates an IAM
/// user allowed `s3:*`, its access key (printed as `ID SECRET`) and the bucket, then turns
/// authentication on; `list PORT BUCKET ID SECRET` prints the bucket's keys, one per line.
/// Authentication is turned on through moto's `/moto-api/reset-auth` (the setting behind
/// `INITIAL_NO_AUTH_ACTION_COUNT`) rather than by starting moto with a count of free requests:
/// then nothing depends on how many requests the set-up makes.
const MOTO_SCRIPT: &str = r#"
import json, sys, urllib.request
import boto3
cmd, port, bucket = sys.argv[1:4]
endpoint = f"http://127.0.0.1:{port}"
def client(service, key_id, secret):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key_id, aws_secret_access_key=secret)
if cmd == "bootstrap":
    iam = client("iam", "bootstrap", "bootstrap")
    iam.create_user(UserName="cachet")
    iam.put_user_policy(UserName="cachet", PolicyName="s3", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="cachet")["AccessKey"]
    client("s3", "bootstrap", "bootstrap").create_bucket(Bucket=bucket)
    urllib.request.urlopen(urllib.request.Request(
        endpoint + "/moto-api/reset-auth", data=b"0", headers={"Content-Type": "text/plain"}))
    print(key["AccessKeyId"], key["SecretAccessKey"])
elif cmd == "list":
    s3 = client("s3", sys.argv[4], sys.argv[5])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            print(obj["Key"])
"#;

impl S3Server {
    /// Starts moto on a free port and creates the bucket.
    pub fn start() -> S3Server {
        Self::start_inner(false)
    }

    /// Starts moto with authentication: requests must be signed with [`S3Server::key`]
    /// (a wrong secret gets 403 `SignatureDoesNotMatch`, an unknown key `InvalidAccessKeyId`).
    pub fn start_with_auth() -> S3Server {
        Self::start_inner(true)
    }

    fn start_inner(auth: bool) -> S3Server {
        let mut s = S3Server {
            child: None,
            port: free_port(),
            bucket: "cachet-test".into(),
            key: None,
            auth,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        s.spawn();
        s
    }

    fn moto() -> PathBuf {
        tool(
            "CACHET_TEST_MOTO",
            "moto_server",
            ci_cache().map(|c| c.join("moto/bin/moto_server")),
        )
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("moto.log")).expect("moto.log");
        let child = Command::new(Self::moto())
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start moto_server");
        self.child = Some(child);
        let port = self.port;
        poll_until("the S3 server to listen", Duration::from_secs(60), || {
            port_open(port)
        });
        if !self.auth {
            let status = http(self.port, "PUT", &format!("/{}", self.bucket), b"");
            assert_eq!(status.0, 200, "create bucket: {}", status.1);
            return;
        }
        let out = self.python(&["bootstrap"]);
        let (id, secret) = out.trim().split_once(' ').expect("ID SECRET");
        self.key = Some(S3Key {
            id: id.into(),
            secret: secret.into(),
        });
        let (status, _) = http(self.port, "GET", &format!("/{}", self.bucket), b"");
        assert_ne!(status, 200, "moto still serves unsigned requests");
    }

    /// Runs [`MOTO_SCRIPT`] `CMD PORT BUCKET ARGS...` with the Python of moto's virtualenv.
    fn python(&self, args: &[&str]) -> String {
        let python = Self::moto().with_file_name("python");
        let out = Command::new(&python)
            .arg("-c")
            .arg(MOTO_SCRIPT)
            .arg(args[0])
            .args([&self.port.to_string(), &self.bucket])
            .args(&args[1..])
            // Straight to 127.0.0.1, whatever proxy the tests run behind.
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("all_proxy")
            .env_remove("ALL_PROXY")
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", python.display()));
        assert!(
            out.status.success(),
            "{} {args:?} failed: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// The access key of a server started with [`S3Server::start_with_auth`].
    pub fn key(&self) -> S3Key {
        self.key
            .clone()
            .expect("an S3Server started with authentication")
    }

    /// moto's request log so far: one line per request, with the request target as received
    /// (`"PUT /bucket/key HTTP/1.1" 200`, or the whole URL when it came through a proxy).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    /// `kill -9` (moto keeps everything in memory: a restart starts empty).
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts it again on the same port, with an empty bucket (and with authentication, a
    /// new key).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// `--storage` spec for `prefix` in the bucket.
    pub fn spec(&self, prefix: &str) -> String {
        format!(
            "s3://{}/{prefix}?endpoint=http://127.0.0.1:{}&region=us-east-1",
            self.bucket, self.port
        )
    }

    /// Keys of the objects in the bucket (ListObjectsV2: unsigned where moto allows it, else
    /// signed with [`S3Server::key`]).
    pub fn keys(&self) -> Vec<String> {
        if let Some(key) = &self.key {
            return self
                .python(&["list", &key.id, &key.secret])
                .lines()
                .map(str::to_string)
                .collect();
        }
        let (status, body) = http(
            self.port,
            "GET",
            &format!("/{}?list-type=2&max-keys=1000", self.bucket),
            b"",
        );
        assert_eq!(status, 200, "{body}");
        body.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A minimal HTTP/1.1 request on 127.0.0.1:`port`; returns status and body.
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("send");
    s.write_all(body).expect("send body");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = match text.split_once("\r\n\r\n") {
        Some((head, rest))
            if head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked") =>
        {
            dechunk(rest)
        }
        Some((_, rest)) => rest.to_string(),
        None => String::new(),
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
