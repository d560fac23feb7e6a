//! A server that lies, stalls or floods, and settings that would scatter the cache: the wrapper
//! trusts nothing it reads, so none of these can make a build wrong, hang it, or exhaust its
//! memory. Each case builds a tiny two-crate project (a library and the program printing its
//! version) and checks that the build succeeds with the program a plain build makes, that one
//! warning is printed, and that nothing wrong is left in the local cache.
//!
//! The misbehaving server is a small `std::net` HTTP server on loopback that answers from a
//! writer's local cache directory (the same objects a real server would hold), altered or
//! delivered as each case needs. Signed entries are tested against it and against a real
//! `cachet server` filled by a writer holding the key.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cachet_core::entry::{Entry, EntryHead, SIG_LEN};
use cachet_core::Digest;
use cachet_wrapper::journal::Outcome;
use cachet_wrapper::signing::SecretKey;

use crate::util::{outcomes_for, stderr_of, write_file, Project, ServerProcess};

/// How the fake server answers one request.
enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// 404.
    NotFound,
    /// 200 announcing this body, then one byte every second.
    Drip(Vec<u8>),
    /// 200 announcing this many bytes, then silence (the connection held open).
    SilentAfterHeaders(u64),
    /// 200 announcing this body, then half of it and a closed connection.
    CutOff(Vec<u8>),
    /// 200 announcing this many bytes (and sending zeros until the client goes away).
    Announce(u64),
    /// 200 without a length, zeros until the client goes away.
    Endless,
}

type Route = dyn Fn(&str) -> Reply + Send + Sync;

/// Starts the fake server; returns its URL. It lives as long as the test process.
fn fake_server(route: Arc<Route>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let route = route.clone();
            std::thread::spawn(move || serve_connection(conn, &*route));
        }
    });
    url
}

fn serve_connection(conn: TcpStream, route: &Route) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut length = 0u64;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let _ = std::io::copy(&mut (&mut reader).take(length), &mut std::io::sink());
        let reply = if method == "GET" {
            route(&path)
        } else {
            Reply::Body(Vec::new())
        };
        let head = |len: u64| format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n");
        let zeros = vec![0u8; 64 << 10];
        let done = match reply {
            Reply::Body(b) => out
                .write_all(head(b.len() as u64).as_bytes())
                .and_then(|()| out.write_all(&b)),
            Reply::NotFound => {
                out.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            }
            Reply::Drip(b) => {
                let _ = out.write_all(head(b.len() as u64).as_bytes());
                for byte in b {
                    std::thread::sleep(Duration::from_secs(1));
                    if out.write_all(&[byte]).is_err() {
                        return;
                    }
                }
                return;
            }
            Reply::SilentAfterHeaders(len) => {
                let _ = out.write_all(head(len).as_bytes());
                std::thread::sleep(Duration::from_secs(600));
                return;
            }
            Reply::CutOff(b) => {
                let _ = out.write_all(head(b.len() as u64).as_bytes());
                let _ = out.write_all(&b[..b.len() / 2]);
                return;
            }
            Reply::Announce(len) => {
                let _ = out.write_all(head(len).as_bytes());
                while out.write_all(&zeros).is_ok() {}
                return;
            }
            Reply::Endless => {
                let _ = out.write_all(b"HTTP/1.1 200 OK\r\n\r\n");
                while out.write_all(&zeros).is_ok() {}
                return;
            }
        };
        if done.is_err() {
            return;
        }
    }
}

/// The tiny project: a library whose version the program prints.
fn project(version: &str) -> Project {
    let p = Project::from_files(&[
        ("Cargo.toml", "[workspace]\nresolver = \"2\"\nmembers = [\"app\", \"victim\"]\n"),
        ("victim/Cargo.toml", "[package]\nname = \"victim\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
        ("app/Cargo.toml", "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nvictim = { path = \"../victim\" }\n"),
        ("app/src/main.rs", "fn main() { println!(\"{}\", victim::version()); }\n"),
    ]);
    set_version(&p, version);
    p
}

fn set_version(p: &Project, version: &str) {
    write_file(
        &p.root,
        "victim/src/lib.rs",
        &format!("pub fn version() -> &'static str {{ \"{version}\" }}\n"),
    );
}

/// Every object of a local cache: (key hex, bytes), for entries and manifests.
fn objects(cache: &Path, sub: &str) -> HashMap<String, Vec<u8>> {
    let mut out = HashMap::new();
    let Ok(shards) = std::fs::read_dir(cache.join(sub)) else {
        return out;
    };
    for shard in shards.flatten() {
        for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                out.insert(name, std::fs::read(f.path()).unwrap());
            }
        }
    }
    out
}

