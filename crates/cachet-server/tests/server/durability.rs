//! Crashes and restarts with the real `cachet` binary: a server killed with SIGKILL in the
//! middle of an upload keeps its complete objects and never serves the partial one; an
//! `ephemeral` store starts empty; SIGTERM stops the server cleanly.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::util::{bytes, ephemeral, get, put, spawn_server, start, wait_for, ServerProcess};

/// Sends the headers of a PUT of `len` bytes to `path` and `part` of its body, then waits until
/// the server (storing in `dir`) has written some of it to a temporary file; returns the
/// connection, with the rest of the body still to send.
fn upload_in_flight(
    server: &ServerProcess,
    dir: &Path,
    path: &str,
    part: &[u8],
    len: usize,
) -> TcpStream {
    let mut s = TcpStream::connect(server.addr).expect("connect");
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n\r\n"
    )
    .expect("headers");
    s.write_all(part).expect("part of the body");
    let tmp = dir.join("tmp");
    wait_for(
        "the upload to reach the disk",
        Duration::from_secs(30),
        || {
            std::fs::read_dir(&tmp)
                .map(|d| {
                    d.flatten()
                        .any(|e| e.metadata().map(|m| m.len() > 0).unwrap_or(false))
                })
                .unwrap_or(false)
        },
    );
    s
}

#[test]
fn kill_9_mid_upload_keeps_complete_objects_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = format!("dir:{}", dir.path().display());
    let complete = bytes(1, 2_000_000);
    {
        let mut server = spawn_server(&["--storage", &storage]);
        assert_eq!(put(&server.url("/ns/complete"), &complete).status, 201);

        // Half of an 8 MB upload, then the server dies.
        let _s = upload_in_flight(
            &server,
            dir.path(),
            "/ns/partial",
            &bytes(2, 4_000_000),
            8_000_000,
        );
        server.child.kill().expect("kill -9"); // SIGKILL
        server.child.wait().expect("reap");
    }
    let server = spawn_server(&["--storage", &storage]);
    let r = get(&server.url("/ns/complete"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, complete, "the complete object survived intact");
    assert_eq!(
        get(&server.url("/ns/partial")).status,
        404,
        "the partial one is absent"
    );
    let leftovers = std::fs::read_dir(dir.path().join("tmp"))
        .expect("tmp")
        .count();
    assert_eq!(leftovers, 0, "stale uploads were set aside at start-up");
}

#[test]
fn ephemeral_store_starts_empty() {
    let server = start(ephemeral());
    assert_eq!(put(&server.url("/ns/k"), b"v").status, 201);
    server.stop();
    let server = start(ephemeral());
    assert_eq!(get(&server.url("/ns/k")).status, 404);
}

#[test]
fn sigterm_stops_gracefully() {
    let mut server = spawn_server(&["--storage", "ephemeral"]);
    assert_eq!(put(&server.url("/ns/k"), b"v").status, 201);
    server.signal("TERM");
    let exit = server.wait_exit("after SIGTERM");
    assert!(exit.success(), "clean exit: {exit:?}");
}

#[test]
fn bad_configuration_fails_at_start_with_a_clear_message() {
    let out = Command::new(crate::util::cachet_bin())
        .args(["server", "--max-size", "lots", "--storage", "ephemeral"])
        .env_remove("CACHET_CONFIG")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid --max-size \"lots\""), "{stderr}");
}

/// Flags beat variables, variables beat the file, the file beats the defaults.
#[test]
fn configuration_precedence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("server.toml");
    std::fs::write(
        &file,
        "max_size = \"1G\"\nmax_age = \"7d\"\nstorage = \"ephemeral\"\nlisten = \"127.0.0.1:1111\"\n",
    )
    .expect("config");
    let out = Command::new(crate::util::cachet_bin())
        .args(["server", "--check-config", "--config"])
        .arg(&file)
        .args(["--listen", "127.0.0.1:3333"])
        .env("CACHET_MAX_SIZE", "2G")
        .env("CACHET_LISTEN", "127.0.0.1:2222")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("127.0.0.1:3333"), "flag wins: {stdout}");
    assert!(stdout.contains("2.0 GiB"), "variable beats file: {stdout}");
    assert!(stdout.contains("7days"), "file beats default: {stdout}");
    assert!(stdout.contains("storage         ephemeral"), "{stdout}");
}

