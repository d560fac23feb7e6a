//! `redis-server` nodes and a 3-node Redis Cluster on loopback ports.
//!
//! Port: redis-server with `--port 0` does not listen on TCP, and a cluster and TLS need TCP,
//! so a node is started through [`bind_with_retry`]: on a port free a moment ago, again on a
//! fresh one if it logs "Address already in use". It counts as started when it logs "Ready to
//! accept connections". A restart (a node lost and back) must reuse its port, which the
//! cachet server under test was told.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use super::peer::{kill, start_logged};
use crate::ports::{bind_with_retry, Bind};
use crate::process::run_ok;
use crate::tools::require_tool;
use crate::wait::wait_for;

fn redis_server() -> PathBuf {
    require_tool("CACHET_TEST_REDIS_SERVER", "redis-server", &[])
}

fn redis_cli_bin() -> PathBuf {
    require_tool("CACHET_TEST_REDIS_CLI", "redis-cli", &[])
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
    /// Serve TLS on the port (with these `--tls-cert-file`, `--tls-key-file`) and no plain TCP.
    tls: Option<[String; 2]>,
    /// `redis-cli` arguments that log in and pick the database.
    cli_auth: Vec<String>,
}

impl RedisServer {
    /// A single node.
    pub fn start() -> RedisServer {
        Self::new(false).started()
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
        r.started()
    }

    /// A single node that speaks only TLS on its port, with the certificate and key in
    /// `cert`/`key` (PEM).
    pub fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> RedisServer {
        let mut r = Self::new(false);
        r.tls = Some([cert.display().to_string(), key.display().to_string()]);
        r.started()
    }

    fn new(cluster: bool) -> RedisServer {
        RedisServer {
            child: None,
            port: 0,
            dir: tempfile::tempdir().expect("tempdir"),
            cluster,
            extra: Vec::new(),
            tls: None,
            cli_auth: Vec::new(),
        }
    }

    fn started(mut self) -> RedisServer {
        self.port = bind_with_retry("redis-server", |port| match self.spawn_on(port) {
            Bind::Bound(child) => {
                self.child = Some(child);
                Bind::Bound(port)
            }
            Bind::Taken => Bind::Taken,
        });
        self
    }

    fn spawn_on(&self, port: u16) -> Bind<Child> {
        let mut cmd = Command::new(redis_server());
        cmd.current_dir(self.dir.path());
        match &self.tls {
            None => cmd.args(["--port", &port.to_string()]),
            Some([cert, key]) => cmd
                .args(["--port", "0", "--tls-port", &port.to_string()])
                .args(["--tls-cert-file", cert, "--tls-key-file", key])
                .args(["--tls-auth-clients", "no"]),
        };
        cmd.args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--logfile", ""])
            .args(&self.extra);
        if self.cluster {
            cmd.args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", "nodes.conf"]);
        }
        start_logged(
            "redis-server",
            cmd,
            &self.dir.path().join("redis.log"),
            |log| log.contains("Ready to accept connections"),
            &["Address already in use"],
        )
    }

    /// `kill -9`: the data is gone, as when a node is lost.
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts it again, empty, on the same port.
    pub fn restart(&mut self) {
        self.stop();
        match self.spawn_on(self.port) {
            Bind::Bound(child) => self.child = Some(child),
            Bind::Taken => panic!(
                "redis-server could not get its port {} back: another process took it",
                self.port
            ),
        }
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
    let out = Command::new(redis_cli_bin())
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
        let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::new(true).started()).collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addrs.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let mut create = Command::new(redis_cli_bin());
        create.args(&args);
        run_ok(create);
        let cluster = RedisCluster { nodes };
        cluster.wait_ready("the Redis Cluster to be ready");
        cluster
    }

    fn wait_ready(&self, what: &str) {
        for n in &self.nodes {
            wait_for(what, Duration::from_secs(60), || {
                n.cli(&["cluster", "info"]).contains("cluster_state:ok")
            });
        }
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
        self.wait_ready("the Redis Cluster to be ready again");
    }

    /// Number of cache objects under `prefix` on all nodes: [`RedisCluster::count_keys`]
    /// without the server's own dashboard history (`<prefix>v1/_dashboard/...`).
    pub fn count_object_keys(&self, prefix: &str) -> usize {
        self.count_keys(prefix) - self.count_keys(&format!("{prefix}v1/_dashboard/"))
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
