//! A soak of the real `cachet server` process: 64 clients mixing GET and PUT for about half a
//! minute while the test injects the faults of issue 15 one after the other: the server killed
//! with SIGKILL mid-upload and restarted, upload clients (real `curl` processes) killed with
//! SIGKILL mid-upload, the disk filled to the last byte and kept full by another writer, and
//! slowloris connections (headers a byte at a time, bodies a byte at a time).
//!
//! What a user would notice if any of it broke, and what is asserted:
//! - a wrong or partial object served: every 200 is compared byte for byte with the key's
//!   content (each key has one content, derived from its name);
//! - an acknowledged object lost: after the restart every object acknowledged before the kill
//!   reads back (nothing could be evicted before it); at the end every acknowledged object
//!   reads back or is absent, and the absent ones are no more than the evictions counted;
//! - the server stops serving: no request of the surviving server fails at the transport level,
//!   every status is one the API documents for the condition (201/507/503, 200/404), and
//!   `/healthz` answers throughout;
//! - resources leak or grow without bound: peak RSS and open files stay under a bound, and
//!   both the file count and `tmp/` return to their resting state afterwards;
//! - counters lie: requests, hits, misses, received bytes, objects and stored bytes equal what
//!   the clients saw and what is on disk.
//!
//! Bounded in time: about 30 s of load and a few seconds of checks. Every wait has a bound and
//! says what it waited for; a failure inside the load stops the clients (see [`StopOnDrop`]).

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::util::{
    bytes, closed_by_peer, get, metric, read_body, spawn_server_logged, tree_size, wait_for, Mount,
    ServerProcess,
};

const CLIENTS: u64 = 64;
/// Keys of the first server's life: small enough that nothing can be evicted before the kill.
const KEYS_BEFORE_KILL: u64 = 64;
/// Keys after the restart: more than the store holds.
const KEYS: u64 = 200;
const UPLOAD_MEMORY: u64 = 16 << 20;

/// Each key has one content, so any 200 can be checked byte for byte.
fn size_of(n: u64, small: bool) -> usize {
    let sizes: [usize; 4] = if small {
        [1 << 10, 16 << 10, 64 << 10, 200 << 10]
    } else {
        [4 << 10, 64 << 10, 256 << 10, 1 << 20]
    };
    sizes[(n % 4) as usize] + n as usize
}

/// Every key's content, made once: 64 clients check every body they read.
fn content(n: u64) -> &'static [u8] {
    static ALL: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    &ALL.get_or_init(|| (0..KEYS).map(make_content).collect())[n as usize]
}

