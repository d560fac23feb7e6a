//! Unmodified sccache 0.19 using cachet as its WebDAV backend: a second, fresh sccache
//! (new local cache dir, new daemon) gets its Rust compilations from a token-protected cachet.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cachet_test_support::run_ok;

use crate::util::{get, require_tool, start, wait_for, with_tokens};

fn sccache() -> PathBuf {
    let fallback = dirs::home_dir()
        .map(|h| h.join(".cache/cachet-ci/sccache/bin/sccache"))
        .unwrap_or_default();
    require_tool("CACHET_TEST_SCCACHE", "sccache", &[fallback])
}

/// A command with no inherited sccache or wrapper settings.
fn clean_command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("SCCACHE_")
            || k.starts_with("CACHET_")
            || k.contains("RUSTC_WRAPPER")
            || k == "CARGO_TARGET_DIR"
            || k == "RUSTC_WORKSPACE_WRAPPER"
            || k == "CARGO_BUILD_TARGET_DIR"
        {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// One sccache client and its daemon. The daemon listens on a unix socket in the client's own
/// directory (`SCCACHE_SERVER_UDS`), not on a TCP port the test would have to hand it.
struct Client {
    sccache: PathBuf,
    dir: PathBuf,
    endpoint: String,
}

impl Client {
    fn cmd(&self, program: &Path) -> Command {
        let mut c = clean_command(program);
        c.env("SCCACHE_DIR", &self.dir)
            .env("SCCACHE_SERVER_UDS", self.dir.join("server.sock"))
            .env("SCCACHE_WEBDAV_ENDPOINT", &self.endpoint)
            .env("SCCACHE_WEBDAV_USERNAME", "ci")
            .env("SCCACHE_WEBDAV_PASSWORD", "sccache-secret-1")
            .env("SCCACHE_IDLE_TIMEOUT", "0")
            .env("SCCACHE_ERROR_LOG", self.dir.join("error.log"))
            .env("SCCACHE_LOG", "debug");
        c
    }

    fn start(&self) {
        std::fs::create_dir_all(&self.dir).expect("sccache dir");
        run_ok(self.cmd(&self.sccache).arg("--start-server"));
    }

    fn build(&self, project: &Path, target: &Path) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        run_ok(
            self.cmd(Path::new(&cargo))
                .args(["build", "--offline", "--quiet"])
                .current_dir(project)
                .env("RUSTC_WRAPPER", &self.sccache)
                .env("CARGO_TARGET_DIR", target)
                .env("CARGO_INCREMENTAL", "0"),
        );
    }

    fn stats(&self) -> serde_json::Value {
        let out = run_ok(
            self.cmd(&self.sccache)
                .args(["--show-stats", "--stats-format", "json"]),
        );
        serde_json::from_slice(&out.stdout).expect("sccache stats JSON")
    }

    fn stop(&self) {
        let _ = self.cmd(&self.sccache).arg("--stop-server").output();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop();
    }
}

fn count(stats: &serde_json::Value, field: &str) -> u64 {
    stats["stats"][field]["counts"]
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
        .unwrap_or(0)
}

fn write_project(dir: &Path) {
    std::fs::create_dir_all(dir.join("src")).expect("mkdir");
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"cachet-sccache-probe\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nitoa = \"1\"\n",
    )
    .expect("Cargo.toml");
    std::fs::write(
        dir.join("src/lib.rs"),
        "pub fn show(n: u64) -> String { itoa::Buffer::new().format(n).to_string() }\n",
    )
    .expect("lib.rs");
}

#[test]
fn sccache_gets_hits_from_cachet_over_webdav() {
    let sccache = sccache();
    // Token-protected: sccache sends its WebDAV username/password as HTTP Basic.
    let server = start(with_tokens("sccache-secret-1 read,write sccache"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let project = tmp.path().join("project");
    let target = tmp.path().join("target");
    write_project(&project);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // Resolve and download the dependency once (online), so builds can run --offline.
    run_ok(
        clean_command(Path::new(&cargo))
            .arg("fetch")
            .current_dir(&project),
    );

    let endpoint = server.url("/sccache/");
    let first = Client {
        sccache: sccache.clone(),
        dir: tmp.path().join("sccache-a"),
        endpoint: endpoint.clone(),
    };
    first.start();
    first.build(&project, &target);
    let s = first.stats();
    assert!(count(&s, "cache_misses") >= 2, "first build compiles: {s}");
    assert_eq!(count(&s, "cache_errors"), 0, "no cache errors: {s}");
    // sccache writes to the backend in the background: wait for both crates to land.
    wait_for(
        "sccache's uploads to reach cachet",
        Duration::from_secs(60),
        || {
            let stats: serde_json::Value =
                serde_json::from_slice(&get(&server.url("/stats")).body).expect("stats");
            stats["objects"].as_u64().unwrap_or(0) >= 3 // two crates and .sccache_check
        },
    );
    first.stop();

    run_ok(
        clean_command(Path::new(&cargo))
            .args(["clean", "--quiet"])
            .current_dir(&project)
            .env("CARGO_TARGET_DIR", &target),
    );
    let second = Client {
        sccache,
        dir: tmp.path().join("sccache-b"),
        endpoint,
    };
    second.start();
    second.build(&project, &target);
    let s = second.stats();
    eprintln!(
        "fresh sccache client: {} hits, {} misses",
        count(&s, "cache_hits"),
        count(&s, "cache_misses")
    );
    let log = std::fs::read_to_string(second.dir.join("error.log")).unwrap_or_default();
    assert!(
        count(&s, "cache_hits") >= 2,
        "the fresh client must hit cachet: {s}\n{}",
        log.lines().rev().take(40).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(count(&s, "cache_misses"), 0, "{s}");
}
