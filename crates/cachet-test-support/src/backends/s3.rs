//! moto in server mode: an S3-compatible server with one bucket.
//!
//! Port: moto (werkzeug) binds port 0 when asked and logs the port it got ("Running on
//! http://127.0.0.1:PORT"), so nobody hands it a port; a restart reuses that port, which the
//! cachet server under test was told.

use std::path::PathBuf;
use std::process::{Child, Command};

use super::peer::{kill, start_logged};
use crate::http::http;
use crate::ports::Bind;
use crate::process::run_ok;
use crate::tools::{ci_cache, require_tool};

/// An S3-compatible server (moto in server mode) with one bucket; by default it takes any
/// signature, with [`S3Server::start_with_auth`] it checks every request like AWS does.
pub struct S3Server {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The bucket the tests use.
    pub bucket: String,
    /// With authentication: the access key of an IAM user allowed `s3:*` (a new one after
    /// each restart).
    pub key: Option<S3Key>,
    auth: bool,
    /// Holds `moto.log`, moto's request log (one line per request: method, target, status).
    dir: tempfile::TempDir,
}

/// An access key moto knows (created through its IAM API).
#[derive(Debug, Clone)]
pub struct S3Key {
    /// `AWS_ACCESS_KEY_ID`.
    pub id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret: String,
}

/// Environment a cachet server needs to sign requests to [`S3Server`] (moto accepts any key).
pub const S3_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "cachet-test"),
    ("AWS_SECRET_ACCESS_KEY", "cachet-test-secret"),
    ("AWS_REGION", "us-east-1"),
];

/// Run by moto's own Python (its virtualenv has boto3): `bootstrap PORT BUCKET` creates an IAM
/// user allowed `s3:*`, its access key (printed as `ID SECRET`) and the bucket, then turns
/// authentication on; `list PORT BUCKET ID SECRET` prints the bucket's keys, one per line.
/// Authentication is turned on through moto's `/moto-api/reset-auth` (the setting behind
/// `INITIAL_NO_AUTH_ACTION_COUNT`) rather than by starting moto with a count of free requests:
/// then nothing depends on how many requests the set-up makes.
const MOTO_SCRIPT: &str = r#"
import json, sys, urllib.request
import boto3
cmd, port, bucket = sys.argv[1:4]
endpoint = f"http://127.0.0.1:{port}"
def client(service, key_id, secret):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key_id, aws_secret_access_key=secret)
if cmd == "bootstrap":
    iam = client("iam", "bootstrap", "bootstrap")
    iam.create_user(UserName="cachet")
    iam.put_user_policy(UserName="cachet", PolicyName="s3", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="cachet")["AccessKey"]
    client("s3", "bootstrap", "bootstrap").create_bucket(Bucket=bucket)
    urllib.request.urlopen(urllib.request.Request(
        endpoint + "/moto-api/reset-auth", data=b"0", headers={"Content-Type": "text/plain"}))
    print(key["AccessKeyId"], key["SecretAccessKey"])
elif cmd == "list":
    s3 = client("s3", sys.argv[4], sys.argv[5])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            print(obj["Key"])
"#;

impl S3Server {
    /// Starts moto on a free port and creates the bucket.
    pub fn start() -> S3Server {
        Self::start_inner(false)
    }

    /// Starts moto with authentication: requests must be signed with [`S3Server::key`]
    /// (a wrong secret gets 403 `SignatureDoesNotMatch`, an unknown key `InvalidAccessKeyId`).
    pub fn start_with_auth() -> S3Server {
        Self::start_inner(true)
    }