/// The crate an entry was built for.
fn crate_of(hex: &str, bytes: &[u8]) -> String {
    let key: Digest = hex.parse().unwrap();
    Entry::decode(bytes, &key).unwrap().meta.crate_name
}

/// A writer's cache served as a well-behaved server would, with `alter` deciding first.
fn serve_cache(
    cache: &Path,
    alter: impl Fn(&str, Option<Vec<u8>>) -> Option<Reply> + Send + Sync + 'static,
) -> String {
    let entries = objects(cache, "v1/entries");
    let manifests = objects(cache, "v1/manifests");
    fake_server(Arc::new(move |path: &str| {
        if path == "/healthz" {
            return Reply::Body(b"ok".to_vec());
        }
        let stored = path
            .strip_prefix("/cachet/v1/e/")
            .and_then(|k| entries.get(k))
            .or_else(|| {
                path.strip_prefix("/cachet/v1/m/")
                    .and_then(|k| manifests.get(k))
            })
            .cloned();
        if let Some(reply) = alter(path, stored.clone()) {
            return reply;
        }
        stored.map(Reply::Body).unwrap_or(Reply::NotFound)
    }))
}

/// A fresh client of version `version` with its own empty cache.
fn client(version: &str) -> Project {
    project(version)
}

/// Builds `p` through cachet with `env`, under a watchdog (a hang fails the test instead of
/// blocking the suite), and returns stderr.
fn build(p: &Project, env: &[(&str, &str)]) -> String {
    let mut cmd = p.cargo_command(&["build"]);
    cmd.env("RUSTC_WRAPPER", crate::util::cachet_bin())
        .env("CACHET_DIR", &p.cache)
        .envs(env.iter().map(|(k, v)| (*k, *v)));
    let mut watched = std::process::Command::new("timeout");
    watched
        .arg("120")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    watched.current_dir(&p.root);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => watched.env(k, v),
            None => watched.env_remove(k),
        };
    }
    let out = crate::util::run_ok(watched);
    stderr_of(&out)
}

/// The build is right: the program prints `version`, and so does a rebuild from the local
/// cache alone (nothing wrong was kept).
fn assert_right(p: &Project, version: &str) {
    assert_eq!(p.run_program("target", "debug", "app").trim(), version);
    p.cachet_cargo(&["clean"], &[]);
    p.cachet_cargo(&["build"], &[]);
    assert_eq!(p.run_program("target", "debug", "app").trim(), version);
}

fn warnings(stderr: &str) -> usize {
    stderr.matches("warning: cachet:").count()
}

fn error_count(p: &Project, label: &str) -> u64 {
    p.stats().errors.get(label).copied().unwrap_or(0)
}

