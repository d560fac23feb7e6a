//! S3 credentials and addressing against a moto server that checks every signature
//! ([`S3Server::start_with_auth`]): credentials read from a shared credentials file (the
//! profile named by `AWS_PROFILE`, else `[default]`) and from `$HOME/.aws/credentials`, with
//! none in the environment; wrong or missing ones refused with a log line saying what to check,
//! by a server that keeps answering; and virtual-host-style requests (`path_style=false`).
//!
//! Each refusal is checked before the matching success, with the same key id and only the
//! secret (or the profile) changed: a server that ignored the file, or a moto that did not
//! check signatures, fails the refusal.

use std::path::Path;
use std::time::Duration;

use crate::util::{bytes, get, put, spawn_server_logged, ServerProcess};
use cachet_test_support::backends::{S3Key, S3Server};
use cachet_test_support::wait_for;

const DEADLINE: Duration = Duration::from_secs(60);

/// Inherited variables that would give the server credentials, another profile, another
/// endpoint or a proxy: the tests give it exactly what they test.
const UNSET: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT",
    "AWS_S3_ENDPOINT",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// A `cachet server --storage SPEC` with only `env` as AWS environment (instance metadata
/// off: nothing to find on loopback), logging to `log`.
fn s3_server(spec: &str, env: &[(&str, &str)], log: &Path) -> ServerProcess {
    let mut all = vec![
        ("CACHET_LOG", "warn"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    all.extend_from_slice(env);
    spawn_server_logged(&["--storage", spec], &all, UNSET, log)
}

/// A credentials file: `[profile]` sections with `key`'s id and the given secret.
fn credentials(key: &S3Key, profiles: &[(&str, &str)]) -> String {
    profiles
        .iter()
        .map(|(profile, secret)| {
            format!(
                "[{profile}]\naws_access_key_id = {}\naws_secret_access_key = {secret}\n\n",
                key.id
            )
        })
        .collect()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A small and a multipart object (more than one 8 MiB part) written and read back through
/// `server`, and found in the bucket under `prefix`.
fn assert_round_trip(server: &ServerProcess, s3: &S3Server, prefix: &str) {
    let small = bytes(1, 1000);
    let large = bytes(2, (8 << 20) + 4096);
    for (key, data) in [("v1/e/small", &small), ("v1/e/large", &large)] {
        let url = server.url(&format!("/cachet/{key}"));
        let r = put(&url, data);
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let r = get(&url);
        assert_eq!((r.status, r.body.len()), (200, data.len()));
        assert!(&r.body == data);
    }
    let mut keys: Vec<String> = s3
        .object_keys()
        .into_iter()
        .filter(|k| k.starts_with(&format!("{prefix}/")))
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            format!("{prefix}/v1/cachet/v1/e/large"),
            format!("{prefix}/v1/cachet/v1/e/small")
        ]
    );
}

/// What a client of a server whose S3 credentials are refused (or missing) sees: `503
/// storage unavailable` for a PUT and then a GET, while the server keeps answering; the
/// failures are counted, nothing reaches the bucket, and the log says `expect` (what to check).
fn assert_refused(server: &ServerProcess, s3: &S3Server, prefix: &str, log: &Path, expect: &str) {
    let url = server.url("/cachet/v1/e/refused");
    let r = put(&url, b"not stored");
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("storage unavailable"));
    assert_eq!(get(&url).status, 503);
    assert_eq!(get(&server.url("/healthz")).status, 200);
    let r = get(&server.url("/stats"));
    let stats: serde_json::Value = serde_json::from_slice(&r.body).expect("stats json");
    let shared = &stats["tiers"][0];
    assert_eq!(shared["backend"], "s3", "{stats}");
    assert_eq!(shared["writes"], 0, "{stats}");
    assert!(shared["errors"].as_u64().unwrap() >= 2, "{stats}");
    assert!(
        !s3.keys()
            .iter()
            .any(|k| k.starts_with(&format!("{prefix}/"))),
        "{:?}",
        s3.keys()
    );
    wait_for("the refusal to be logged", DEADLINE, || {
        std::fs::read_to_string(log).is_ok_and(|l| l.contains(expect))
    });
}

const SIGNATURE_REFUSED: &str = "access denied (S3Error { code: \"SignatureDoesNotMatch\"";
const WHAT_TO_CHECK: &str = "check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, \
     or profile $AWS_PROFILE (else [default]) of AWS_SHARED_CREDENTIALS_FILE";

