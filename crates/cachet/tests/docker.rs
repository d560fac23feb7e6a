//! cachet in Docker, on the real engine: the image (`cachet docker build`), the `cachet docker`
//! subcommands and their error messages, client containers on an internal network getting
//! remote hits, persistence, network isolation, a killed server, a memory limit under large
//! uploads, and the Grafana dashboard against a live `/metrics`. The compose file's tests are in
//! `docker/compose.rs`.
//!
//! Nothing here skips: without Docker or the client base image the tests fail and say to run
//! `scripts/setup.sh`. Every container, network and volume has a name unique to this test run
//! and is removed when the test ends (pass or fail). Waits poll with a bounded timeout.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use cachet_wrapper::journal::{self, Outcome};

use cachet_test_support::ports::{bind_with_retry, Bind};
use cachet_test_support::wait_for;

use crate::util::{
    assert_all_remote_hits, cachet_bin, copy_tree, crates_with, stderr_of, workload_service,
};

mod compose;

/// The server image the tests build once per run.
const TEST_IMAGE: &str = "cachet-test:local";

fn setup_hint() -> &'static str {
    "run `scripts/setup.sh` (scripts/setup.d/40-docker.sh prepares Docker, the musl target and the client base image)"
}

/// The debootstrapped client base image (gcc, libc6-dev, curl).
fn client_base() -> String {
    let base = std::env::var("CACHET_TEST_CLIENT_BASE")
        .unwrap_or_else(|_| "cachet-ci/debian-client:bookworm".into());
    let ok = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &base])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "client base image {base} is missing: {}", setup_hint());
    base
}