/// A store that already holds objects serves at once and indexes them in the background.
#[test]
fn existing_objects_are_indexed_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let server = start(crate::util::in_dir(dir.path()));
        for i in 0..200 {
            assert_eq!(
                put(&server.url(&format!("/ns/k{i}")), &[1; 100]).status,
                201
            );
        }
    }
    let server = start(crate::util::in_dir(dir.path()));
    assert_eq!(get(&server.url("/ns/k7")).body, [1; 100]);
    wait_for("the index scan to finish", Duration::from_secs(30), || {
        let s: serde_json::Value =
            serde_json::from_slice(&get(&server.url("/stats")).body).expect("stats");
        s["index_ready"] == true && s["objects"] == 200 && s["stored_bytes"] == 20_000
    });
}

/// `--log-format json` with `CACHET_LOG=debug` gives one JSON line per request with method,
/// path, status, bytes and latency, on the server's stderr; SIGTERM removes an ephemeral store.
#[test]
fn json_request_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("server.log");
    let mut server =
        crate::util::ServerProcess::builder(&["--storage", "ephemeral", "--log-format", "json"])
            .env("CACHET_LOG", "debug")
            .log(&log)
            .start();
    assert_eq!(put(&server.url("/ns/logged"), b"12345").status, 201);
    server.signal("TERM");
    let _ = server.child.wait();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .expect("the server's log")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let put_line = lines
        .iter()
        .find(|l| l["fields"]["method"] == "PUT")
        .unwrap_or_else(|| panic!("no request line for the PUT in {lines:?}"));
    let f = &put_line["fields"];
    assert_eq!(f["path"], "/ns/logged");
    assert_eq!(f["status"], 201);
    assert_eq!(f["bytes"], 5);
    assert!(f["latency_us"].is_u64(), "{f}");
    assert_eq!(f["route"], "/{namespace}/{key}");

    // The ephemeral store's directory is gone once the server has exited.
    let storage = lines
        .iter()
        .find_map(|l| l["fields"]["storage"].as_str())
        .expect("the start-up line names the storage directory");
    assert!(
        !std::path::Path::new(storage).exists(),
        "{storage} must be removed on exit"
    );
}

/// SIGTERM during an upload: the listener closes, the in-flight upload still completes and is
/// answered, then the process exits cleanly.
#[test]
fn sigterm_drains_in_flight_uploads() {
    use std::io::Read;

    let dir = tempfile::tempdir().expect("tempdir");
    let storage = format!("dir:{}", dir.path().display());
    let mut server = spawn_server(&["--storage", &storage]);
    let data = bytes(4, 3_000_000);
    let mut s = upload_in_flight(
        &server,
        dir.path(),
        "/ns/drained",
        &data[..1_500_000],
        3_000_000,
    );
    server.signal("TERM");
    s.write_all(&data[1_500_000..]).expect("second half");
    let mut answer = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let exit = server.wait_exit("after draining");
    assert!(exit.success(), "clean exit: {exit:?}");
    // The drained object is complete on disk for the next start.
    let server = spawn_server(&["--storage", &storage]);
    assert_eq!(get(&server.url("/ns/drained")).body, data);
}

/// Start-up warns loudly when the cache is open to a network (no tokens, not loopback), and
/// only then.
#[test]
fn open_server_on_a_network_address_warns_loudly() {
    use std::io::{BufRead, BufReader};
    let first_lines = |args: &[&str]| -> String {
        let mut child = Command::new(crate::util::cachet_bin())
            .arg("server")
            .args(args)
            .args(["--storage", "ephemeral"])
            .env_remove("CACHET_CONFIG")
            .env_remove("CACHET_TOKENS")
            .env("CACHET_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut seen = String::new();
        // The start-up summary (listen, storage, ephemeral, ...) comes after the warning, if
        // any; other lines (the background indexer's) may come in between.
        for line in BufReader::new(child.stderr.take().expect("stderr")).lines() {
            let line = line.expect("line");
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("ephemeral") {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        seen
    };
    // Port 0: only the start-up lines matter, not where it listens.
    let open = first_lines(&["--listen", "0.0.0.0:0"]);
    assert!(open.contains("NO TOKENS CONFIGURED"), "{open}");
    let loopback = first_lines(&["--listen", "127.0.0.1:0"]);
    assert!(!loopback.contains("NO TOKENS"), "{loopback}");
    let with_tokens = first_lines(&["--listen", "0.0.0.0:0", "--tokens", "a-long-token read"]);
    assert!(!with_tokens.contains("NO TOKENS"), "{with_tokens}");
}