/// `AWS_SHARED_CREDENTIALS_FILE` with two profiles, no credentials in the environment: without
/// `AWS_PROFILE` the server signs with `[default]` (a wrong secret: refused, and the log says
/// so and what to check); with `AWS_PROFILE=cachet`, with that profile (objects stored, small
/// and multipart).
#[test]
fn s3_credentials_from_a_shared_credentials_file_and_aws_profile() {
    let s3 = S3Server::start_with_auth();
    let key = s3.key();
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    std::fs::create_dir(&home).expect("mkdir");
    let file = dir.path().join("credentials");
    write(
        &file,
        &credentials(
            &key,
            &[("default", "wrong-secret"), ("cachet", &key.secret)],
        ),
    );
    let home = home.to_str().unwrap();
    let file = file.to_str().unwrap();

    let log = dir.path().join("default.log");
    let env = [("HOME", home), ("AWS_SHARED_CREDENTIALS_FILE", file)];
    let server = s3_server(&s3.spec("default"), &env, &log);
    assert_refused(&server, &s3, "default", &log, SIGNATURE_REFUSED);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(WHAT_TO_CHECK), "{text}");
    drop(server);

    // The same credentials behind a local tier: clients see no error (the local tier has the
    // object), and the upload to S3 fails after its retries, counted and logged.
    let log = dir.path().join("chain.log");
    let local = dir.path().join("local");
    let spec = format!("dir:{},{}", local.display(), s3.spec("chain"));
    let server = s3_server(&spec, &env, &log);
    let url = server.url("/cachet/v1/e/local-only");
    assert_eq!(put(&url, b"kept locally").status, 201);
    assert_eq!(get(&url).body, b"kept locally");
    wait_for("the upload to be counted as failed", DEADLINE, || {
        let r = get(&server.url("/stats"));
        let stats: serde_json::Value = serde_json::from_slice(&r.body).expect("stats json");
        stats["uploads"]["failed"] == 1
    });
    assert!(!s3.keys().iter().any(|k| k.starts_with("chain/")));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("failed to upload to the shared tier") && text.contains(SIGNATURE_REFUSED),
        "{text}"
    );
    drop(server);

    let log = dir.path().join("profile.log");
    let env = [
        ("HOME", home),
        ("AWS_SHARED_CREDENTIALS_FILE", file),
        ("AWS_PROFILE", "cachet"),
    ];
    let server = s3_server(&s3.spec("profile"), &env, &log);
    assert_round_trip(&server, &s3, "profile");
}

/// `$HOME/.aws/credentials` (`[default]`), nothing in the environment: a wrong secret there is
/// refused, the right one works; a home without the file gets "no AWS credentials found".
#[test]
fn s3_credentials_from_home_aws_credentials() {
    let s3 = S3Server::start_with_auth();
    let key = s3.key();
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, secret) in [("wrong", "wrong-secret"), ("right", key.secret.as_str())] {
        let home = dir.path().join(name);
        write(
            &home.join(".aws/credentials"),
            &credentials(&key, &[("default", secret)]),
        );
        let log = dir.path().join(format!("{name}.log"));
        let server = s3_server(&s3.spec(name), &[("HOME", home.to_str().unwrap())], &log);
        if name == "wrong" {
            assert_refused(&server, &s3, name, &log, SIGNATURE_REFUSED);
        } else {
            assert_round_trip(&server, &s3, name);
        }
    }

    let home = dir.path().join("empty");
    std::fs::create_dir(&home).expect("mkdir");
    let log = dir.path().join("empty.log");
    let server = s3_server(&s3.spec("none"), &[("HOME", home.to_str().unwrap())], &log);
    assert_refused(
        &server,
        &s3,
        "none",
        &log,
        "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
    );
}

/// `path_style=false`: requests name the bucket in the host (`BUCKET.localhost:PORT`), signed
/// for that host, and moto serves them from the bucket. `*.localhost` does not resolve on
/// every machine (not here: glibc without nss-myhostname), so the server reaches moto through
/// `http_proxy` pointing at moto itself, which takes the absolute URL as a virtual-host
/// request; moto's log shows the URL each server asked for, path-style as a control.
#[test]
fn s3_virtual_host_style_requests_with_path_style_false() {
    let s3 = S3Server::start_with_auth();
    let key = s3.key();
    let dir = tempfile::tempdir().expect("tempdir");
    let proxy = format!("http://127.0.0.1:{}", s3.port);
    let env = [
        ("HOME", dir.path().to_str().unwrap()),
        ("AWS_ACCESS_KEY_ID", key.id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", key.secret.as_str()),
        ("http_proxy", proxy.as_str()),
    ];
    for (prefix, path_style) in [("vhost", false), ("path", true)] {
        let spec = format!(
            "s3://{}/{prefix}?endpoint=http://localhost:{}&region=us-east-1&path_style={path_style}",
            s3.bucket, s3.port
        );
        let server = s3_server(&spec, &env, &dir.path().join(format!("{prefix}.log")));
        assert_round_trip(&server, &s3, prefix);
    }
    let log = s3.log();
    let (bucket, port) = (&s3.bucket, s3.port);
    for target in [
        format!("\"PUT http://{bucket}.localhost:{port}/vhost/v1/cachet/v1/e/small HTTP/1.1\" 200"),
        format!("\"PUT http://localhost:{port}/{bucket}/path/v1/cachet/v1/e/small HTTP/1.1\" 200"),
    ] {
        assert!(log.contains(&target), "no {target} in moto's log:\n{log}");
    }
    assert!(!log.contains(&format!("localhost:{port}/{bucket}/vhost/")));
}