#[test]
fn an_entry_served_for_another_key_or_crate_is_a_miss_and_is_not_kept() {
    // What broke: GET of K2 answered with the valid entry of K1 (older source) was restored
    // and kept locally, so even builds without the server ran the old code.
    let writer = project("v1");
    writer.cachet_cargo(&["build"], &[]);
    let v1 = objects(&writer.cache, "v1/entries");
    set_version(&writer, "v2");
    writer.cachet_cargo(&["build"], &[]);
    let all = objects(&writer.cache, "v1/entries");
    let pick = |set: &HashMap<String, Vec<u8>>, krate: &str, old: bool| {
        set.iter()
            .find(|(k, b)| crate_of(k, b) == krate && (v1.contains_key(*k) == old))
            .map(|(k, b)| (k.clone(), b.clone()))
            .unwrap()
    };
    let (_, victim_v1) = pick(&all, "victim", true);
    let (victim_v2, _) = pick(&all, "victim", false);
    let (app_v2, _) = pick(&all, "app", false);
    let (_, victim_v2_bytes) = pick(&all, "victim", false);
    let url = serve_cache(&writer.cache, move |path, _| {
        let key = path.rsplit('/').next().unwrap_or("");
        if key == victim_v2 {
            // Another key of the same crate.
            Some(Reply::Body(victim_v1.clone()))
        } else if key == app_v2 {
            // Another crate's entry.
            Some(Reply::Body(victim_v2_bytes.clone()))
        } else {
            None
        }
    });
    let c = client("v2");
    let err = build(&c, &[("CACHET_SERVER", &url)]);
    assert_eq!(
        error_count(&c, "entry from server for another key"),
        2,
        "{:?}",
        c.stats()
    );
    assert_eq!(warnings(&err), 1, "{err}");
    assert_eq!(outcomes_for(&c.journal(), "victim"), vec![Outcome::Miss]);
    assert_right(&c, "v2");
}

#[test]
fn a_server_that_drips_stalls_or_cuts_off_costs_one_bounded_wait() {
    // What broke: a body sent one byte every 3 s held the build for 75 s, without a warning
    // and without tripping the breaker.
    let writer = project("v1");
    writer.cachet_cargo(&["build"], &[]);
    for (case, make) in [
        ("drip", Reply::Drip as fn(Vec<u8>) -> Reply),
        ("silent", |b: Vec<u8>| {
            Reply::SilentAfterHeaders(b.len() as u64)
        }),
        ("cut off", Reply::CutOff),
    ] {
        let url = serve_cache(&writer.cache, move |path, stored| {
            (path.contains("/v1/e/") || path.contains("/v1/m/"))
                .then(|| make(stored.unwrap_or_else(|| vec![b'x'; 64])))
        });
        let c = client("v1");
        let err = build(
            &c,
            &[("CACHET_SERVER", &url), ("CACHET_SERVER_TIMEOUT", "3s")],
        );
        assert_eq!(warnings(&err), 1, "{case}: {err}");
        assert!(
            err.contains("cannot reach the cache server"),
            "{case}: {err}"
        );
        assert_eq!(
            error_count(&c, "server unreachable"),
            1,
            "{case}: one wait, then the breaker: {:?}",
            c.stats()
        );
        assert_right(&c, "v1");
    }
}

#[test]
fn an_oversized_body_is_refused_without_holding_it() {
    // What broke: a 3 GiB body was buffered whole; in 1 GiB of memory the build was killed.
    let writer = project("v1");
    writer.cachet_cargo(&["build"], &[]);
    for (case, reply) in [("announced", 0u8), ("endless", 1)] {
        let url = serve_cache(&writer.cache, move |path, _| {
            let reply = match reply {
                0 => Reply::Announce(3 << 30),
                _ => Reply::Endless,
            };
            path.contains("/v1/e/").then_some(reply)
        });
        let c = client("v1");
        // The wrapper may not grow past 1 GiB of address space (rustc runs apart, below).
        let shim = c.tmp.path().join("limited-cachet");
        crate::util::write_script(
            &shim,
            &format!(
                "#!/bin/sh\nexec prlimit --as=1073741824 -- {} \"$@\"\n",
                crate::util::cachet_bin().display()
            ),
        );
        let mut cmd = c.cargo_command(&["build"]);
        cmd.env("RUSTC_WRAPPER", &shim)
            .env("CACHET_DIR", &c.cache)
            .env("CACHET_SERVER", &url)
            .env("CACHET_MAX_DOWNLOAD", "64M");
        let err = stderr_of(&crate::util::run_ok(cmd));
        assert_eq!(warnings(&err), 1, "{case}: {err}");
        assert!(
            err.contains("larger than CACHET_MAX_DOWNLOAD"),
            "{case}: {err}"
        );
        assert_right(&c, "v1");
        // Nothing of the download was left behind.
        let shards = std::fs::read_dir(c.cache.join("v1/entries")).unwrap();
        for shard in shards.flatten() {
            for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
                assert!(
                    !f.file_name().to_string_lossy().starts_with('.'),
                    "{case}: {f:?}"
                );
            }
        }
    }
}

