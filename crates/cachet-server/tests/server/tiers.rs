//! Storage tiers against real Redis (one node and a 3-node cluster) and a real S3-compatible
//! server: replicas sharing one backend, Redis TTLs, Redis's value limit, `cachet server prune`
//! on every backend, and a shared tier that goes away and comes back under a running server.
//! (The build-level versions, real cargo builds through replicas, are in the `cachet` crate's
//! `tiers` tests.)

use std::time::{Duration, Instant};

use crate::util::{bytes, cachet_bin, get, put, send, spawn_server_env, ServerProcess};
use cachet_test_support::backends::{RedisCluster, RedisServer, S3Server, S3_ENV};
use cachet_test_support::wait_for;

const DEADLINE: Duration = Duration::from_secs(60);

fn chain_server(local: &tempfile::TempDir, shared: &str, extra: &[&str]) -> ServerProcess {
    let storage = format!("dir:{},{shared}", local.path().display());
    let mut args = vec!["--storage", storage.as_str()];
    args.extend_from_slice(extra);
    spawn_server_env(&args, &S3_ENV)
}

fn stats(server: &ServerProcess) -> serde_json::Value {
    let r = get(&server.url("/stats"));
    assert_eq!(r.status, 200);
    serde_json::from_slice(&r.body).expect("stats json")
}

