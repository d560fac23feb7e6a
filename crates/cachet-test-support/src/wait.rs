//! Bounded polling: a test waits for something a user would see (a port file, an answer, a
//! counter) and fails with what it waited for, never sleeps and hopes.

use std::path::Path;
use std::time::{Duration, Instant};

/// Polls `cond` until it holds, failing the test after `timeout` with `what`. The pause between
/// polls grows from 10 ms to 50 ms: quick when the thing is quick, cheap when it is slow.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(10);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The last `lines` lines of the text file `path` (empty when it cannot be read), for a failure
/// message that shows what a child process said before it died.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