    fn start_inner(auth: bool) -> S3Server {
        let mut s = S3Server {
            child: None,
            port: 0,
            bucket: "cachet-test".into(),
            key: None,
            auth,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        s.spawn();
        s
    }

    fn moto() -> PathBuf {
        let cached: Vec<PathBuf> = ci_cache()
            .map(|c| c.join("moto/bin/moto_server"))
            .into_iter()
            .collect();
        require_tool("CACHET_TEST_MOTO", "moto_server", &cached)
    }

    /// Starts moto on `self.port` (0 the first time: moto picks it) and reads the port from
    /// its log.
    fn spawn(&mut self) {
        let log = self.dir.path().join("moto.log");
        let mut cmd = Command::new(Self::moto());
        cmd.args(["-H", "127.0.0.1", "-p", &self.port.to_string()]);
        let running = "Running on http://127.0.0.1:";
        let port_in = |log: &str| -> Option<u16> {
            let rest = &log[log.find(running)? + running.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        };
        match start_logged("moto_server", cmd, &log, |l| port_in(l).is_some(), &[]) {
            Bind::Bound(child) => self.child = Some(child),
            Bind::Taken => unreachable!("no text counts as taken"),
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let bound = port_in(&text).expect("the port in moto's log");
        assert!(
            self.port == 0 || bound == self.port,
            "moto restarted on port {bound}, not its port {}",
            self.port
        );
        self.port = bound;
        if !self.auth {
            let status = http(self.port, "PUT", &format!("/{}", self.bucket), b"");
            assert_eq!(status.0, 200, "create bucket: {}", status.1);
            return;
        }
        let out = self.python(&["bootstrap"]);
        let (id, secret) = out.trim().split_once(' ').expect("ID SECRET");
        self.key = Some(S3Key {
            id: id.into(),
            secret: secret.into(),
        });
        let (status, _) = http(self.port, "GET", &format!("/{}", self.bucket), b"");
        assert_ne!(status, 200, "moto still serves unsigned requests");
    }

    /// Runs [`MOTO_SCRIPT`] `CMD PORT BUCKET ARGS...` with the Python of moto's virtualenv.
    fn python(&self, args: &[&str]) -> String {
        let python = Self::moto().with_file_name("python");
        let mut cmd = Command::new(&python);
        cmd.arg("-c")
            .arg(MOTO_SCRIPT)
            .arg(args[0])
            .args([&self.port.to_string(), &self.bucket])
            .args(&args[1..])
            // Straight to 127.0.0.1, whatever proxy the tests run behind.
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("all_proxy")
            .env_remove("ALL_PROXY");
        let out = run_ok(cmd);
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// The access key of a server started with [`S3Server::start_with_auth`].
    pub fn key(&self) -> S3Key {
        self.key
            .clone()
            .expect("an S3Server started with authentication")
    }

    /// moto's request log so far: one line per request, with the request target as received
    /// (`"PUT /bucket/key HTTP/1.1" 200`, or the whole URL when it came through a proxy).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    /// `kill -9` (moto keeps everything in memory: a restart starts empty).
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts it again on the same port, with an empty bucket (and with authentication, a
    /// new key).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// `--storage` spec for `prefix` in the bucket.
    pub fn spec(&self, prefix: &str) -> String {
        format!(
            "s3://{}/{prefix}?endpoint=http://127.0.0.1:{}&region=us-east-1",
            self.bucket, self.port
        )
    }

    /// Keys of the cache objects in the bucket: [`S3Server::keys`] without the server's own
    /// dashboard history (`<prefix>/v1/_dashboard/...`, which a server sharing the bucket
    /// keeps there and which pruning and purging leave alone).
    pub fn object_keys(&self) -> Vec<String> {
        self.keys()
            .into_iter()
            .filter(|k| !k.contains("/v1/_dashboard/"))
            .collect()
    }

    /// Keys of the objects in the bucket (ListObjectsV2: unsigned where moto allows it, else
    /// signed with [`S3Server::key`]).
    pub fn keys(&self) -> Vec<String> {
        if let Some(key) = &self.key {
            return self
                .python(&["list", &key.id, &key.secret])
                .lines()
                .map(str::to_string)
                .collect();
        }
        let (status, body) = http(
            self.port,
            "GET",
            &format!("/{}?list-type=2&max-keys=1000", self.bucket),
            b"",
        );
        assert_eq!(status, 200, "{body}");
        body.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
