//! `docker-compose.yml` on the real engine: the ephemeral store and `down -v`, the `metrics`
//! profile (Prometheus scraping the server), and the `ci` profile (the example CI runner
//! building a project through the cache).
//!
//! No image can be pulled here, so every image is built locally: the server by `cachet docker
//! build`, Prometheus by `docker/prometheus/build.sh` (Debian's binary on the debootstrapped
//! base), the CI runner by `docker/client/build.sh` with the host's toolchain mounted by
//! `docker/compose.host-toolchain.yml`. The tests use `docker compose` when the plugin is
//! installed, else Debian's `docker-compose` 1.29. Each test has its own compose project, taken
//! down with its containers, networks and volumes when the test ends (pass or fail).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cachet_wrapper::journal::{self, Outcome};

use cachet_test_support::wait_for;

use super::{assert_ok, docker_ok, ensure_image, http, setup_hint, unique};
use crate::util::{assert_all_remote_hits, copy_tree, crates_with, fixture};

/// The override publishing the server's port on the host.
const PUBLISH: &str = "docker/compose.publish.yml";
/// Host port 0 in a compose port mapping: Docker picks a free port when it publishes, and
/// [`Project::port`] reads it back, so the test hands no port to the engine. (A port that was
/// free when the test looked could be taken before `up` binds it.)
const PUBLISH_ANY: &str = "127.0.0.1:0";
/// The override mounting the host's toolchain and crates into the CI runner.
const HOST_TOOLCHAIN: &str = "docker/compose.host-toolchain.yml";
/// The CI-runner image the tests build once per run (docker/client/build.sh).
const CLIENT_IMAGE: &str = "cachet-client-test:local";
/// The Prometheus image (docker/prometheus/build.sh; rebuilt only when its inputs change).
const PROMETHEUS_IMAGE: &str = "cachet-prometheus:local";

/// The repository root, where `docker-compose.yml` is.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a repository script once per test process; panics with its output if it fails.
fn run_script_once(cell: &'static OnceLock<Result<(), String>>, script: &str, tag: &str) {
    let mut build = Command::new(repo().join(script));
    build.arg(tag).current_dir(repo());
    super::build_once(cell, script, build);
}

/// The Prometheus image, built from the host's Debian package when missing or outdated.
fn ensure_prometheus_image() -> &'static str {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    run_script_once(&BUILT, "docker/prometheus/build.sh", PROMETHEUS_IMAGE);
    PROMETHEUS_IMAGE
}

/// The CI-runner image with the static cachet that `cachet docker build` made.
fn ensure_client_image() -> &'static str {
    ensure_image();
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    run_script_once(&BUILT, "docker/client/build.sh", CLIENT_IMAGE);
    CLIENT_IMAGE
}

/// A compose project with a name unique to this test run, over `docker-compose.yml` and the
/// given override files. Dropping it takes everything down.
struct Project {
    name: String,
    files: Vec<&'static str>,
    env: Vec<(&'static str, String)>,
}

impl Project {
    fn new(files: &[&'static str], env: &[(&'static str, String)]) -> Project {
        Project {
            // docker-compose 1.29 keeps only [a-z0-9] of a project name.
            name: unique("compose").replace('-', ""),
            files: files.to_vec(),
            env: env.to_vec(),
        }
    }

