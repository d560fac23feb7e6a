//! Storage tiers under real builds: two stateless replicas sharing one Redis, one Redis
//! Cluster or one S3 bucket (a second client with an empty cache, through the *other*
//! replica, gets every library crate of the pinned workload as a remote hit), and a shared
//! tier killed in the middle of a build (the build succeeds, the server keeps serving its
//! local tier, and uses the shared tier again once it is back, without a restart).
//!
//! The backends are real processes (`redis-server`, `redis-cli --cluster create`, moto for S3),
//! started the same way as in the server crate's tests (`cachet_test_support::backends`).

use std::fs;
use std::time::Duration;

use cachet_test_support::backends::{RedisCluster, RedisServer, S3Server, S3_ENV};
use cachet_test_support::{http, wait_for};
use cachet_wrapper::journal::Outcome;

use crate::util::{
    cacheable, crates_with, fixture, outcomes_for, real_rustc, workload_service, write_script,
    Project, ServerProcess,
};
use crate::workload::{fetch, stored_crates};

/// A chain server `dir:<scratch>,SHARED` (the scratch directory lives as long as the server).
fn replica(shared: &str) -> (ServerProcess, tempfile::TempDir) {
    let local = tempfile::tempdir().unwrap();
    let storage = format!("dir:{},{shared}", local.path().display());
    let server = ServerProcess::builder(&["--storage", &storage])
        .envs(&S3_ENV)
        .start();
    (server, local)
}