/// The report of tier `name` (`local` or `shared`) in `/stats`.
fn tier(stats: &serde_json::Value, name: &str) -> serde_json::Value {
    stats["tiers"]
        .as_array()
        .expect("tiers")
        .iter()
        .find(|t| t["tier"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name} tier in {stats}"))
}

fn metrics(server: &ServerProcess) -> String {
    String::from_utf8(get(&server.url("/metrics")).body).expect("utf-8")
}

/// An object written through one replica is a hit through another (and through a replica with
/// no local tier at all), for every shared backend; a large object (streamed, multipart on S3)
/// too. The second read on a replica is a local-tier hit: the shared hit filled it.
#[test]
fn replicas_share_objects_through_every_shared_backend() {
    let redis = RedisServer::start();
    let cluster = RedisCluster::start();
    let s3 = S3Server::start();
    let small = bytes(1, 300_000);
    let large = bytes(2, 6 << 20);
    for shared in [redis.spec("rep/"), cluster.spec("rep/"), s3.spec("rep")] {
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = chain_server(&dir_a, &shared, &[]);
        let b = chain_server(&dir_b, &shared, &[]);
        let bare = spawn_server_env(&["--storage", &shared], &S3_ENV);
        for (key, data) in [("v1/e/small", &small), ("v1/e/large", &large)] {
            let path = format!("/cachet/{key}");
            assert_eq!(put(&a.url(&path), data).status, 201, "{shared}");
            wait_for(
                &format!("{key} to reach the other replica via {shared}"),
                DEADLINE,
                || {
                    let r = get(&b.url(&path));
                    r.status == 200 && &r.body == data
                },
            );
            let r = get(&bare.url(&path));
            assert_eq!((r.status, r.body.len()), (200, data.len()), "{shared}");
            assert!(&r.body == data);
            // Now in b's local tier (the large one was teed into it while streamed).
            wait_for("the shared hit to fill the local tier", DEADLINE, || {
                let before = tier(&stats(&b), "local")["hits"].as_u64().unwrap();
                let r = get(&b.url(&path));
                assert!(r.status == 200 && &r.body == data);
                tier(&stats(&b), "local")["hits"].as_u64().unwrap() > before
            });
        }
        let s = stats(&a);
        assert_eq!(s["uploads"]["uploaded"], 2, "{s}");
        assert_eq!(s["uploads"]["failed"], 0, "{s}");
        let shared_b = tier(&stats(&b), "shared");
        assert!(shared_b["hits"].as_u64().unwrap() >= 2, "{shared_b}");
        assert!(shared_b["latency_ms"]["get"].as_f64().unwrap() > 0.0);
        let m = metrics(&b);
        assert!(
            m.contains("cachet_tier_gets_total{tier=\"shared\",backend=")
                && m.contains("cachet_tier_duration_seconds_count{tier=\"shared\""),
            "{m}"
        );
    }
    // The cluster really spread the keys over its nodes' slots (two objects, any nodes).
    assert!(cluster.count_keys("rep/") >= 2);
}

/// With `--max-age`, Redis values carry that TTL (`SET ... PX`), a read renews it (`GETEX`),
/// and an unread value expires by itself. (On a Redis with a user and password, database 2.)
#[test]
fn redis_values_expire_after_max_age_and_reads_renew_them() {
    let redis = RedisServer::start_with_user(2);
    let spec = format!(
        "redis://cachet:s3cret@127.0.0.1:{}/2?prefix=ttl/",
        redis.port
    );
    let server = spawn_server_env(&["--storage", &spec, "--max-age", "4s"], &[]);
    for k in ["a", "b"] {
        assert_eq!(
            put(&server.url(&format!("/cachet/{k}")), b"value").status,
            201
        );
    }
    let pttl = |k: &str| -> i64 {
        redis
            .cli(&["PTTL", &format!("ttl/v1/cachet/{k}")])
            .parse()
            .expect("PTTL")
    };
    let first = pttl("b");
    assert!(first > 0 && first <= 4000, "PTTL {first}");
    wait_for("b's TTL to run down", DEADLINE, || pttl("b") < first - 1500);
    assert_eq!(get(&server.url("/cachet/b")).status, 200);
    assert!(pttl("b") > first - 1000, "a read renews the TTL");
    wait_for("a to expire", DEADLINE, || {
        redis.cli(&["EXISTS", "ttl/v1/cachet/a"]) == "0"
    });
    assert_eq!(get(&server.url("/cachet/a")).status, 404);
}

/// Redis holds at most 512 MB in a value. A chain keeps a larger object in its local tier and
/// counts the refusal; a Redis-only server answers 413 saying why.
#[test]
fn redis_refuses_objects_over_its_value_limit() {
    let redis = RedisServer::start();
    let local = tempfile::tempdir().unwrap();
    let big = vec![7u8; (512 << 20) + 1];
    // A budget that holds a whole Redis value: the refusal is Redis's, not the budget's.
    let chain = chain_server(&local, &redis.spec("big/"), &["--upload-memory", "1G"]);
    assert_eq!(put(&chain.url("/cachet/big"), &big).status, 201);
    wait_for("the refused upload to be counted", DEADLINE, || {
        stats(&chain)["uploads"]["refused"] == 1
    });
    let m = metrics(&chain);
    assert!(
        m.contains("cachet_shared_uploads_total{result=\"refused\"} 1")
            && m.contains("cachet_tier_refused_total{tier=\"shared\",backend=\"redis\"} 1"),
        "{m}"
    );
    let r = get(&chain.url("/cachet/big"));
    assert_eq!((r.status, r.body.len()), (200, big.len()));
    assert_eq!(redis.cli(&["EXISTS", "big/v1/cachet/big"]), "0");

    let bare = spawn_server_env(&["--storage", &redis.spec("big/")], &[]);
    let r = put(&bare.url("/cachet/big"), &big);
    assert_eq!(r.status, 413);
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.contains("redis's limit"), "{body}");
}

/// A chain's background copies to its shared tier buffer a whole Redis value; that memory
/// counts against `--upload-memory` like a client upload's (it was outside any bound: four
/// workers could each assemble a value of up to 512 MB). A copy that would need more than the
/// whole budget is refused and counted; the object stays in the local tier, and smaller ones
/// still reach Redis.
#[test]
fn background_copies_to_redis_count_against_the_upload_budget() {
    let redis = RedisServer::start();
    let local = tempfile::tempdir().unwrap();
    let chain = chain_server(&local, &redis.spec("bud/"), &["--upload-memory", "4M"]);
    let (small, big) = (bytes(3, 1 << 20), bytes(4, 6 << 20));
    assert_eq!(put(&chain.url("/cachet/small"), &small).status, 201);
    assert_eq!(put(&chain.url("/cachet/big"), &big).status, 201);
    wait_for("both copies to end", DEADLINE, || {
        stats(&chain)["uploads"]["pending"] == 0
    });
    let uploads = stats(&chain)["uploads"].clone();
    assert_eq!(
        (uploads["uploaded"].as_u64(), uploads["refused"].as_u64()),
        (Some(1), Some(1)),
        "{uploads}"
    );
    assert_eq!(redis.cli(&["EXISTS", "bud/v1/cachet/small"]), "1");
    assert_eq!(redis.cli(&["EXISTS", "bud/v1/cachet/big"]), "0");
    let r = get(&chain.url("/cachet/big"));
    assert!(r.status == 200 && r.body == big, "the local tier keeps it");
}

