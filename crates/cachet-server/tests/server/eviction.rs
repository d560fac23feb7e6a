//! Size limit (LRU eviction) and age limit (pruning), seen through the HTTP API.

use std::time::Duration;

use crate::util::{ephemeral, get, put, send, start, wait_for};

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