fn stats(server: &ServerProcess) -> serde_json::Value {
    let (status, body) = http(server.port, "GET", "/stats", b"");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Waits until every upload the replica queued has left for the shared tier, and checks that
/// none was lost.
fn wait_for_uploads(server: &ServerProcess) {
    wait_for(
        "the replica to finish its uploads",
        Duration::from_secs(300),
        || stats(server)["uploads"]["pending"] == 0,
    );
    let u = &stats(server)["uploads"];
    for lost in ["failed", "refused", "dropped_evicted", "dropped_queue_full"] {
        assert_eq!(u[lost], 0, "{lost}: {u}");
    }
    assert!(u["uploaded"].as_u64().unwrap() >= 100, "{u}");
}

/// Client A builds the workload through replica 1; client B, with an empty cache, builds it
/// through replica 2 (whose local tier is empty): every library crate A stored is a remote hit
/// for B, so it came through the shared backend.
fn replicas_share_the_workload(shared: &str) {
    let (one, _l1) = replica(shared);
    let (two, _l2) = replica(shared);
    let a = Project::copy_of(&workload_service());
    fetch(&a);
    a.cachet_cargo(
        &["build", "--locked", "--offline"],
        &[("CACHET_SERVER", one.base_url())],
    );
    let output = a.run_program("target", "debug", "wl-service");
    let stored = stored_crates(&a.journal());
    assert!(stored.len() >= 50, "{} crates stored", stored.len());
    wait_for_uploads(&one);

    let b = a.clean_client("cache-b");
    b.cachet_cargo(
        &["build", "--locked", "--offline"],
        &[("CACHET_SERVER", two.base_url())],
    );
    let records = b.journal();
    let misses: Vec<_> = cacheable(&records)
        .into_iter()
        .filter(|r| !matches!(r.outcome, Outcome::HitRemote | Outcome::CompileFailed))
        .collect();
    assert!(
        misses.is_empty(),
        "{shared}: the second client missed {misses:?}"
    );
    let remote = crates_with(&records, Outcome::HitRemote);
    assert_eq!(remote, stored, "{shared}");
    assert_eq!(b.run_program("target", "debug", "wl-service"), output);
    let shared_tier = stats(&two)["tiers"][1].clone();
    assert_eq!(shared_tier["tier"], "shared");
    assert!(
        shared_tier["hits"].as_u64().unwrap() >= stored.len() as u64,
        "{shared_tier}"
    );
}

#[test]
fn replicas_sharing_one_redis_serve_the_whole_workload() {
    let redis = RedisServer::start();
    replicas_share_the_workload(&redis.spec("cachet/"));
}

#[test]
fn replicas_sharing_one_redis_cluster_serve_the_whole_workload() {
    let cluster = RedisCluster::start();
    replicas_share_the_workload(&cluster.spec("cachet/"));
}

#[test]
fn replicas_sharing_one_s3_bucket_serve_the_whole_workload() {
    let s3 = S3Server::start();
    replicas_share_the_workload(&s3.spec("team/rust"));
}

/// Kills the shared backend's processes (`kill -9`, via a rustc shim) just before `core_lib`
/// compiles.
///
/// Regression: on a Redis Cluster, a retry of core_lib's old manifest (queued during the
/// outage, its `SET` held by the reconnecting client) landed after the new manifest, so the
/// second replica served the old one and the new core_lib missed. Uploads of one object are
/// now serialized.
/// The build succeeds; a fresh client still gets both crates from the server's local tier
/// while the backend is down; after the backend restarts (empty), a new result written
/// through replica 1 is a hit through replica 2, with neither server restarted.
fn a_shared_tier_killed_mid_build(pids: &[u32], restart: impl FnOnce(), shared: &str) {
    let (one, _l1) = replica(shared);
    let (two, _l2) = replica(shared);
    let a = Project::copy_of(&fixture("soundness"));
    let flag = a.tmp.path().join("killed");
    let shim = write_script(
        &a.tmp.path().join("rustc-kill-backend"),
        &format!(
            "#!/bin/sh\ncase \" $* \" in *\" --crate-name core_lib \"*)\n\
             if [ ! -e {flag} ]; then touch {flag}; kill -9 {pids}; fi;;\nesac\nexec {real} \"$@\"\n",
            flag = flag.display(),
            pids = pids
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            real = real_rustc().display()
        ),
    );
    // Every build uses the shim (a compiler's identity is part of the key); it kills once.
    let through = |server: &ServerProcess| {
        [
            ("CACHET_SERVER", server.base_url().to_string()),
            ("RUSTC", shim.to_str().unwrap().to_string()),
        ]
    };
    let build = |p: &Project, server: &ServerProcess| {
        let env = through(server);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        p.cachet_cargo(&["build"], &env);
    };
    build(&a, &one);
    assert!(flag.exists(), "the shim ran");
    a.assert_app_prints("lib=core-lib v1");
    let down = stats(&one)["tiers"][1].clone();
    assert!(down["errors"].as_u64().unwrap() >= 1, "{down}");

    // Still down: the server answers from its local tier.
    let b = a.clean_client("cache-b");
    build(&b, &one);
    for krate in ["core_lib", "dep_lib"] {
        assert_eq!(
            outcomes_for(&b.journal(), krate),
            vec![Outcome::HitRemote],
            "{krate}"
        );
    }

    // Back (and empty): a new core_lib built through replica 1 reaches replica 2.
    restart();
    let lib = a.root.join("core-lib/src/lib.rs");
    fs::write(
        &lib,
        fs::read_to_string(&lib)
            .unwrap()
            .replace("core-lib v1", "core-lib v2"),
    )
    .unwrap();
    build(&a, &one);
    wait_for(
        "replica 1 to upload the new core_lib",
        Duration::from_secs(120),
        || stats(&one)["uploads"]["pending"] == 0,
    );
    let c = a.clean_client("cache-c");
    build(&c, &two);
    assert_eq!(
        outcomes_for(&c.journal(), "core_lib"),
        vec![Outcome::HitRemote],
        "the new core_lib came through the recovered shared tier: {} / {}",
        stats(&one),
        stats(&two)
    );
    c.assert_app_prints("lib=core-lib v2");
    assert_eq!(stats(&one)["tiers"][1]["available"], true);
}

#[test]
fn a_redis_killed_mid_build_is_survived_and_used_again_when_back() {
    let mut redis = RedisServer::start();
    let (pid, spec) = (redis.pid(), redis.spec("cachet/"));
    a_shared_tier_killed_mid_build(&[pid], || redis.restart(), &spec);
}

#[test]
fn a_redis_cluster_killed_mid_build_is_survived_and_used_again_when_back() {
    let mut cluster = RedisCluster::start();
    let (pids, spec) = (cluster.pids(), cluster.spec("cachet/"));
    a_shared_tier_killed_mid_build(&pids, || cluster.restart(), &spec);
}

#[test]
fn an_s3_server_killed_mid_build_is_survived_and_used_again_when_back() {
    let mut s3 = S3Server::start();
    let (pid, spec) = (s3.pid(), s3.spec("team/rust"));
    a_shared_tier_killed_mid_build(&[pid], || s3.restart(), &spec);
}