/// Removes a container when dropped, whether the test passed or not.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.0])
            .output();
    }
}

#[test]
fn a_flooding_server_cannot_exhaust_memory_in_a_512m_cgroup() {
    // What broke: a 3 GiB body was buffered whole; inside a 1 GiB memory cgroup, where a plain
    // build succeeds, the wrapper was killed and `cargo build` failed. `prlimit` above bounds
    // address space; this runs the whole build (cargo, rustc, the wrapper) in a real memory
    // cgroup, with Docker's `--memory`, smaller than what the server sends and than what the
    // wrapper may download, so a wrapper holding a download in memory would be killed.
    let base = std::env::var("CACHET_TEST_CLIENT_BASE")
        .unwrap_or_else(|_| "cachet-ci/debian-client:bookworm".into());
    let has_base = std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &base])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        has_base,
        "Docker or the client base image {base} is missing: run `scripts/setup.sh` (scripts/setup.d/40-docker.sh)"
    );
    let writer = project("v1");
    writer.cachet_cargo(&["build"], &[]);
    let home = std::env::var("HOME").unwrap();
    let victim_manifest = objects(&writer.cache, "v1/manifests")
        .into_values()
        .find(|m| String::from_utf8_lossy(m).contains("victim/src/lib.rs"))
        .unwrap();
    for (case, max_download) in [("announced", "2G"), ("endless", "768M")] {
        // The toolchain runs from other paths in the container, so pre-keys differ from the
        // writer's: every manifest request gets the library's manifest, whose candidate
        // matches, so that the entry is asked for (a server may answer anything).
        let library = victim_manifest.clone();
        let url = serve_cache(&writer.cache, move |path, _| {
            let reply = match case {
                _ if path.contains("/v1/m/") => Reply::Body(library.clone()),
                "announced" => Reply::Announce(3 << 30),
                _ => Reply::Endless,
            };
            (path.contains("/v1/e/") || path.contains("/v1/m/")).then_some(reply)
        });
        let c = client("v1");
        let name = format!("cachet-hostile-{}-{case}", std::process::id());
        let _guard = Container(name.clone());
        let tmp = c.tmp.path().display().to_string();
        let volumes = [
            format!("{home}/.rustup:/root/.rustup:ro"),
            format!("{home}/.cargo/bin:/root/.cargo/bin:ro"),
            format!(
                "{}:/usr/local/bin/cachet:ro",
                crate::util::cachet_bin().display()
            ),
            // The same paths inside as outside: the journal and the program are read here.
            format!("{tmp}:{tmp}"),
        ];
        let mut cmd = std::process::Command::new("timeout");
        cmd.args(["300", "docker", "run", "--name", &name, "--network", "host"])
            .args(["--memory", "512m", "--memory-swap", "512m"]);
        for v in &volumes {
            cmd.args(["--volume", v]);
        }
        for e in [
            "PATH=/root/.cargo/bin:/usr/local/bin:/usr/bin:/bin".to_string(),
            "RUSTC_WRAPPER=/usr/local/bin/cachet".to_string(),
            format!("CACHET_DIR={}", c.cache.display()),
            format!("CACHET_SERVER={url}"),
            format!("CACHET_MAX_DOWNLOAD={max_download}"),
            "CARGO_INCREMENTAL=0".to_string(),
            "CARGO_TERM_COLOR=never".to_string(),
        ] {
            cmd.args(["--env", &e]);
        }
        cmd.args(["--workdir", &c.root.display().to_string(), &base])
            .args([
                "sh",
                "-c",
                "cargo build && cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
            ]);
        let out = cmd.output().unwrap();
        let err = stderr_of(&out);
        assert!(out.status.success(), "{case}: {:?}\n{err}", out.status);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "536870912",
            "{case}: the build ran in a 512 MiB cgroup"
        );
        assert_eq!(warnings(&err), 1, "{case}: {err}");
        assert!(
            err.contains("larger than CACHET_MAX_DOWNLOAD"),
            "{case}: {err}"
        );
        assert_eq!(
            outcomes_for(&c.journal(), "victim"),
            vec![Outcome::Miss],
            "{case}"
        );
        assert_eq!(c.run_program("target", "debug", "app").trim(), "v1");
    }
}

