//! A real Prometheus scrapes `/metrics` and the series arrive.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::{ephemeral, get, put, require_tool, start, wait_for};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The port in Prometheus' `msg="Listening on" ... address=HOST:PORT` log line.
fn listening_port(log: &str) -> Option<u16> {
    let line = log.lines().find(|l| l.contains("msg=\"Listening on\""))?;
    let address = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("address="))?;
    address.trim_matches('"').rsplit(':').next()?.parse().ok()
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
    // Port 0: Prometheus binds a port of the system's choosing and logs it
    // (`msg="Listening on" ... address=127.0.0.1:PORT`), so no port is handed to it.
    let log = tmp.path().join("prometheus.log");
    let mut prom = Killed(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("prometheus.log"))
            .spawn()
            .expect("start prometheus"),
    );
    let mut port = 0;
    wait_for(
        "Prometheus to log its port",
        Duration::from_secs(60),
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Ok(Some(status)) = prom.0.try_wait() {
                panic!("prometheus exited: {status}\n{text}");
            }
            port = listening_port(&text).unwrap_or(0);
            port != 0
        },
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
