//! Size limit (LRU eviction) and age limit (pruning), seen through the HTTP API.

use std::time::Duration;

use crate::util::{cachet_bin, ephemeral, get, put, send, spawn_server, start, wait_for};

fn stats(server: &crate::util::TestServer) -> serde_json::Value {
    serde_json::from_slice(&get(&server.url("/stats")).body).expect("stats JSON")
}

#[test]
fn least_recently_used_objects_are_evicted_first() {
    let mut config = ephemeral();
    config.max_size = 1000;
    config.max_object_size = 1000;
    let server = start(config);
    for k in ["k1", "k2", "k3"] {
        assert_eq!(put(&server.url(&format!("/ns/{k}")), &[1; 300]).status, 201);
    }
    assert_eq!(get(&server.url("/ns/k1")).status, 200); // k1 is now the most recent
    assert_eq!(put(&server.url("/ns/k4"), &[1; 300]).status, 201);
    assert_eq!(
        get(&server.url("/ns/k2")).status,
        404,
        "least recently used goes first"
    );
    for k in ["k1", "k3", "k4"] {
        assert_eq!(get(&server.url(&format!("/ns/{k}"))).status, 200, "{k}");
    }
    let s = stats(&server);
    assert_eq!(s["evictions"], 1);
    assert_eq!(s["stored_bytes"], 900);
}

#[test]
fn objects_older_than_max_age_are_pruned() {
    let mut config = ephemeral();
    config.max_age = Some(Duration::from_secs(1));
    let server = start(config);
    assert_eq!(put(&server.url("/ns/old"), b"bytes").status, 201);
    wait_for("the object to be pruned", Duration::from_secs(30), || {
        stats(&server)["pruned"] == 1
    });
    assert_eq!(send("HEAD", &server.url("/ns/old"), None, None).status, 404);
    assert_eq!(stats(&server)["objects"], 0);
}

/// `cachet server prune` run beside a running server on the same directory would delete files
/// the server's index still counts (its size accounting stays wrong until a restart): it is
/// refused with a message saying what to do instead, pruning through the server works, and
/// once the server is gone the command works again.
#[test]
fn prune_beside_a_running_server_is_refused_and_goes_through_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = format!("dir:{}", dir.path().display());
    let mut server = spawn_server(&[
        "--storage",
        &storage,
        "--tokens",
        "admin-token-1234 read,write,admin;reader-token-1234 read",
    ]);
    let auth = |t: &str| format!("Bearer {t}");
    for k in ["a", "b"] {
        let url = server.url(&format!("/ns/{k}"));
        let r = send("PUT", &url, Some(b"data"), Some(&auth("admin-token-1234")));
        assert_eq!(r.status, 201);
    }
    let stats = |server: &crate::util::ServerProcess| -> serde_json::Value {
        let r = send("GET", &server.url("/stats"), None, None);
        serde_json::from_slice(&r.body).expect("stats JSON")
    };
    let prune = || {
        std::process::Command::new(cachet_bin())
            .args([
                "server",
                "prune",
                "--storage",
                &storage,
                "--older-than",
                "1ms",
            ])
            .env("CACHET_LOG", "warn")
            .output()
            .expect("run cachet server prune")
    };

    let out = prune();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("a running cachet server uses the store"),
        "{stderr}"
    );
    assert!(stderr.contains("/_admin/prune/"), "{stderr}");
    assert_eq!(stats(&server)["objects"], 2);
    let url = server.url("/ns/a");
    assert!(
        get_with(&url, "admin-token-1234") == b"data",
        "nothing was deleted"
    );

    // Through the server: an admin token is needed, and its index stays exact.
    let prune_url = server.url("/_admin/prune/1ms");
    assert_eq!(send("POST", &prune_url, None, None).status, 401);
    let r = send("POST", &prune_url, None, Some(&auth("reader-token-1234")));
    assert_eq!(r.status, 403);
    let r = send("POST", &prune_url, None, Some(&auth("admin-token-1234")));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let body: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(body["pruned_objects"], 2);
    let bad = server.url("/_admin/prune/soon");
    let r = send("POST", &bad, None, Some(&auth("admin-token-1234")));
    assert_eq!(r.status, 400);
    let s = stats(&server);
    assert_eq!(
        (s["objects"].as_u64(), s["stored_bytes"].as_u64()),
        (Some(0), Some(0))
    );

    // No server: the command prunes by itself.
    let url = server.url("/ns/c");
    let r = send("PUT", &url, Some(b"data"), Some(&auth("admin-token-1234")));
    assert_eq!(r.status, 201);
    server.kill();
    let out = prune();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("pruned 1 objects"), "{stdout}");
}

fn get_with(url: &str, token: &str) -> Vec<u8> {
    send("GET", url, None, Some(&format!("Bearer {token}"))).body
}