/// Runs an image build once per test process (`cell` remembers the result); panics with its
/// output and the set-up hint if it fails, in every test that needs the image.
fn build_once(cell: &'static OnceLock<Result<(), String>>, what: &str, mut build: Command) {
    let result = cell.get_or_init(|| {
        let out = build
            .output()
            .map_err(|e| format!("cannot run {what}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed ({}): {}\n{}",
                out.status,
                stderr_of(&out),
                setup_hint()
            ))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Builds the server image once per test process with `cachet docker build`.
fn ensure_image() -> &'static str {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let mut build = Command::new(cachet_bin());
    build
        .args(["docker", "build", "--tag", TEST_IMAGE, "--source"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    build_once(&BUILT, "`cachet docker build`", build);
    TEST_IMAGE
}

/// A name unique to this test run.
fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "cachet-t{}-{}-{what}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Docker objects a test created; removed on drop.
#[derive(Default)]
struct Cleanup {
    containers: Vec<String>,
    networks: Vec<String>,
    volumes: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = Command::new("docker").args(["rm", "-f", "-v", c]).output();
        }
        for n in &self.networks {
            let _ = Command::new("docker").args(["network", "rm", n]).output();
        }
        for v in &self.volumes {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f", v])
                .output();
        }
    }
}

/// Runs `docker ARGS`.
fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker ({e}): {}", setup_hint()))
}

/// Runs `docker ARGS` and returns stdout; panics with the output on failure.
fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        stderr_of(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs `cachet docker ARGS`.
fn cachet_docker(args: &[&str]) -> Output {
    Command::new(cachet_bin())
        .arg("docker")
        .args(args)
        .output()
        .unwrap()
}

/// Asserts that the command whose output is `out` failed, saying `text` on stderr.
fn assert_fails_saying(out: &Output, text: impl AsRef<str>) {
    let stderr = stderr_of(out);
    assert!(!out.status.success(), "it succeeded: {stderr}");
    assert!(stderr.contains(text.as_ref()), "{stderr}");
}

fn assert_ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        stderr_of(out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cachet docker start --name NAME --image IMAGE EXTRA...`.
fn docker_start(name: &str, image: &str, extra: &[&str]) -> Output {
    let mut args = vec!["start", "--name", name, "--image", image];
    args.extend_from_slice(extra);
    cachet_docker(&args)
}

/// Starts a server container with `cachet docker start` on a free host port; returns the port.
/// `cachet docker start` publishes the port it is given, so it gets one that was free a moment
/// ago, and another when it says that one was taken meanwhile (it removes the half-started
/// container then, so the same name can be tried again).
fn start_server(cleanup: &mut Cleanup, name: &str, extra: &[&str]) -> u16 {
    let image = ensure_image();
    cleanup.containers.push(name.to_string());
    bind_with_retry("cachet docker start", |port| {
        let port_s = port.to_string();
        let out = docker_start(name, image, &[&["--port", &port_s][..], extra].concat());
        if !out.status.success() && stderr_of(&out).contains("is already in use on") {
            return Bind::Taken;
        }
        assert_ok(&out, "cachet docker start");
        Bind::Bound(port)
    })
}

/// An internal network and a server container on it; returns their names.
fn server_on_internal_network(cleanup: &mut Cleanup) -> (String, String) {
    let net = internal_network(cleanup);
    let name = unique("srv");
    start_server(cleanup, &name, &["--network", &net]);
    (net, name)
}

/// One HTTP/1.0 request to 127.0.0.1:port; returns the status and body.
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(raw.len());
    Ok((status, raw[at..].to_vec()))
}

/// `docker inspect -f FORMAT NAME`.
fn inspect(name: &str, format: &str) -> String {
    docker_ok(&["inspect", "-f", format, name])
}

/// A client container: the host's toolchain and crates read-only, cachet as the wrapper, the
/// project at /build/service (the same path in every client: keys depend on it), its own
/// CACHET_DIR mounted from the host so the test can read the journal.
struct Client {
    tmp: tempfile::TempDir,
}

impl Client {
    fn new() -> Client {
        let tmp = tempfile::tempdir().unwrap();
        copy_tree(&workload_service(), &tmp.path().join("service"));
        // The container builds offline from the host's ~/.cargo/registry: download the crates
        // first (a no-op once they are there). On a fresh machine no other test has fetched
        // them yet when the Docker tests start (they sort before `workload`).
        let out = Command::new("cargo")
            .args(["fetch", "--locked"])
            .current_dir(tmp.path().join("service"))
            .output()
            .unwrap();
        assert_ok(&out, "cargo fetch of the workload");
        std::fs::create_dir_all(tmp.path().join("cachet-dir")).unwrap();
        Client { tmp }
    }

    fn cache(&self) -> PathBuf {
        self.tmp.path().join("cachet-dir")
    }

    /// `docker run` arguments before the image.
    fn run_args(&self, name: &str, network: &str) -> Vec<String> {
        let home = std::env::var("HOME").unwrap();
        let v = |host: String, guest: &str, ro: bool| {
            format!("{host}:{guest}{}", if ro { ":ro" } else { "" })
        };
        let mut a: Vec<String> = vec![
            "run".into(),
            "--name".into(),
            name.into(),
            "--network".into(),
            network.into(),
        ];
        for m in [
            v(format!("{home}/.rustup"), "/root/.rustup", true),
            v(format!("{home}/.cargo/bin"), "/root/.cargo/bin", true),
            v(
                format!("{home}/.cargo/registry"),
                "/root/.cargo/registry",
                true,
            ),
            v(
                cachet_bin().display().to_string(),
                "/usr/local/bin/cachet",
                true,
            ),
            v(
                self.tmp.path().join("service").display().to_string(),
                "/build/service",
                false,
            ),
            v(self.cache().display().to_string(), "/cachet-dir", false),
        ] {
            a.extend(["--volume".into(), m]);
        }
        for e in [
            "PATH=/root/.cargo/bin:/usr/local/bin:/usr/bin:/bin",
            "RUSTC_WRAPPER=/usr/local/bin/cachet",
            "CACHET_SERVER=http://cachet:4226",
            "CACHET_DIR=/cachet-dir",
            "CARGO_INCREMENTAL=0",
            "CARGO_TERM_COLOR=never",
        ] {
            a.extend(["--env".into(), e.into()]);
        }
        a.extend(["--workdir".into(), "/build/service".into()]);
        a
    }

    /// A new client and the command that runs its container, named uniquely after `what`
    /// (removed by `cleanup`), on `network`.
    fn start(cleanup: &mut Cleanup, what: &str, network: &str) -> (Client, Command) {
        let client = Client::new();
        let name = unique(what);
        cleanup.containers.push(name.clone());
        let build = client.build_command(&name, network);
        (client, build)
    }

    /// The command that builds the workload in container `name` and runs it.
    fn build_command(&self, name: &str, network: &str) -> Command {
        let mut cmd = Command::new("docker");
        cmd.args(self.run_args(name, network)).args([
            &client_base(),
            "sh",
            "-c",
            "cargo build --offline --locked && ./target/debug/wl-service",
        ]);
        cmd
    }

    fn journal(&self) -> Vec<journal::Record> {
        journal::read(&self.cache())
    }
}

/// An internal network with the server attached as `cachet`.
fn internal_network(cleanup: &mut Cleanup) -> String {
    let net = unique("int");
    docker_ok(&["network", "create", "--internal", &net]);
    cleanup.networks.push(net.clone());
    net
}

#[test]
fn docker_image_builds_runs_as_uid_1000_and_turns_healthy() {
    let mut cleanup = Cleanup::default();
    let name = unique("srv");
    let port = start_server(&mut cleanup, &name, &[]);
    assert_eq!(inspect(&name, "{{.State.Health.Status}}"), "healthy");
    assert_eq!(inspect(&name, "{{.Config.User}}"), "1000:1000");
    let top = docker_ok(&["top", &name, "-o", "uid,pid,cmd"]);
    assert!(
        top.lines()
            .skip(1)
            .all(|l| l.trim_start().starts_with("1000 ")),
        "every process runs as uid 1000:\n{top}"
    );
    let (status, body) = http(port, "GET", "/healthz", b"").unwrap();
    assert_eq!((status, String::from_utf8_lossy(&body).trim()), (200, "ok"));
    // The image is FROM scratch: the health check is cachet itself.
    assert_eq!(
        inspect(&name, "{{json .Config.Healthcheck.Test}}"),
        r#"["CMD","/usr/local/bin/cachet","healthcheck"]"#
    );
}

#[test]
fn docker_cli_subcommands_and_their_errors_say_what_to_do() {
    let mut cleanup = Cleanup::default();
    let name = unique("cli");
    // Docker missing: no `docker` on PATH.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(cachet_bin())
        .args(["docker", "status", "--name", &name])
        .env("PATH", empty.path())
        .output()
        .unwrap();
    assert_fails_saying(&out, "docker is not installed");
    // Daemon down.
    let out = Command::new(cachet_bin())
        .args(["docker", "status", "--name", &name])
        .env(
            "DOCKER_HOST",
            format!("unix://{}/dead.sock", empty.path().display()),
        )
        .output()
        .unwrap();
    assert_fails_saying(&out, "Docker daemon is not reachable");
    // Image missing.
    let out = docker_start(&name, "cachet-missing:nope", &[]);
    assert_fails_saying(&out, "is not present: build it with `cachet docker build");
    ensure_image();
    // Port taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port().to_string();
    let out = docker_start(&name, TEST_IMAGE, &["--port", &taken_port]);
    assert_fails_saying(&out, format!("port {taken_port} is already in use"));
    // A data directory uid 1000 cannot write.
    let data = empty.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(4242), Some(4242)).unwrap();
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let out = docker_start(
        &name,
        TEST_IMAGE,
        &["--mode", "persistent", "--data-dir", data.to_str().unwrap()],
    );
    assert_fails_saying(
        &out,
        format!("run `sudo chown -R 1000:1000 {}`", data.display()),
    );
    // Status of a container that does not exist: exit 1.
    let out = cachet_docker(&["status", "--name", &name]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("does not exist"));

    // Start, then the name is in use.
    let port = start_server(&mut cleanup, &name, &[]);
    let out = docker_start(&name, TEST_IMAGE, &["--port", "0"]);
    assert_fails_saying(&out, format!("the name {name} is already in use"));
    // Status: healthy, with the server's stats.
    assert_eq!(
        http(port, "PUT", "/cachet/v1/e/abc", b"hello").unwrap().0,
        201
    );
    let status = assert_ok(&cachet_docker(&["status", "--name", &name]), "status");
    assert!(status.contains("health:     healthy"), "{status}");
    assert!(status.contains("\"objects\": 1"), "{status}");
    // Logs, filtered by level.
    let logs = assert_ok(
        &cachet_docker(&["logs", "--name", &name, "--level", "warn", "--since", "5m"]),
        "logs",
    );
    assert!(logs.contains("NO TOKENS CONFIGURED"), "{logs}");
    assert!(
        !logs.contains("listening"),
        "info lines are filtered out: {logs}"
    );
    // Purge empties the cache through the admin API.
    let purged = assert_ok(&cachet_docker(&["purge", "--name", &name]), "purge");
    assert!(purged.contains("purged 1 objects"), "{purged}");
    assert_eq!(http(port, "GET", "/cachet/v1/e/abc", b"").unwrap().0, 404);
    // Stop: gone; status says so with exit 1.
    assert_ok(&cachet_docker(&["stop", "--name", &name]), "stop");
    assert!(!cachet_docker(&["status", "--name", &name]).status.success());
    assert!(docker(&["container", "inspect", &name]).status.code() != Some(0));
    // Unhealthy/stopped containers make status fail too.
    let out = cachet_docker(&["stop", "--name", &name]);
    assert!(
        stderr_of(&out).contains("there is no container named"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn docker_second_client_container_gets_remote_hits_for_every_crate() {
    let mut cleanup = Cleanup::default();
    let (net, _) = server_on_internal_network(&mut cleanup);

    let (first, mut build) = Client::start(&mut cleanup, "client1", &net);
    let out = build.output().unwrap();
    let cold_output = assert_ok(&out, "cold build in a client container");
    let compiled = crates_with(&first.journal(), Outcome::Miss);
    assert!(
        compiled.len() > 20,
        "the cold build stored its crates: {compiled:?}"
    );

    let (second, mut build) = Client::start(&mut cleanup, "client2", &net);
    let out = build.output().unwrap();
    let warm_output = assert_ok(&out, "warm build in a second client container");
    assert_eq!(
        warm_output, cold_output,
        "the restored program prints the same"
    );
    assert_all_remote_hits(&second.journal(), &compiled, "client");
}

#[test]
fn docker_killed_server_does_not_fail_a_client_build() {
    let mut cleanup = Cleanup::default();
    let (net, name) = server_on_internal_network(&mut cleanup);
    let (client, mut build) = Client::start(&mut cleanup, "client", &net);
    let child = build
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill once the build has stored a few crates on the server.
    wait_for(
        "the client build to store 5 crates",
        Duration::from_secs(300),
        || {
            client
                .journal()
                .iter()
                .filter(|r| r.outcome == Outcome::Miss)
                .count()
                >= 5
        },
    );
    docker_ok(&["kill", &name]);
    // `--restart unless-stopped` does not restart a killed container; make sure it is down.
    docker_ok(&["update", "--restart", "no", &name]);
    let out = child.wait_with_output().unwrap();
    let stdout = assert_ok(&out, "client build with the server killed mid-build");
    assert!(stdout.contains("\"words\":2"), "{stdout}");
}

#[test]
fn docker_client_off_the_internal_network_cannot_reach_the_server() {
    let mut cleanup = Cleanup::default();
    let net = internal_network(&mut cleanup);
    let outside = unique("outside");
    docker_ok(&["network", "create", &outside]);
    cleanup.networks.push(outside.clone());
    let name = unique("srv");
    start_server(&mut cleanup, &name, &["--network", &net]);
    let ip = inspect(
        &name,
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
    );
    let base = client_base();
    let probe = |network: &str, url: &str| {
        let out = docker(&[
            "run",
            "--rm",
            "--network",
            network,
            &base,
            "curl",
            "-sS",
            "-m",
            "5",
            url,
        ]);
        out.status.success()
    };
    assert!(
        probe(&net, "http://cachet:4226/healthz"),
        "a client on the internal network reaches the server"
    );
    assert!(
        !probe(&outside, "http://cachet:4226/healthz"),
        "the name does not resolve outside"
    );
    assert!(
        !probe(&outside, &format!("http://{ip}:4226/healthz")),
        "the internal address is not routable from outside"
    );
}

#[test]
fn docker_persistent_store_survives_a_restart_and_purge_asks_first() {
    let mut cleanup = Cleanup::default();
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("store");
    let name = unique("persist");
    let dir_s = dir.to_str().unwrap().to_string();
    let port = start_server(
        &mut cleanup,
        &name,
        &["--mode", "persistent", "--data-dir", &dir_s],
    );
    assert_eq!(
        http(port, "PUT", "/cachet/v1/e/kept", b"survives")
            .unwrap()
            .0,
        201
    );
    assert_ok(&cachet_docker(&["stop", "--name", &name]), "stop");
    let port = start_server(
        &mut cleanup,
        &name,
        &["--mode", "persistent", "--data-dir", &dir_s],
    );
    let (status, body) = http(port, "GET", "/cachet/v1/e/kept", b"").unwrap();
    assert_eq!((status, body.as_slice()), (200, &b"survives"[..]));
    // A persistent store is only purged after a confirmation.
    let out = Command::new(cachet_bin())
        .args(["docker", "purge", "--name", &name])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_fails_saying(&out, "pass --yes");
    assert_eq!(http(port, "GET", "/cachet/v1/e/kept", b"").unwrap().0, 200);
    assert_ok(
        &cachet_docker(&["purge", "--name", &name, "--yes"]),
        "purge --yes",
    );
    assert_eq!(http(port, "GET", "/cachet/v1/e/kept", b"").unwrap().0, 404);
}

#[test]
fn docker_server_under_256m_survives_large_concurrent_uploads() {
    let mut cleanup = Cleanup::default();
    let name = unique("mem");
    let port = start_server(&mut cleanup, &name, &["--memory", "256m"]);
    let body: Vec<u8> = (0..80u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let body = std::sync::Arc::new(body);
    let uploads: Vec<_> = (0..4)
        .map(|i| {
            let body = body.clone();
            std::thread::spawn(move || http(port, "PUT", &format!("/cachet/v1/big/{i}"), &body))
        })
        .collect();
    for u in uploads {
        let (status, _) = u.join().unwrap().expect("upload answered");
        assert_eq!(status, 201);
    }
    assert_eq!(inspect(&name, "{{.State.OOMKilled}}"), "false");
    assert_eq!(inspect(&name, "{{.State.Status}}"), "running");
    assert_eq!(inspect(&name, "{{.RestartCount}}"), "0");
    let (status, got) = http(port, "GET", "/cachet/v1/big/3", b"").unwrap();
    assert_eq!(status, 200);
    assert!(got == *body, "the object reads back intact");
    wait_for(
        "the server to report healthy",
        Duration::from_secs(30),
        || cachet_docker(&["status", "--name", &name]).status.success(),
    );
}

#[test]
fn docker_grafana_dashboard_uses_only_exported_metric_names() {
    let mut cleanup = Cleanup::default();
    let name = unique("metrics");
    let port = start_server(&mut cleanup, &name, &[]);
    // One request of each kind so every series exists.
    http(port, "PUT", "/cachet/v1/e/m", b"x").unwrap();
    http(port, "GET", "/cachet/v1/e/m", b"").unwrap();
    let (status, metrics) = http(port, "GET", "/metrics", b"").unwrap();
    assert_eq!(status, 200);
    let metrics = String::from_utf8(metrics).unwrap();
    let exported: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docker/grafana/cachet-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut used = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("cachet_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                used.push(name);
            }
        }
    }
    assert!(used.len() >= 10, "{used:?}");
    for name in &used {
        assert!(
            exported.contains(name.as_str()),
            "the dashboard queries {name}, which /metrics does not export: {exported:?}"
        );
    }
}

#[test]
fn healthcheck_exits_0_for_a_live_server_and_1_otherwise() {
    let server = crate::util::ServerProcess::start(&["--storage", "ephemeral"]);
    let out = Command::new(cachet_bin())
        .arg("healthcheck")
        .env("CACHET_LISTEN", format!("0.0.0.0:{}", server.port))
        .output()
        .unwrap();
    assert_ok(&out, "healthcheck of a live server");
    let dead = cachet_test_support::closed_port().to_string();
    let out = Command::new(cachet_bin())
        .args(["healthcheck", "--url", &format!("http://127.0.0.1:{dead}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("is the server running?"),
        "{}",
        stderr_of(&out)
    );
}