#[test]
fn a_manifest_naming_devices_fifos_outside_or_huge_files_is_ignored() {
    // What broke: a manifest naming /dev/zero made the wrapper hash it forever, and was kept,
    // so the build hung again with the server unset.
    let writer = project("v1");
    writer.cachet_cargo(&["build"], &[]);
    let c = client("v1");
    let fifo = c.root.join("victim/fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let big = c.root.join("victim/big.txt");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(100 << 20)
        .unwrap();
    let outside = c.tmp.path().join("secret.txt");
    std::fs::write(&outside, "secret").unwrap();
    let named: Vec<PathBuf> = vec!["/dev/zero".into(), fifo, big, outside];
    let named_text: Vec<String> = named.iter().map(|p| p.display().to_string()).collect();
    let hostile = named_text.clone();
    let url = serve_cache(&writer.cache, move |path, stored| {
        let stored = stored?;
        if !path.contains("/v1/m/") {
            return None;
        }
        // Each named file in a candidate of its own, ahead of the genuine ones.
        let mut m: serde_json::Value = serde_json::from_slice(&stored).unwrap();
        let candidates = m["candidates"].as_array_mut().unwrap();
        for p in &hostile {
            let fake =
                serde_json::json!({"files": [[p, Digest::of(b"guess").to_hex()]], "env": []});
            candidates.insert(0, fake);
        }
        Some(Reply::Body(serde_json::to_vec(&m).unwrap()))
    });
    let err = build(&c, &[("CACHET_SERVER", &url)]);
    assert_eq!(warnings(&err), 1, "{err}");
    assert!(
        error_count(&c, "manifest from server names an unsuitable file") >= 1,
        "{:?}",
        c.stats()
    );
    // The genuine candidates still give hits.
    assert_eq!(
        outcomes_for(&c.journal(), "victim"),
        vec![Outcome::HitRemote]
    );
    for m in objects(&c.cache, "v1/manifests").values() {
        let text = String::from_utf8_lossy(m);
        for p in &named_text {
            assert!(!text.contains(p.as_str()), "{p} kept in a local manifest");
        }
    }
    assert_right(&c, "v1");
}

#[test]
fn a_crate_reading_a_file_outside_the_build_is_compiled_and_counted_not_stored() {
    // What broke: a lookup refuses to hash a file outside the build's directories (a server's
    // manifest could otherwise make it read anything), so a crate that really reads one
    // (`include_str!` of an absolute path) was stored on every build and never hit.
    let p = project("v1");
    let outside = p.tmp.path().join("outside.txt");
    std::fs::write(&outside, "from outside").unwrap();
    std::fs::write(
        p.root.join("victim/src/lib.rs"),
        format!(
            "pub fn version() -> &'static str {{ include_str!({:?}) }}\n",
            outside.display().to_string()
        ),
    )
    .unwrap();
    for _ in 0..2 {
        p.cachet_cargo(&["clean"], &[]);
        p.cachet_cargo(&["build"], &[]);
        assert_eq!(p.run_program("target", "debug", "app"), "from outside\n");
    }
    let records = p.journal();
    assert_eq!(
        outcomes_for(&records, "victim"),
        vec![Outcome::MissNotStored, Outcome::MissNotStored]
    );
    let reason = "input outside the build's directories";
    assert!(records
        .iter()
        .filter(|r| r.krate.as_deref() == Some("victim"))
        .all(|r| r.reason.as_deref() == Some(reason)));
    assert_eq!(p.stats().not_stored.get(reason).copied(), Some(2));
    // The other crate still hits.
    assert_eq!(
        outcomes_for(&records, "app"),
        vec![Outcome::Miss, Outcome::HitLocal]
    );
}

#[test]
fn an_entry_with_files_the_compile_would_not_write_is_refused() {
    // What broke: every file of an entry was written out, so a forged entry could overwrite
    // other crates' artifacts.
    let writer = project("v1");
    writer.cachet_cargo(&["build"], &[]);
    let entries = objects(&writer.cache, "v1/entries");
    let (key, bytes) = entries
        .iter()
        .find(|(k, b)| crate_of(k, b) == "victim")
        .unwrap();
    let digest: Digest = key.parse().unwrap();
    let mut forged = Entry::decode(bytes, &digest).unwrap();
    forged.meta.files.push(cachet_core::entry::EntryFile {
        name: "libother.rlib".into(),
        mode: 0o644,
        size: 5,
        hash: Digest::of(b"owned"),
        within: None,
    });
    forged.contents.push(b"owned".to_vec());
    let forged = forged.encode(&digest, 1).unwrap();
    let target = key.clone();
    let url = serve_cache(&writer.cache, move |path, _| {
        path.ends_with(&target).then(|| Reply::Body(forged.clone()))
    });
    let c = client("v1");
    let err = build(&c, &[("CACHET_SERVER", &url)]);
    assert_eq!(
        error_count(&c, "entry holds an unexpected file"),
        1,
        "{:?}",
        c.stats()
    );
    assert!(!c.root.join("target/debug/deps/libother.rlib").exists());
    assert!(warnings(&err) <= 1, "{err}");
    assert_right(&c, "v1");
}

/// `bytes` (a valid entry) with its metadata changed by `edit` and its checksum recomputed, as
/// a server holding a write token could forge it (layout: see `cachet_core::entry`).
fn reframe(bytes: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    const HEADER: usize = 96;
    let frame_len = u64::from_le_bytes(bytes[20..28].try_into().unwrap()) as usize;
    let meta_len = u32::from_le_bytes(bytes[28..32].try_into().unwrap()) as usize;
    let frame = &bytes[HEADER..HEADER + frame_len];
    let mut meta: serde_json::Value =
        serde_json::from_slice(&bytes[HEADER + frame_len..HEADER + frame_len + meta_len]).unwrap();
    edit(&mut meta);
    let meta = serde_json::to_vec(&meta).unwrap();
    let mut header = bytes[..HEADER].to_vec();
    header[28..32].copy_from_slice(&(meta.len() as u32).to_le_bytes());
    let checksum = Digest::of(&[frame, &meta, &header[..64]].concat());
    header[64..].copy_from_slice(&checksum.0);
    [&header[..], frame, &meta].concat()
}

#[test]
fn entry_names_that_escape_the_out_dir_or_follow_symlinks_write_nothing_outside() {
    // What it guards: a forged entry naming `../`, an absolute path or a path through the
    // out-dir would write outside it; only unit tests covered the names so far. The entries
    // below carry valid checksums for their keys (a write token is enough to make them).
    let writer = project("v1");
    writer.cachet_cargo(&["build"], &[]);
    let entries = objects(&writer.cache, "v1/entries");
    let c = client("v1");
    let escape_dir = c.tmp.path().join("escape");
    std::fs::create_dir(&escape_dir).unwrap();
    let absolute = escape_dir.join("abs.rlib").display().to_string();
    let mut forged = HashMap::new();
    let mut names = Vec::new();
    for (key, bytes) in &entries {
        let krate = crate_of(key, bytes);
        let bad = if krate == "victim" {
            "../../../escape/up.rlib".to_string()
        } else {
            absolute.clone()
        };
        names.push(bad.clone());
        // The writer's local cache keeps entries raw: forge the compressed form a server holds.
        let digest: Digest = key.parse().unwrap();
        let wire = Entry::decode(bytes, &digest)
            .unwrap()
            .encode(&digest, 1)
            .unwrap();
        let bytes = reframe(&wire, |meta| meta["files"][0]["name"] = bad.clone().into());
        forged.insert(key.clone(), bytes);
    }
    assert_eq!(forged.len(), 2);
    let url = serve_cache(&writer.cache, move |path, _| {
        let key = path.rsplit('/').next().unwrap_or("");
        forged.get(key).map(|b| Reply::Body(b.clone()))
    });
    let err = build(&c, &[("CACHET_SERVER", &url)]);
    assert_eq!(
        error_count(&c, "corrupt entry from server"),
        2,
        "{names:?} {:?}",
        c.stats()
    );
    assert_eq!(warnings(&err), 1, "{err}");
    assert_eq!(
        std::fs::read_dir(&escape_dir).unwrap().count(),
        0,
        "{names:?}"
    );
    assert!(!c.root.join("escape").exists() && !c.root.join("target/escape").exists());
    assert_right(&c, "v1");

    // The genuine entries, restored into an out-dir whose outputs are symbolic links to files
    // elsewhere: the links are replaced, never written through.
    let url = serve_cache(&writer.cache, |_, _| None);
    let c = client("v1");
    let deps = c.root.join("target/debug/deps");
    std::fs::create_dir_all(&deps).unwrap();
    // cargo tags the target directory only when it creates it: tag it as cargo would, or
    // `{TARGET}` is not found and the keys differ from the writer's.
    std::fs::copy(
        writer.root.join("target/CACHEDIR.TAG"),
        c.root.join("target/CACHEDIR.TAG"),
    )
    .unwrap();
    let mut planted = Vec::new();
    for (key, bytes) in &entries {
        let digest: Digest = key.parse().unwrap();
        for file in Entry::decode(bytes, &digest).unwrap().meta.files {
            let target = c.tmp.path().join(format!("outside-{}", file.name));
            std::fs::write(&target, "outside").unwrap();
            std::os::unix::fs::symlink(&target, deps.join(&file.name)).unwrap();
            planted.push((deps.join(&file.name), target));
        }
    }
    build(&c, &[("CACHET_SERVER", &url)]);
    assert_eq!(
        outcomes_for(&c.journal(), "victim"),
        vec![Outcome::HitRemote]
    );
    for (link, target) in &planted {
        assert_eq!(std::fs::read_to_string(target).unwrap(), "outside");
        assert!(
            std::fs::symlink_metadata(link)
                .unwrap()
                .file_type()
                .is_file(),
            "{}",
            link.display()
        );
    }
    assert_right(&c, "v1");
}

#[test]
fn a_relative_cache_dir_is_refused_once_not_created_per_crate() {
    // What broke: CACHET_DIR=rel-cache made a cache inside every package rustc ran in.
    let p = project("v1");
    // The default directory it falls back to, kept inside the test.
    let xdg = p.tmp.path().join("xdg-cache");
    let xdg = xdg.to_str().unwrap();
    let err = build(&p, &[("CACHET_DIR", "rel-cache"), ("XDG_CACHE_HOME", xdg)]);
    assert_eq!(
        err.matches("CACHET_DIR=\"rel-cache\" is a relative path")
            .count(),
        1,
        "{err}"
    );
    for dir in [p.root.clone(), p.root.join("victim"), p.root.join("app")] {
        assert!(!dir.join("rel-cache").exists(), "{}", dir.display());
    }
    assert_eq!(p.run_program("target", "debug", "app").trim(), "v1");
    assert!(Path::new(xdg).join("cachet").is_dir());
}

/// A signing key written to a file in `dir`; returns (the key, its file).
fn signing_key(dir: &Path, name: &str) -> (SecretKey, PathBuf) {
    let key = SecretKey::generate(name).unwrap();
    let file = dir.join(format!("{name}.key"));
    std::fs::write(&file, key.secret_text()).unwrap();
    (key, file)
}

#[test]
fn a_client_trusting_a_gets_every_hit_from_a_server_filled_by_a() {
    let storage = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&["--storage", &format!("dir:{}", storage.path().display())]);
    let writer = project("v1");
    let (a, a_file) = signing_key(writer.tmp.path(), "a");
    writer.cachet_cargo(
        &["build"],
        &[
            ("CACHET_SERVER", server.base_url()),
            ("CACHET_SIGNING_KEY", a_file.to_str().unwrap()),
        ],
    );
    let c = client("v1");
    let err = build(
        &c,
        &[
            ("CACHET_SERVER", server.base_url()),
            ("CACHET_TRUSTED_KEYS", &a.public_text()),
        ],
    );
    assert_eq!(warnings(&err), 0, "{err}");
    for krate in ["victim", "app"] {
        assert_eq!(
            outcomes_for(&c.journal(), krate),
            vec![Outcome::HitRemote],
            "{krate}"
        );
    }
    assert_right(&c, "v1");
    // A client trusting another key takes nothing from this server.
    let other = SecretKey::generate("b").unwrap();
    let d = client("v1");
    let err = build(
        &d,
        &[
            ("CACHET_SERVER", server.base_url()),
            ("CACHET_TRUSTED_KEYS", &other.public_text()),
        ],
    );
    assert_eq!(warnings(&err), 1, "{err}");
    assert_eq!(outcomes_for(&d.journal(), "victim"), vec![Outcome::Miss]);
    assert!(
        error_count(&d, "manifest from server signed by an untrusted key") >= 1,
        "{:?}",
        d.stats()
    );
    assert_right(&d, "v1");
}

