//! Replicas that share a Redis or S3 store show one dashboard history: each writes its own
//! shard beside the objects and adds the others' (see `history/shared.rs`). Real `cachet
//! server` processes on a real redis-server and on moto's S3; one replica keeps a local tier
//! (its history also in a file), the other is shared-only (its history only in the store).

use std::time::Duration;

use cachet_core::report::{MissCause, Outcome};
use serde_json::Value;

use crate::dashboard::{api, batch, post, report};
use crate::util::{spawn_server_env, wait_for, ServerProcess};
use cachet_test_support::backends::{RedisServer, S3Server, S3_ENV};

/// How long a replica may take to see another's reports: a sync every 10 s, a registry that
/// may need a second round after two replicas register at once.
const SEEN_WITHIN: Duration = Duration::from_secs(90);

fn summary(server: &ServerProcess) -> Value {
    let (status, s) = api(&server.url(""), "summary", None);
    assert_eq!(status, 200);
    s
}

fn history(server: &ServerProcess) -> Value {
    api(&server.url(""), "storage", None).1["history"].clone()
}

fn shows_both(server: &ServerProcess, calls: u64) {
    wait_for(
        "a replica to show both replicas' reports",
        SEEN_WITHIN,
        || summary(server)["total"]["calls"] == calls,
    );
    let t = &summary(server)["total"];
    assert_eq!(t["calls"], calls, "not counted twice");
    assert_eq!(t["clients"], 2);
    assert_eq!(t["hits_remote"], 1);
    assert_eq!(t["hits_local"], 1);
    assert_eq!(t["misses"], 2);
    let (_, app) = api(&server.url(""), "crates/app", None);
    let mut clients: Vec<&str> = app["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client"].as_str().unwrap())
        .collect();
    clients.sort();
    assert_eq!(
        clients,
        ["alice", "bob"],
        "each replica's misses, one by one"
    );
}

#[test]
fn replicas_sharing_redis_or_s3_show_one_history() {
    let redis = RedisServer::start();
    let s3 = S3Server::start();
    for shared in [redis.spec("dash/"), s3.spec("dash")] {
        let dir = tempfile::tempdir().unwrap();
        let tiered = format!("dir:{},{shared}", dir.path().display());
        let a = spawn_server_env(&["--storage", &tiered], &S3_ENV);
        let b = spawn_server_env(&["--storage", &shared], &S3_ENV);
        let to_a = batch(&[
            report("serde", "alice", Outcome::HitRemote, None),
            report("app", "alice", Outcome::Miss, Some(MissCause::SourceFile)),
        ]);
        let to_b = batch(&[
            report("tokio", "bob", Outcome::HitLocal, None),
            report("app", "bob", Outcome::Miss, Some(MissCause::Dependency)),
        ]);
        assert_eq!(post(&a.url(""), "team", &to_a, None).status, 204);
        assert_eq!(post(&b.url(""), "team", &to_b, None).status, 204);
        shows_both(&a, 4);
        shows_both(&b, 4);
        let (ha, hb) = (history(&a), history(&b));
        assert_eq!(ha["shared"], true, "{shared}");
        assert_eq!(ha["other_replicas"], serde_json::json!([hb["replica"]]));
        assert_eq!(hb["other_replicas"], serde_json::json!([ha["replica"]]));

        // The shared-only replica restarts (on another port, so as a new replica): its
        // history was in the store, and every replica still shows it.
        drop(b);
        let b2 = spawn_server_env(&["--storage", &shared], &S3_ENV);
        shows_both(&b2, 4);
        // The tiered replica restarts from its directory: it keeps its name, so its shard is
        // replaced, never left beside a copy of the same numbers.
        drop(a);
        let a2 = spawn_server_env(&["--storage", &tiered], &S3_ENV);
        assert_eq!(history(&a2)["replica"], ha["replica"]);
        shows_both(&a2, 4);
        wait_for(
            "the restarted replica to see both others",
            SEEN_WITHIN,
            || history(&a2)["other_replicas"].as_array().map(Vec::len) == Some(2),
        );
        assert_eq!(summary(&a2)["total"]["calls"], 4);
    }
}