/// `cachet server prune --older-than` on a directory, Redis and S3: nothing young is removed,
/// everything old is, and the count is printed.
#[test]
fn prune_on_every_backend_removes_only_old_objects() {
    let redis = RedisServer::start();
    let s3 = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let specs = [
        format!("dir:{}", dir.path().display()),
        redis.spec("prune/"),
        s3.spec("prune"),
    ];
    let servers: Vec<ServerProcess> = specs
        .iter()
        .map(|s| spawn_server_env(&["--storage", s], &S3_ENV))
        .collect();
    // A directory a server runs on is pruned through that server (the command refuses it,
    // see eviction.rs); Redis and S3 are shared by design and pruned by the command.
    let prune = |spec: &str, server: &ServerProcess, older_than: &str| -> String {
        if spec.starts_with("dir:") {
            let url = server.url(&format!("/_admin/prune/{older_than}"));
            let r = send("POST", &url, None, None);
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            let body: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
            return format!("pruned {} objects", body["pruned_objects"]);
        }
        let out = std::process::Command::new(cachet_bin())
            .args([
                "server",
                "prune",
                "--storage",
                spec,
                "--older-than",
                older_than,
            ])
            .envs(S3_ENV)
            .env("CACHET_LOG", "warn")
            .output()
            .expect("run cachet server prune");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    for s in &servers {
        assert_eq!(put(&s.url("/cachet/old"), b"old").status, 201);
    }
    let written = Instant::now();
    for (spec, s) in specs.iter().zip(&servers) {
        assert!(prune(spec, s, "1h").contains("pruned 0 objects"), "{spec}");
    }
    // Redis counts idle time in whole seconds; S3 keeps seconds too.
    wait_for("the first objects to be 13 s old", DEADLINE, || {
        written.elapsed() >= Duration::from_secs(13)
    });
    for s in &servers {
        assert_eq!(put(&s.url("/cachet/new"), b"new").status, 201);
    }
    for (spec, s) in specs.iter().zip(&servers) {
        let out = prune(spec, s, "10s");
        assert!(out.contains("pruned 1 objects"), "{spec}: {out}");
        assert_eq!(get(&s.url("/cachet/old")).status, 404, "{spec}");
        assert_eq!(get(&s.url("/cachet/new")).body, b"new", "{spec}");
    }
    assert_eq!(s3.object_keys(), ["prune/v1/cachet/new"]);
}

/// Redis, a whole Redis Cluster or S3 killed under a running chain: the server keeps answering
/// (local hits, misses, writes to the local tier), and uses the shared tier again by itself
/// once it is back.
#[test]
fn a_shared_tier_outage_is_survived_and_recovered_from() {
    let mut redis = RedisServer::start();
    let mut cluster = RedisCluster::start();
    let mut s3 = S3Server::start();
    for backend in ["redis", "cluster", "s3"] {
        let shared = match backend {
            "redis" => redis.spec("out/"),
            "cluster" => cluster.spec("out/"),
            _ => s3.spec("out"),
        };
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = chain_server(&dir_a, &shared, &[]);
        let b = chain_server(&dir_b, &shared, &[]);
        assert_eq!(put(&a.url("/cachet/x"), b"x").status, 201);
        wait_for("x to be uploaded", DEADLINE, || {
            get(&b.url("/cachet/x")).status == 200
        });

        match backend {
            "redis" => redis.stop(),
            "cluster" => cluster.stop(),
            _ => s3.stop(),
        }
        assert_eq!(get(&a.url("/cachet/x")).body, b"x", "a local hit");
        assert_eq!(
            get(&a.url("/cachet/missing")).status,
            404,
            "a miss, not an error"
        );
        assert_eq!(put(&a.url("/cachet/during"), b"during").status, 201);
        assert_eq!(get(&a.url("/cachet/during")).body, b"during");
        let down = tier(&stats(&a), "shared");
        assert!(down["errors"].as_u64().unwrap() >= 1, "{down}");
        assert_eq!(get(&a.url("/readyz")).status, 200, "still ready");

        match backend {
            "redis" => redis.restart(),
            "cluster" => cluster.restart(),
            _ => s3.restart(),
        }
        assert_eq!(put(&a.url("/cachet/after"), b"after").status, 201);
        wait_for(
            &format!("writes to reach {backend} again without a restart"),
            DEADLINE,
            || get(&b.url("/cachet/after")).status == 200,
        );
        wait_for("the shared tier to be marked available", DEADLINE, || {
            tier(&stats(&a), "shared")["available"] == true
        });
    }
}

/// The admin purge of a namespace empties it in every tier: the local disk, and every master
/// of a Redis Cluster (keys spread over slots) or the S3 prefix; other namespaces stay.
#[test]
fn purging_a_namespace_empties_every_tier() {
    let cluster = RedisCluster::start();
    let s3 = S3Server::start();
    for shared in [cluster.spec("purge/"), s3.spec("purge")] {
        let local = tempfile::tempdir().unwrap();
        let server = chain_server(&local, &shared, &[]);
        for i in 0..20 {
            assert_eq!(put(&server.url(&format!("/doomed/k{i}")), b"x").status, 201);
        }
        assert_eq!(put(&server.url("/kept/k"), b"y").status, 201);
        wait_for("the uploads", DEADLINE, || {
            stats(&server)["uploads"]["uploaded"] == 21
        });
        let r = crate::util::send(
            "DELETE",
            &server.url("/_admin/namespaces/doomed"),
            None,
            None,
        );
        assert_eq!(r.status, 200);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["purged_objects"], 40, "20 local + 20 shared: {v}");
        let bare = spawn_server_env(&["--storage", &shared], &S3_ENV);
        assert_eq!(get(&bare.url("/doomed/k3")).status, 404, "{shared}");
        assert_eq!(get(&bare.url("/kept/k")).body, b"y", "{shared}");
    }
    assert_eq!(cluster.count_object_keys("purge/"), 1);
    assert_eq!(s3.object_keys(), ["purge/v1/kept/k"]);
}