/// How a test server changes an entry signed by A before serving it (the other key is B).
type Alter = fn(&Digest, Vec<u8>, &SecretKey) -> Vec<u8>;

#[test]
fn a_client_trusting_a_refuses_entries_signed_by_b_unsigned_or_changed_after_signing() {
    let writer = project("v1");
    let (a, a_file) = signing_key(writer.tmp.path(), "a");
    writer.cachet_cargo(
        &["build"],
        &[("CACHET_SIGNING_KEY", a_file.to_str().unwrap())],
    );
    let a = Arc::new(a);
    let b = Arc::new(SecretKey::generate("b").unwrap());
    let cases: [(&str, &str, Alter); 4] = [
        ("as signed by A", "", |_, e, _| e),
        (
            "signed by B",
            "entry from server signed by an untrusted key",
            |key, e, b| {
                let mut unsigned = e[..e.len() - SIG_LEN].to_vec();
                let head = EntryHead::read(&unsigned[..], key).unwrap();
                unsigned.extend_from_slice(&b.sign_entry(&head.checksum).to_trailer());
                unsigned
            },
        ),
        ("unsigned", "unsigned entry from server", |_, e, _| {
            e[..e.len() - SIG_LEN].to_vec()
        }),
        (
            "changed after signing",
            "entry from server with a bad signature",
            |key, e, _| {
                let trailer = e[e.len() - SIG_LEN..].to_vec();
                let mut entry = Entry::decode(&e[..e.len() - SIG_LEN], key).unwrap();
                entry.stdout.extend_from_slice(b"changed");
                entry.meta.stdout_len += 7;
                let mut forged = entry.encode(key, 1).unwrap();
                forged.extend_from_slice(&trailer);
                forged
            },
        ),
    ];
    for (case, label, alter) in cases {
        let (signer, b) = (a.clone(), b.clone());
        let url = serve_cache(&writer.cache, move |path, stored| {
            let stored = stored?;
            let (kind, hex) = path.strip_prefix("/cachet/v1/")?.split_once('/')?;
            let key: Digest = hex.parse().ok()?;
            Some(Reply::Body(match kind {
                // Manifests are signed at upload; sign them as a writer holding A would.
                "m" => signer.sign_manifest(&key, &stored),
                _ => alter(&key, stored, &b),
            }))
        });
        let c = client("v1");
        let err = build(
            &c,
            &[
                ("CACHET_SERVER", &url),
                ("CACHET_TRUSTED_KEYS", &a.public_text()),
            ],
        );
        if label.is_empty() {
            assert_eq!(warnings(&err), 0, "{case}: {err}");
            assert_eq!(
                outcomes_for(&c.journal(), "victim"),
                vec![Outcome::HitRemote],
                "{case}"
            );
        } else {
            assert_eq!(warnings(&err), 1, "{case}: {err}");
            assert_eq!(
                outcomes_for(&c.journal(), "victim"),
                vec![Outcome::Miss],
                "{case}"
            );
            assert_eq!(error_count(&c, label), 2, "{case}: {:?}", c.stats());
        }
        assert_right(&c, "v1");
    }
}
