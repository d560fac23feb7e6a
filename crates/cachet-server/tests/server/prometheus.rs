//! A real Prometheus scrapes `/metrics` and the series arrive.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::{ephemeral, free_port, get, put, require_tool, start, wait_for};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn prometheus_scrapes_metrics() {
    let prometheus = require_tool("CACHET_TEST_PROMETHEUS", "prometheus", &[]);
    let server = start(ephemeral());
    put(&server.url("/cachet/k"), b"v");
    get(&server.url("/cachet/k"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: cachet\n    \
             static_configs:\n      - targets: ['{}']\n",
            server.addr
        ),
    )
    .expect("config");
    let port = free_port();
    let _prom = Killed(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let query = |q: &str| -> serde_json::Value {
        let url = format!("http://127.0.0.1:{port}/api/v1/query?query={q}");
        match crate::util::agent().get(&url).call() {
            Ok(mut r) => serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default())
                .unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        }
    };
    wait_for(
        "Prometheus to scrape cachet",
        Duration::from_secs(90),
        || {
            query("cachet_uptime_seconds")["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        },
    );
    let hits = query("cachet_cache_hits_total");
    assert_eq!(hits["data"]["result"][0]["value"][1], "1", "{hits}");
    let requests = query("cachet_requests_total%7Bmethod%3D%22PUT%22%7D");
    assert_eq!(
        requests["data"]["result"][0]["metric"]["route"], "/{namespace}/{key}",
        "{requests}"
    );
}