/// `rediss://` to a Redis whose certificate comes from a private CA: with `ca_cert` naming the
/// CA, objects round-trip; without it, the server refuses to trust Redis and stores nothing.
#[test]
fn rediss_with_a_private_ca_round_trips_and_an_untrusted_redis_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tls = cachet_test_support::issue_cert(dir.path(), "redis");
    let (cert, key, ca_pem) = (tls.cert, tls.key, tls.ca_pem);
    let redis = RedisServer::start_tls(&cert, &key);

    let trusted = format!(
        "rediss://localhost:{}/0?prefix=tls/&ca_cert={}",
        redis.port,
        ca_pem.display()
    );
    let server = spawn_server_env(&["--storage", &trusted], &[]);
    let data = bytes(3, 100_000);
    assert_eq!(put(&server.url("/cachet/over-tls"), &data).status, 201);
    let r = get(&server.url("/cachet/over-tls"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, data);

    // The system roots do not include the private CA: nothing is stored, and nothing leaks.
    let untrusted = format!("rediss://localhost:{}/0?prefix=tls/", redis.port);
    let server = spawn_server_env(&["--storage", &untrusted], &[]);
    let status = put(&server.url("/cachet/refused"), &data).status;
    assert!(
        status >= 500,
        "an untrusted Redis must not take writes, got {status}"
    );
    assert_ne!(get(&server.url("/cachet/over-tls")).status, 200);
}