    /// `docker compose` (the plugin) when it is installed, else `docker-compose`, with this
    /// project's name, files and environment.
    fn command(&self) -> Command {
        static PLUGIN: OnceLock<bool> = OnceLock::new();
        let plugin = *PLUGIN.get_or_init(|| {
            Command::new("docker")
                .args(["compose", "version"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        });
        let mut cmd = if plugin {
            let mut c = Command::new("docker");
            c.arg("compose");
            c
        } else {
            Command::new("docker-compose")
        };
        cmd.current_dir(repo())
            .args(["-p", &self.name, "-f", "docker-compose.yml"]);
        for f in &self.files {
            cmd.args(["-f", f]);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `compose ARGS`.
    fn run(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run docker compose ({e}): {}", setup_hint()))
    }

    /// `compose [--profile P] up -d SERVICES`, then waits until the server answers on its
    /// published port, which it returns (a new one after each `up`: see [`PUBLISH_ANY`]).
    /// (docker-compose 1.29 exits 0 after a usage error, so the wait is what tells that
    /// anything started.)
    fn up(&self, profile: Option<&str>, services: &[&str]) -> u16 {
        let mut args = match profile {
            Some(p) => vec!["--profile", p],
            None => vec![],
        };
        args.extend(["up", "-d"]);
        args.extend_from_slice(services);
        assert_ok(&self.run(&args), &format!("compose {args:?}"));
        let port = self.port("cachet", 4226);
        wait_for(
            "the compose server to answer /healthz",
            Duration::from_secs(60),
            || matches!(http(port, "GET", "/healthz", b""), Ok((200, _))),
        );
        port
    }

    /// The host port Docker published the container port `inside` of `service` on.
    fn port(&self, service: &str, inside: u16) -> u16 {
        let out = self.run(&["port", service, &inside.to_string()]);
        let text = assert_ok(&out, &format!("compose port {service} {inside}"));
        text.trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("compose port {service} {inside} printed {text:?}"))
    }

    /// The id of the container of `service`.
    fn container(&self, service: &str) -> String {
        let out = assert_ok(&self.run(&["ps", "-q", service]), "compose ps");
        let id = out.trim().to_string();
        assert!(!id.is_empty(), "compose has no container for {service}");
        id
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self
            .command()
            .args(["--profile", "metrics", "--profile", "ci"])
            .args(["down", "-v", "--remove-orphans", "-t", "5"])
            .output();
        // Whatever `down` left (a failed `run`, a service it did not know): by label.
        let label = format!("label=com.docker.compose.project={}", self.name);
        let ids = |args: &[&str]| -> Vec<String> {
            Command::new("docker")
                .args(args)
                .args(["-q", "--filter", &label])
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .split_whitespace()
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        for (list, remove) in [
            (&["ps", "-a"][..], &["rm", "-f", "-v"][..]),
            (&["network", "ls"], &["network", "rm"]),
            (&["volume", "ls"], &["volume", "rm", "-f"]),
        ] {
            for id in ids(list) {
                let _ = Command::new("docker").args(remove).arg(&id).output();
            }
        }
    }
}

/// Polls `f` every 250 ms until it returns `Ok`; after `timeout`, panics with its last error.
fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// Percent-encodes a query-string value.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET path` on Prometheus' HTTP API; the `data` of a successful answer.
fn prometheus_api(port: u16, path: &str) -> Result<serde_json::Value, String> {
    let (status, body) =
        http(port, "GET", path, b"").map_err(|e| format!("Prometheus does not answer: {e}"))?;
    let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        format!(
            "{path}: {status}, not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    })?;
    if status != 200 || doc["status"] != "success" {
        return Err(format!("{path}: {status} {doc}"));
    }
    Ok(doc["data"].clone())
}

/// An instant query; the samples' values.
fn query(port: u16, promql: &str) -> Result<Vec<f64>, String> {
    let data = prometheus_api(port, &format!("/api/v1/query?query={}", url_encode(promql)))?;
    Ok(data["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["value"][1].as_str()?.parse().ok())
        .collect())
}

#[test]
fn docker_compose_ephemeral_store_is_gone_after_down_v() {
    let image = ensure_image();
    let project = Project::new(
        &[PUBLISH],
        &[
            ("CACHET_IMAGE", image.to_string()),
            ("CACHET_PUBLISH", PUBLISH_ANY.to_string()),
        ],
    );
    let port = project.up(None, &["cachet"]);
    assert_eq!(
        super::inspect(
            &project.container("cachet"),
            "{{.HostConfig.RestartPolicy.Name}}"
        ),
        "unless-stopped"
    );
    assert_eq!(http(port, "PUT", "/cachet/v1/e/gone", b"x").unwrap().0, 201);
    // `down` alone keeps the named volume; `down -v` deletes it.
    assert_ok(&project.run(&["down"]), "compose down");
    let port = project.up(None, &["cachet"]);
    assert_eq!(http(port, "GET", "/cachet/v1/e/gone", b"").unwrap().0, 200);
    assert_ok(&project.run(&["down", "-v"]), "compose down -v");
    let volumes = docker_ok(&["volume", "ls", "-q"]);
    assert!(
        !volumes.contains(&format!("{}_cachet-data", project.name)),
        "{volumes}"
    );
    let port = project.up(None, &["cachet"]);
    assert_eq!(http(port, "GET", "/cachet/v1/e/gone", b"").unwrap().0, 404);
}

#[test]
fn docker_compose_metrics_profile_prometheus_scrapes_the_server() {
    let image = ensure_image();
    let prometheus = ensure_prometheus_image();
    let project = Project::new(
        &[PUBLISH],
        &[
            ("CACHET_IMAGE", image.to_string()),
            ("CACHET_PUBLISH", PUBLISH_ANY.to_string()),
            ("PROMETHEUS_IMAGE", prometheus.to_string()),
            // docker-compose.yml publishes 127.0.0.1:${PROMETHEUS_PORT}:9090: 0, any port.
            ("PROMETHEUS_PORT", "0".to_string()),
        ],
    );
    let port = project.up(Some("metrics"), &[]);
    let prom = project.port("prometheus", 9090);

    // The requests Prometheus must count: 3 uploads, 5 hits, 2 misses.
    for i in 0..3 {
        let path = format!("/cachet/v1/e/m{i}");
        assert_eq!(http(port, "PUT", &path, b"metric").unwrap().0, 201);
    }
    for i in 0..5 {
        let path = format!("/cachet/v1/e/m{}", i % 3);
        assert_eq!(http(port, "GET", &path, b"").unwrap().0, 200);
    }
    for i in 0..2 {
        let path = format!("/cachet/v1/e/absent{i}");
        assert_eq!(http(port, "GET", &path, b"").unwrap().0, 404);
    }

    // The shipped scrape config (15 s interval) reaches the server by its service name.
    poll(
        "Prometheus to scrape cachet:4226 (up == 1)",
        Duration::from_secs(120),
        || {
            let up = query(prom, r#"up{job="cachet",instance="cachet:4226"}"#)?;
            if up == [1.0] {
                return Ok(());
            }
            let targets = prometheus_api(prom, "/api/v1/targets")
                .map(|t| t["activeTargets"].to_string())
                .unwrap_or_else(|e| e);
            Err(format!("up = {up:?}; targets: {targets}"))
        },
    );
    // Scrapes made before the requests above show less; wait for one made after them.
    poll(
        "Prometheus to store the test's requests",
        Duration::from_secs(120),
        || {
            let one = |q: &str| -> Result<Vec<f64>, String> { query(prom, q) };
            let seen = (
                one("cachet_cache_hits_total")?,
                one("cachet_cache_misses_total")?,
                one(r#"sum(cachet_requests_total{method="PUT",status="201"})"#)?,
            );
            if seen == (vec![5.0], vec![2.0], vec![3.0]) {
                Ok(())
            } else {
                Err(format!("hits, misses, uploads = {seen:?}"))
            }
        },
    );

    // Every query of the Grafana dashboard is valid PromQL for this Prometheus, and the ones
    // that need no rate window (gauges) already have a sample.
    let path = repo().join("docker/grafana/cachet-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .map(|t| t["expr"].as_str().unwrap())
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    for expr in exprs {
        let samples = query(prom, expr)
            .unwrap_or_else(|e| panic!("the dashboard's query {expr} fails in Prometheus: {e}"));
        if !expr.contains('[') {
            assert!(!samples.is_empty(), "no sample for the dashboard's {expr}");
        }
    }
}

#[test]
fn docker_compose_ci_profile_runner_builds_through_the_cache_and_a_fresh_runner_hits() {
    let image = ensure_image();
    let client = ensure_client_image();
    let tmp = tempfile::tempdir().unwrap();
    // Two checkouts of a small workspace (two library crates, a build script, a program), each
    // built by its own runner container: fresh target directory, empty L1 (CACHET_DIR), the
    // same path /build/project.
    let src = tmp.path().join("src");
    copy_tree(&fixture("soundness"), &src);
    let out = Command::new("cargo")
        .args(["generate-lockfile", "--offline"])
        .current_dir(&src)
        .output()
        .unwrap();
    assert_ok(&out, "cargo generate-lockfile");
    for n in [1, 2] {
        copy_tree(&src, &tmp.path().join(format!("run{n}")));
        std::fs::create_dir(tmp.path().join(format!("cachet-dir{n}"))).unwrap();
    }
    let project = Project::new(
        &[PUBLISH, HOST_TOOLCHAIN],
        &[
            ("CACHET_IMAGE", image.to_string()),
            ("CACHET_PUBLISH", PUBLISH_ANY.to_string()),
            ("CACHET_CLIENT_IMAGE", client.to_string()),
        ],
    );
    // No `up` first: `run` starts the server (depends_on, once it is healthy).
    let ci_run = |n: u32| -> (Vec<journal::Record>, String) {
        let cache = tmp.path().join(format!("cachet-dir{n}"));
        let checkout = tmp.path().join(format!("run{n}"));
        let out = project
            .command()
            .env("CI_PROJECT", &checkout)
            .args(["--profile", "ci", "run", "--rm", "-T", "-e"])
            .arg("CACHET_DIR=/cachet-dir")
            .arg("-v")
            .arg(format!("{}:/cachet-dir", cache.display()))
            .arg("ci-runner")
            .output()
            .unwrap();
        assert_ok(
            &out,
            &format!("compose --profile ci run ci-runner (run {n})"),
        );
        let program = Command::new(checkout.join("target/debug/app"))
            .output()
            .unwrap();
        let printed = assert_ok(&program, "the program the runner built");
        (journal::read(&cache), printed)
    };
    // Published once `run` started the server.
    let port = std::cell::OnceCell::new();
    let stats = || -> serde_json::Value {
        let port = *port.get_or_init(|| project.port("cachet", 4226));
        let (status, body) = http(port, "GET", "/stats", b"").unwrap();
        assert_eq!(status, 200);
        serde_json::from_slice(&body).unwrap()
    };

    let (first, first_output) = ci_run(1);
    let compiled = crates_with(&first, Outcome::Miss);
    assert!(
        compiled.contains("core_lib") && compiled.contains("dep_lib"),
        "the first runner compiled and stored the libraries: {first:?}"
    );
    let before = stats();
    assert!(
        before["objects"].as_u64().unwrap() >= compiled.len() as u64,
        "the server holds what the first runner stored: {before}"
    );

    let (second, second_output) = ci_run(2);
    assert_eq!(
        second_output, first_output,
        "the restored program prints the same"
    );
    assert_all_remote_hits(&second, &compiled, "runner");
    let after = stats();
    let served = after["hits"].as_u64().unwrap() - before["hits"].as_u64().unwrap();
    assert!(
        served >= compiled.len() as u64,
        "the server counted the second runner's hits ({served}): {before} then {after}"
    );
}
