//! The dashboard's pages in a real browser: Debian's chromium, headless, driven over the W3C
//! WebDriver protocol by chromedriver (a small client below, on the `ureq` the tests already
//! use). Every page must load with no console error and no request leaving the host, show the
//! numbers the JSON API reports, and leave a screenshot in `target/ui-screenshots/`. Data
//! arrives as real call-report batches POSTed to a real server.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use cachet_core::report::{MissCause, Outcome};
use serde_json::{json, Value};

use crate::dashboard::{act_as_sccache, api, batch, post, report};
use crate::util::{ephemeral, require_tool, send, start, wait_for, with_tokens};

/// A chromedriver process and one browser session; both end on drop.
struct Browser {
    driver: Child,
    base: String,
    session: String,
}

impl Browser {
    fn start() -> Browser {
        let chromedriver = require_tool(
            "CACHET_TEST_CHROMEDRIVER",
            "chromedriver",
            &[PathBuf::from("/usr/bin/chromedriver")],
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {}: {e}", chromedriver.display()));
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
        };
        wait_for("chromedriver to answer", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                         "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--disable-default-apps"],
            },
            "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
        }}});
        let v = browser.call("POST", "/session", Some(caps));
        browser.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_string();
        browser
    }

    /// One WebDriver command; returns its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let body = body.map(|b| b.to_string().into_bytes());
        let r = send(method, &url, body.as_deref(), None);
        let v: Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|_| panic!("{method} {path}: {}", String::from_utf8_lossy(&r.body)));
        assert!(r.status < 300, "{method} {path} failed: {v}");
        v.get("value").cloned().unwrap_or(Value::Null)
    }

    fn session(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    fn goto(&self, url: &str) {
        self.session("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs JavaScript in the page (the test's own probes; the pages carry none).
    fn eval(&self, script: &str) -> Value {
        self.session(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    fn text(&self, css: &str) -> String {
        let s = format!(
            "const e = document.querySelector({}); return e ? e.textContent : null;",
            serde_json::to_string(css).unwrap()
        );
        self.eval(&s)
            .as_str()
            .unwrap_or_else(|| panic!("no element {css} on the page"))
            .trim()
            .to_string()
    }

    fn attr(&self, css: &str, name: &str) -> String {
        let s = format!(
            "const e = document.querySelector({}); return e ? e.getAttribute({}) : null;",
            serde_json::to_string(css).unwrap(),
            serde_json::to_string(name).unwrap()
        );
        self.eval(&s)
            .as_str()
            .unwrap_or_else(|| panic!("no {name} on {css}"))
            .to_string()
    }

    /// Asserts that the first element matching `css` carries `value` (a number the API
    /// reported) in its `data-{name}` attribute.
    fn assert_data(&self, css: &str, name: &str, value: &Value) {
        assert_eq!(
            self.attr(css, &format!("data-{name}")),
            value.to_string(),
            "{css}"
        );
    }

    /// Opens `page` of the dashboard at `base`, checks that it loaded clean, and returns what
    /// the API answers at `endpoint`, to compare with.
    fn open(&self, base: &str, page: &str, endpoint: &str) -> Value {
        self.goto(&format!("{base}{page}"));
        self.assert_clean(page, base);
        api(base, endpoint, None).1
    }

    fn count(&self, css: &str) -> u64 {
        let s = format!(
            "return document.querySelectorAll({}).length;",
            serde_json::to_string(css).unwrap()
        );
        self.eval(&s).as_u64().unwrap()
    }

    fn body(&self) -> String {
        self.eval("return document.body.innerText;")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Log entries of a type (`browser`: the console; `performance`: DevTools events).
    fn log(&self, kind: &str) -> Vec<Value> {
        self.session("POST", "/se/log", Some(json!({ "type": kind })))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Fails on any console error, and on any request to anything but `host`.
    fn assert_clean(&self, page: &str, host: &str) {
        let errors: Vec<_> = self
            .log("browser")
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .collect();
        assert!(errors.is_empty(), "console errors on {page}: {errors:?}");
        for entry in self.log("performance") {
            let Ok(msg) = serde_json::from_str::<Value>(entry["message"].as_str().unwrap_or(""))
            else {
                continue;
            };
            if msg["message"]["method"] != "Network.requestWillBeSent" {
                continue;
            }
            let url = msg["message"]["params"]["request"]["url"]
                .as_str()
                .unwrap_or("");
            assert!(
                url.starts_with(host) || url.starts_with("data:"),
                "{page} requested {url}, off the host"
            );
        }
    }

    fn screenshot(&self, name: &str) {
        let b64 = self.session("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("screenshot"))
            .expect("base64");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let url = format!("{}/session/{}", self.base, self.session);
            let _ = send("DELETE", &url, None, None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `<workspace>/target/ui-screenshots` (or under `CARGO_TARGET_DIR`).
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("ui-screenshots")
}

/// A team's worth of reports: two clients, hits, misses of several causes, a pass-through.
fn populate(base: &str, ns: &str, auth: Option<&str>, prefix: &str) {
    let mut reports = Vec::new();
    for (i, krate) in ["serde", "tokio", "regex", "app"].iter().enumerate() {
        let krate = format!("{prefix}{krate}");
        for client in ["laptop-ann", "ci-runner-1"] {
            let client = format!("{prefix}{client}");
            reports.push(report(&krate, &client, Outcome::HitRemote, None));
            reports.push(report(&krate, &client, Outcome::HitLocal, None));
            if i % 2 == 0 {
                let cause = [MissCause::SourceFile, MissCause::Argument][i / 2];
                reports.push(report(&krate, &client, Outcome::Miss, Some(cause)));
            }
        }
    }
    reports.push(report(
        &format!("{prefix}app"),
        &format!("{prefix}laptop-ann"),
        Outcome::PassThrough,
        None,
    ));
    assert_eq!(post(base, ns, &batch(&reports), auth).status, 204);
}

#[test]
fn every_page_loads_clean_and_shows_the_apis_numbers() {
    let server = start(ephemeral());
    let base = server.url("");
    populate(&base, "team", None, "");
    act_as_sccache(&server);
    let browser = Browser::start();

    let summary = browser.open(&base, "/ui", "summary");
    assert_eq!(
        browser.text("#total-calls"),
        summary["total"]["calls"].to_string()
    );
    browser.assert_data("#total-saved", "value", &summary["total"]["saved_ms"]);
    browser.assert_data("#total-lost", "value", &summary["total"]["lost_ms"]);
    browser.assert_data("#saved-week", "ms", &summary["total"]["saved_ms"]);
    assert_eq!(browser.attr("#server-gets", "data-value"), "1");
    assert_eq!(
        browser.text("tr[data-namespace=team] [data-k=calls]"),
        summary["namespaces"][1]["calls"].to_string()
    );
    assert!(browser.body().contains("a source file changed"));
    assert!(browser.count("svg") >= 2, "charts are drawn");
    browser.screenshot("overview");

    let crates = browser.open(&base, "/ui/crates", "crates");
    let list = crates["crates"].as_array().unwrap();
    assert_eq!(browser.count("tr[data-crate]"), list.len() as u64);
    assert_eq!(
        browser.attr("tr[data-crate]", "data-crate"),
        list[0]["crate"].as_str().unwrap()
    );
    browser.assert_data(
        "tr[data-crate] [data-k=lost_ms]",
        "value",
        &list[0]["lost_ms"],
    );
    browser.screenshot("crates");
    browser.goto(&server.url("/ui/crates?sort=name"));
    assert_eq!(browser.attr("tr[data-crate]", "data-crate"), "app");

    let one = browser.open(&base, "/ui/crate/serde", "crates/serde");
    assert_eq!(
        browser.text("#crate-calls"),
        one["stats"]["calls"].to_string()
    );
    assert_eq!(
        browser.count("#calls tr") - 1,
        one["calls"].as_array().unwrap().len() as u64
    );
    assert!(browser.body().contains("a source file changed"));
    browser.screenshot("crate");

    let clients = browser.open(&base, "/ui/clients", "clients");
    let list = clients["clients"].as_array().unwrap();
    assert_eq!(browser.count("tr[data-client]"), list.len() as u64);
    for c in list {
        let name = c["client"].as_str().unwrap();
        assert_eq!(
            browser.text(&format!("tr[data-client={name:?}] [data-k=calls]")),
            c["calls"].to_string()
        );
    }
    browser.screenshot("clients");

    let storage = browser.open(&base, "/ui/storage", "storage");
    browser.assert_data("#objects", "value", &storage["usage"]["objects"]);
    browser.assert_data("#evictions", "value", &storage["evictions"]["count"]);
    assert!(browser.text("#not-seen").contains("Not seen by the server"));
    browser.screenshot("storage");

    // Dark mode is the browser's choice (prefers-color-scheme).
    browser.session(
        "POST",
        "/goog/cdp/execute",
        Some(json!({"cmd": "Emulation.setEmulatedMedia", "params": {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}})),
    );
    browser.goto(&server.url("/ui"));
    let bg = browser.eval("return getComputedStyle(document.body).backgroundColor;");
    assert_eq!(bg, "rgb(18, 21, 27)", "dark background in dark mode");
    browser.screenshot("overview-dark");
}

#[test]
fn with_tokens_no_token_no_page_and_a_read_token_sees_its_namespace_only() {
    let server = start(with_tokens(
        "team-a-token read team-a\nteam-b-token read team-b\n",
    ));
    let base = server.url("");
    populate(&base, "team-a", Some("Bearer team-a-token"), "a-");
    populate(&base, "team-b", Some("Bearer team-b-token"), "b-");
    // No token: no page, no numbers (also without a browser).
    let r = send("GET", &server.url("/ui/crates"), None, None);
    assert_eq!(r.status, 401);
    assert!(!String::from_utf8_lossy(&r.body).contains("a-serde"));

    let browser = Browser::start();
    browser.goto(&server.url("/ui/crates"));
    let text = browser.body();
    assert!(
        text.contains("Sign in") && !text.contains("a-serde") && !text.contains("b-serde"),
        "{text}"
    );
    // Sign in through the form with team A's read token: the cookie carries it from then on.
    browser.eval(
        "document.querySelector('input[name=token]').value = 'team-a-token'; document.querySelector('form').submit(); return null;",
    );
    wait_for(
        "the overview after signing in",
        Duration::from_secs(20),
        || {
            browser.eval("return document.querySelector('#total-calls') !== null;")
                == Value::Bool(true)
        },
    );
    // The 401 of the first visit is in the console log: read it away, then check each page.
    browser.log("browser");
    browser.log("performance");
    for page in ["/ui", "/ui/crates", "/ui/clients", "/ui/crate/b-serde"] {
        browser.goto(&server.url(page));
        browser.assert_clean(page, &base);
        let text = browser.body();
        assert!(
            !text.contains("b-serde") || page.ends_with("b-serde"),
            "{page} shows team B's crates: {text}"
        );
        assert!(
            !text.contains("b-laptop-ann") && !text.contains("b-ci-runner-1"),
            "{page} shows team B's clients"
        );
        assert!(!text.contains("team-b"), "{page} names team B");
    }
    browser.goto(&server.url("/ui/crates"));
    assert!(browser.body().contains("a-serde"));
    assert_eq!(browser.count("tr[data-crate^=\"b-\"]"), 0);
    browser.goto(&server.url("/ui/crate/b-serde"));
    assert_eq!(
        browser.count("#calls tr"),
        0,
        "team B's calls are not listed"
    );
    // Asking for team B by name is refused.
    browser.goto(&server.url("/ui/crates?namespace=team-b"));
    assert!(!browser.body().contains("b-serde"));
}