fn make_content(n: u64) -> Vec<u8> {
    let len = size_of(n, n < KEYS_BEFORE_KILL);
    let mut out = Vec::with_capacity(len + 8);
    let mut x = (n + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// What the clients saw, per server life (generation).
#[derive(Default)]
struct Seen {
    /// (generation, method, status) -> count.
    statuses: BTreeMap<(u32, &'static str, u16), u64>,
    /// Object bytes acknowledged with 201, per generation.
    acked_bytes: BTreeMap<u32, u64>,
    /// Requests that got no (complete) answer, per generation, with the first error.
    failed: BTreeMap<u32, (u64, String)>,
    /// Keys acknowledged with 201 at least once.
    acked: HashSet<u64>,
    /// Wrong bodies served: (key, status, length).
    wrong: Vec<(u64, u16, usize)>,
}

/// The server under test and where clients find it.
struct Target {
    current: RwLock<(u32, String)>,
    seen: Mutex<Seen>,
}

impl Target {
    fn base(&self) -> (u32, String) {
        self.current.read().expect("lock").clone()
    }

    fn record(&self, generation: u32, method: &'static str, result: Result<u16, String>) {
        let mut seen = self.seen.lock().expect("lock");
        match result {
            Ok(status) => {
                *seen
                    .statuses
                    .entry((generation, method, status))
                    .or_default() += 1
            }
            Err(e) => {
                let entry = seen.failed.entry(generation).or_insert((0, e));
                entry.0 += 1;
            }
        }
    }

    fn count(&self, generation: u32, method: &'static str, status: u16) -> u64 {
        let seen = self.seen.lock().expect("lock");
        seen.statuses
            .get(&(generation, method, status))
            .copied()
            .unwrap_or(0)
    }

    /// GET of key `n`, checked; Some(present) when answered.
    fn get(&self, agent: &ureq::Agent, n: u64) -> Option<bool> {
        let (generation, base) = self.base();
        let result = (|| {
            let mut r = agent
                .get(format!("{base}/soak/k{n}"))
                .call()
                .map_err(|e| e.to_string())?;
            let status = r.status().as_u16();
            let body = read_body(&mut r).map_err(|e| format!("reading the body: {e}"))?;
            Ok((status, body))
        })();
        match result {
            Ok((status, body)) => {
                self.record(generation, "GET", Ok(status));
                if (status == 200 && body != content(n)) || !matches!(status, 200 | 404) {
                    self.seen
                        .lock()
                        .expect("lock")
                        .wrong
                        .push((n, status, body.len()));
                }
                Some(status == 200)
            }
            Err(e) => {
                self.record(generation, "GET", Err(e));
                None
            }
        }
    }

    fn put(&self, agent: &ureq::Agent, n: u64) {
        let (generation, base) = self.base();
        let data = content(n);
        let result = agent
            .put(format!("{base}/soak/k{n}"))
            .send(data)
            .map_err(|e| e.to_string())
            .map(|mut r| {
                // Read the answer's body so the connection can be reused.
                let _ = r.body_mut().read_to_vec();
                r.status().as_u16()
            });
        if result == Ok(201) {
            let mut seen = self.seen.lock().expect("lock");
            seen.acked.insert(n);
            *seen.acked_bytes.entry(generation).or_default() += data.len() as u64;
        }
        self.record(generation, "PUT", result);
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// Peak RSS (KiB) and open files of a process, sampled until told to stop.
#[derive(Default)]
struct Peaks {
    rss_kib: u64,
    fds: usize,
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn start_server(root: &Path, log: &Path) -> ServerProcess {
    let storage = format!("dir:{}", root.display());
    let budget = format!("{UPLOAD_MEMORY}");
    spawn_server_logged(
        &[
            "--storage",
            &storage,
            "--max-size",
            "40M",
            "--max-object-size",
            "4M",
            "--header-timeout",
            "2s",
            "--body-timeout",
            "3s",
            "--upload-memory",
            &budget,
        ],
        &[],
        &[],
        log,
    )
}

/// A real client process uploading `len` bytes slowly, to be killed mid-upload.
fn slow_curl(dir: &Path, url: &str, len: usize) -> Child {
    let file = dir.join(format!("curl-{}", url.rsplit('/').next().unwrap_or("x")));
    std::fs::write(&file, bytes(7, len)).expect("curl's upload");
    Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-H",
            "Expect:",
            "--limit-rate",
            "64k",
            "-T",
        ])
        .arg(&file)
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl is needed for this test")
}

fn kill_9(child: &mut Child) {
    child.kill().expect("kill -9");
    child.wait().expect("reap");
}

/// Client processes, killed when dropped (also when the test fails before it kills them).
struct Curls(Vec<Child>);

impl Curls {
    /// Slow uploads of 2 MiB each to `/soak/curl{n}` on `server`, one per `n`.
    fn start(dir: &Path, server: &ServerProcess, ns: std::ops::Range<u32>) -> Curls {
        Curls(
            ns.map(|i| slow_curl(dir, &server.url(&format!("/soak/curl{i}")), 2 << 20))
                .collect(),
        )
    }
}

impl Drop for Curls {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Stops the load when dropped, on the way out of the scope whether the test passed or failed.
/// A scope joins every thread before it lets a panic through: without this, a failed wait or
/// assertion left 64 clients (and the samplers) looping for ever, so a failure looked like a
/// hang and never said what it was.
struct StopOnDrop<'a> {
    phase: &'a AtomicU32,
    done: &'a AtomicBool,
    hog: &'a AtomicBool,
}

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.phase.store(0, Ordering::Relaxed);
        self.done.store(true, Ordering::Relaxed);
        self.hog.store(true, Ordering::Relaxed);
    }
}

/// Keeps the file system holding `path` full until `stop`, as another program writing there
/// would: fills it to the last byte, then takes every byte the store frees. (Filling it once
/// is not enough to see 507s: uploads then make room by evicting and the cache goes on in the
/// space it holds, which is right, but says nothing about the full disk.) Returns the file.
fn hog_disk(path: &Path, stop: &AtomicBool) -> std::fs::File {
    let mut filler = std::fs::File::create(path).expect("filler");
    let block = vec![0u8; 64 << 10];
    while !stop.load(Ordering::Relaxed) {
        let wrote = [64 << 10, 4 << 10, 512]
            .into_iter()
            .any(|n| filler.write_all(&block[..n]).is_ok());
        if !wrote {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    filler
}

/// Sizes of the files under `dir` whose names look like objects (the disk store's layout:
/// `objects-v1/<ns>/<hh>/<hash>`).
fn objects_on_disk(root: &Path) -> (usize, u64) {
    tree_size(&root.join("objects-v1"))
}

fn stats(base: &str) -> serde_json::Value {
    serde_json::from_slice(&get(&format!("{base}/stats")).body).expect("stats JSON")
}

#[test]
fn soak_64_clients_through_kill_9_a_full_disk_and_slowloris() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root: PathBuf = dir.path().join("store");
    let _mount = Mount::tmpfs(&root, "size=64m");
    let log = dir.path().join("server.log");
    let mut server = start_server(&root, &log);
    let target = Target {
        current: RwLock::new((1, server.url(""))),
        seen: Mutex::new(Seen::default()),
    };
    let phase = AtomicU32::new(1); // 1: before the kill, 2: after the restart, 0: stop
    let healthz_failures = Mutex::new(Vec::<String>::new());
    let done = AtomicBool::new(false);
    let hog_stop = AtomicBool::new(false);
    let filler_path = root.join("filler");
    let mut checks = 0u64;

    std::thread::scope(|scope| {
        let _stop = StopOnDrop {
            phase: &phase,
            done: &done,
            hog: &hog_stop,
        };
        // 64 clients, each with its own keep-alive connection, 60% GET and 40% PUT.
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (target, phase) = (&target, &phase);
                scope.spawn(move || {
                    let agent = agent();
                    let mut x = c.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                    loop {
                        let keys = match phase.load(Ordering::Relaxed) {
                            0 => break,
                            1 => KEYS_BEFORE_KILL,
                            _ => KEYS,
                        };
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let n = (x >> 8) % keys;
                        if x % 10 < 6 {
                            target.get(&agent, n);
                        } else {
                            target.put(&agent, n);
                        }
                    }
                })
            })
            .collect();

        // Life 1: load, client processes killed mid-upload, then the server killed mid-upload.
        let mut curls = Curls::start(dir.path(), &server, 0..4);
        wait_for(
            "uploads in progress on the first server",
            Duration::from_secs(60),
            || tree_size(&root.join("tmp")).0 >= 4 && target.count(1, "PUT", 201) >= 64,
        );
        for c in &mut curls.0[..2] {
            kill_9(c);
        }
        let pid = server.child.id();
        kill_9(&mut server.child);
        for c in &mut curls.0[2..] {
            kill_9(c);
        }
        let acked_before_kill = target.seen.lock().expect("lock").acked.clone();

        // Life 2: a restart over the same directory. Everything acknowledged is there.
        server = start_server(&root, &log);
        assert_ne!(server.child.id(), pid);
        let base = server.url("");
        let check = agent();
        for &n in &acked_before_kill {
            assert!(
                target_get_at(&check, &base, n).as_deref() == Some(content(n)),
                "k{n} was acknowledged before the kill and is not read back intact"
            );
        }
        for i in 0..4 {
            assert_eq!(
                get(&server.url(&format!("/soak/curl{i}"))).status,
                404,
                "a killed upload became an object"
            );
        }
        *target.current.write().expect("lock") = (2, base);
        phase.store(2, Ordering::Relaxed);
        checks = acked_before_kill.len() as u64 + 4;
        let pid = server.child.id();
        let resting_fds = open_files(pid);
        let resting_rss = rss_kib(pid).unwrap_or(0) << 10;
        let addr = server.addr;
        let (done, failures) = (&done, &healthz_failures);
        let sampler = scope.spawn(move || {
            let mut peaks = Peaks::default();
            while !done.load(Ordering::Relaxed) {
                peaks.rss_kib = peaks.rss_kib.max(rss_kib(pid).unwrap_or(0));
                peaks.fds = peaks.fds.max(open_files(pid));
                std::thread::sleep(Duration::from_millis(20));
            }
            peaks
        });
        let health = scope.spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let r = (|| {
                    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(20))
                        .map_err(|e| format!("connecting: {e}"))?;
                    s.set_read_timeout(Some(Duration::from_secs(20)))
                        .map_err(|e| e.to_string())?;
                    s.set_write_timeout(Some(Duration::from_secs(20)))
                        .map_err(|e| e.to_string())?;
                    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                        .map_err(|e| e.to_string())?;
                    let mut answer = String::new();
                    s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
                    if answer.starts_with("HTTP/1.1 200") {
                        Ok(())
                    } else {
                        Err(answer)
                    }
                })();
                if let Err(e) = r {
                    failures.lock().expect("lock").push(e);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });

        // Slowloris: 200 connections sending their headers a byte at a time, 20 uploads that
        // send 64 KiB of a declared 1 MiB and then a byte a second (holding upload memory).
        let loris = scope.spawn(move || {
            let mut sockets: Vec<TcpStream> = (0..200)
                .filter_map(|_| {
                    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(20)).ok()?;
                    s.set_write_timeout(Some(Duration::from_secs(20))).ok()?;
                    Some(s)
                })
                .collect();
            let request = b"PUT /soak/loris HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n";
            let start = Instant::now();
            let mut cut = 0;
            for i in 0..request.len() {
                sockets.retain_mut(|s| {
                    if s.write_all(&request[i..=i]).is_err() {
                        cut += 1;
                        return false;
                    }
                    true
                });
                if sockets.is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            // Whatever is still open must be cut off by the header timeout.
            for mut s in sockets {
                assert!(
                    closed_by_peer(&mut s, Duration::from_secs(30)),
                    "a slowloris connection is still open {:?} after it started",
                    start.elapsed()
                );
                cut += 1;
            }
            cut
        });
        let slow_bodies = scope.spawn(move || {
            let mut sockets: Vec<TcpStream> = (0..20)
                .filter_map(|i| {
                    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(20)).ok()?;
                    s.set_write_timeout(Some(Duration::from_secs(20))).ok()?;
                    write!(
                        s,
                        "PUT /soak/slow{i} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                        1 << 20
                    )
                    .ok()?;
                    s.write_all(&bytes(i, 64 << 10)).ok()?;
                    Some(s)
                })
                .collect();
            for _ in 0..8 {
                std::thread::sleep(Duration::from_secs(1));
                sockets.retain_mut(|s| s.write_all(b"x").is_ok());
            }
            sockets.len()
        });

        // Client processes killed mid-upload on the surviving server too.
        let mut curls = Curls::start(dir.path(), &server, 4..8);
        wait_for(
            "load on the restarted server",
            Duration::from_secs(60),
            || target.count(2, "PUT", 201) >= 50,
        );
        for c in &mut curls.0 {
            kill_9(c);
        }

        // Another program fills the disk and keeps it full; uploads get 507 (after evicting
        // once each: the cache shrinks, possibly to nothing), reads go on.
        let reads = || target.count(2, "GET", 200) + target.count(2, "GET", 404);
        let (full_from, reads_from) = (target.count(2, "PUT", 507), reads());
        let hog = {
            let (path, stop) = (&filler_path, &hog_stop);
            scope.spawn(move || hog_disk(path, stop))
        };
        wait_for(
            "uploads refused on the full disk",
            Duration::from_secs(60),
            || target.count(2, "PUT", 507) >= full_from + 20,
        );
        wait_for(
            "reads answered on the full disk",
            Duration::from_secs(60),
            || reads() >= reads_from + 50,
        );
        hog_stop.store(true, Ordering::Relaxed);
        drop(hog.join().expect("the disk hog"));
        std::fs::remove_file(&filler_path).expect("remove the filler");
        let stored_after = target.count(2, "PUT", 201);
        wait_for("uploads stored again", Duration::from_secs(60), || {
            target.count(2, "PUT", 201) >= stored_after + 50
        });

        let cut = loris.join().expect("slowloris");
        assert_eq!(cut, 200, "every slowloris connection is cut off");
        slow_bodies.join().expect("slow bodies");
        phase.store(0, Ordering::Relaxed);
        for c in clients {
            c.join().expect("client");
        }
        // Resting state: uploads finished or abandoned leave nothing behind, and the
        // connections' files are closed.
        wait_for("tmp/ to empty", Duration::from_secs(60), || {
            tree_size(&root.join("tmp")).0 == 0
        });
        wait_for("open files back to rest", Duration::from_secs(60), || {
            open_files(pid) <= resting_fds + 4
        });
        done.store(true, Ordering::Relaxed);
        health.join().expect("healthz");
        let peaks = sampler.join().expect("sampler");
        eprintln!(
            "soak: peak RSS {} MiB (resting {} MiB), peak open files {} (resting {resting_fds})",
            peaks.rss_kib >> 10,
            resting_rss >> 20,
            peaks.fds
        );
        // The budget bounds buffered uploads; a read holds at most 1 MiB (a small object read
        // whole, or a 1 MiB chunk of a large one). Slack for the allocator and the runtime.
        let bound = resting_rss + 2 * UPLOAD_MEMORY + CLIENTS * (1 << 20) + (48 << 20);
        assert!(
            peaks.rss_kib << 10 <= bound,
            "peak RSS {} MiB over {} MiB",
            peaks.rss_kib >> 10,
            bound >> 20
        );
        // Each connection holds at most its socket and one file.
        let connections = CLIENTS as usize + 200 + 20 + 8 + 2;
        assert!(
            peaks.fds <= resting_fds + 2 * connections,
            "peak open files {} for {connections} connections",
            peaks.fds
        );
    });

    let failures = healthz_failures.into_inner().expect("lock");
    assert!(failures.is_empty(), "/healthz failed: {failures:?}");
    let base = server.url("");
    let seen = target.seen.into_inner().expect("lock");
    assert!(
        seen.wrong.is_empty(),
        "wrong bodies or statuses served (key, status, length): {:?}",
        seen.wrong
    );
    assert!(
        !seen.failed.contains_key(&2),
        "requests to the surviving server failed: {:?}",
        seen.failed
    );
    for (&(generation, method, status), n) in &seen.statuses {
        let allowed: &[u16] = match method {
            "GET" => &[200, 404],
            _ => &[201, 503, 507],
        };
        assert!(
            allowed.contains(&status),
            "{n} {method} answered {status} in life {generation}"
        );
    }
    let metrics = String::from_utf8(get(&format!("{base}/metrics")).body).expect("utf-8");
    let requests = |method: &str, status: u16| {
        metric(
            &metrics,
            &format!(
                "cachet_requests_total{{method=\"{method}\",route=\"/{{namespace}}/{{key}}\",status=\"{status}\"}}"
            ),
        )
        .unwrap_or(0.0) as u64
    };
    let count = |method: &'static str, status: u16| {
        seen.statuses
            .get(&(2, method, status))
            .copied()
            .unwrap_or(0)
    };
    // The restart's checks (GETs, `checks` of them) were made before life 2 was counted.
    let (gets_200, gets_404) = (count("GET", 200), count("GET", 404));
    assert_eq!(
        requests("GET", 200) + requests("GET", 404),
        gets_200 + gets_404 + checks
    );
    assert_eq!(
        metric(&metrics, "cachet_cache_hits_total").unwrap_or(0.0) as u64
            + metric(&metrics, "cachet_cache_misses_total").unwrap_or(0.0) as u64,
        gets_200 + gets_404 + checks
    );
    assert_eq!(requests("PUT", 201), count("PUT", 201), "{metrics}");
    assert_eq!(
        metric(&metrics, "cachet_received_bytes_total").unwrap_or(0.0) as u64,
        seen.acked_bytes.get(&2).copied().unwrap_or(0),
        "received bytes are the bytes of the stored uploads"
    );

    // Every acknowledged object reads back byte for byte or is absent, and absences are
    // accounted for by evictions (nothing was evicted before the kill: checked at restart).
    let reader = agent();
    let mut absent = 0;
    let mut present = 0u64;
    let mut present_bytes = 0u64;
    for n in 0..KEYS {
        match target_get_at(&reader, &base, n) {
            Some(body) => {
                assert!(body == content(n), "k{n} is wrong at the end");
                present += 1;
                present_bytes += body.len() as u64;
            }
            None if seen.acked.contains(&n) => absent += 1,
            None => {}
        }
    }
    let s = stats(&base);
    assert!(
        absent <= s["evictions"].as_u64().unwrap_or(0),
        "{absent} acknowledged objects are missing, {s}"
    );
    let on_disk = objects_on_disk(&root);
    assert_eq!(
        (s["objects"].as_u64(), s["stored_bytes"].as_u64(), on_disk),
        (
            Some(present),
            Some(present_bytes),
            (present as usize, present_bytes)
        ),
        "(index objects, index bytes, files on disk) against the objects served; {s}"
    );
    assert!(
        present_bytes <= 40 << 20,
        "{present_bytes} bytes stored past --max-size"
    );
}

/// GET of key `n` from `base`: the body if 200, None if 404 (anything else fails the test).
fn target_get_at(agent: &ureq::Agent, base: &str, n: u64) -> Option<Vec<u8>> {
    let mut r = agent
        .get(format!("{base}/soak/k{n}"))
        .call()
        .unwrap_or_else(|e| panic!("GET k{n}: {e}"));
    match r.status().as_u16() {
        200 => Some(
            r.body_mut()
                .with_config()
                .limit(u64::MAX)
                .read_to_vec()
                .expect("body"),
        ),
        404 => None,
        s => panic!("GET k{n} answered {s}"),
    }
}
