//! A full disk is an operating condition: uploads that cannot be stored get 507 with a body
//! that says so, least recently used objects are evicted to make room first (bounded, so a
//! disk that another program keeps filling does not empty the cache), reads keep working, `/readyz`
//! reports the condition and leaves no file behind, and everything recovers when space
//! returns. Uploads in progress reserve their bytes, so `--max-size` holds with concurrent
//! writers.
//!
//! What broke (issue 15): uploads got `500 internal error` on a full disk and nothing was
//! evicted; `/readyz` left an empty file in `tmp/` on every failed probe; with `--max-size 15M`
//! and 8 writers of 3.5 MiB on a 20 MiB disk, 80 of 120 uploads failed with 500 because uploads
//! in progress were not counted against the limit. Then each upload that met a full disk
//! evicted once before its 507, so with a foreign writer taking the freed space the cache
//! emptied itself chasing space.

use std::io::Write;
use std::time::Duration;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::util::{bytes, get, in_dir, put, send, start, tree_size, Mount};

/// Sizes of the files under `dirs`, by inode.
fn files_by_inode(dirs: &[PathBuf]) -> HashMap<u64, u64> {
    let mut files = HashMap::new();
    let mut stack = dirs.to_vec();
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => {
                    files.insert(m.ino(), m.len());
                }
                Err(_) => {}
            }
        }
    }
    files
}

fn stats(server: &crate::util::TestServer) -> serde_json::Value {
    serde_json::from_slice(&get(&server.url("/stats")).body).expect("stats JSON")
}

#[test]
fn a_full_disk_gets_507_evicts_to_make_room_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    let _mount = Mount::tmpfs(&root, "size=4m");
    let mut config = in_dir(&root);
    config.max_size = 100 << 20; // the disk, not the limit, is what runs out
    config.max_object_size = 16 << 20;
    let server = start(config);
    let object = |i: u64| bytes(i, 512 << 10);
    let url = |i: u64| server.url(&format!("/ns/k{i}"));

    // Twice what the disk holds, one object at a time: eviction makes room.
    for i in 0..16 {
        let r = put(&url(i), &object(i));
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
    assert!(get(&url(15)).body == object(15));
    assert!(stats(&server)["evictions"].as_u64() >= Some(8));

    // Larger than the whole disk: 507 with a body that says why, and the cache is not emptied
    // chasing space.
    let cached_before = (0..16).filter(|&i| get(&url(i)).status == 200).count();
    let r = put(&server.url("/ns/huge"), &bytes(99, 6 << 20));
    assert_eq!(r.status, 507);
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.contains("insufficient storage"), "{body}");
    assert!(body.contains("disk"), "{body}");
    let kept: Vec<u64> = (0..16).filter(|&i| get(&url(i)).status == 200).collect();
    assert!(
        kept.len() + 4 >= cached_before && !kept.is_empty(),
        "{cached_before} objects before, {kept:?} after: evicted more than the upload needed"
    );
    for &i in &kept {
        assert!(get(&url(i)).body == object(i), "reads keep working: k{i}");
    }
    assert_eq!(tree_size(&root.join("tmp")).0, 0, "no stray upload files");

    // Other files fill the disk and the cache has nothing left to give.
    for &i in &kept {
        assert_eq!(send("DELETE", &url(i), None, None).status, 204);
    }
    let filler_path = root.join("filler");
    let mut filler = std::fs::File::create(&filler_path).expect("filler");
    fill(&mut filler);
    let r = put(&server.url("/ns/small"), &bytes(7, 100 << 10));
    assert_eq!(r.status, 507, "{}", String::from_utf8_lossy(&r.body));
    for _ in 0..3 {
        let ready = get(&server.url("/readyz"));
        assert_eq!(ready.status, 503);
        let body = String::from_utf8_lossy(&ready.body);
        assert!(body.contains("full"), "{body}");
    }
    assert_eq!(tree_size(&root.join("tmp")).0, 0, "probes leave no file");
    assert_eq!(get(&server.url("/ns/small")).status, 404);

    // Space returns: ready again, uploads succeed.
    drop(filler);
    std::fs::remove_file(&filler_path).expect("remove filler");
    assert_eq!(get(&server.url("/readyz")).status, 200);
    let data = bytes(8, 100 << 10);
    assert_eq!(put(&server.url("/ns/small"), &data).status, 201);
    assert!(get(&server.url("/ns/small")).body == data);
    assert_eq!(tree_size(&root.join("tmp")).0, 0);
}

#[test]
fn concurrent_writers_never_push_the_store_past_max_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    let _mount = Mount::tmpfs(&root, "size=20m");
    let limit: u64 = 15 << 20;
    let mut config = in_dir(&root);
    config.max_size = limit;
    config.max_object_size = 4 << 20;
    let server = start(config);
    let size = 3_584 << 10; // 3.5 MiB
    let done = std::sync::atomic::AtomicBool::new(false);
    let (statuses, largest) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut largest = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                // Uploads in progress, then objects, by inode: a file renamed from one to the
                // other meanwhile is counted once.
                let on_disk = files_by_inode(&[root.join("tmp"), root.join("objects-v1")])
                    .values()
                    .sum::<u64>();
                largest = largest.max(on_disk);
                std::thread::sleep(Duration::from_millis(2));
            }
            largest
        });
        let writers: Vec<_> = (0..8u64)
            .map(|w| {
                let server = &server;
                scope.spawn(move || {
                    (0..10u64)
                        .map(|i| {
                            let url = server.url(&format!("/ns/w{w}-{i}"));
                            let r = put(&url, &bytes(w * 100 + i, size));
                            (r.status, String::from_utf8_lossy(&r.body).into_owned())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let statuses: Vec<(u16, String)> = writers
            .into_iter()
            .flat_map(|w| w.join().expect("writer"))
            .collect();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (statuses, sampler.join().expect("sampler"))
    });
    // Stored, or refused because the uploads in progress hold the limit: never a 500, and
    // never a full disk (the 20 MiB disk has room for the 15 MiB limit and nothing more).
    for (status, body) in &statuses {
        assert!(
            *status == 201 || (*status == 507 && body.contains("uploads in progress")),
            "{status} {body}"
        );
    }
    assert!(statuses.iter().filter(|(s, _)| *s == 201).count() >= 8);
    // Samples are not atomic (an object counted may be evicted before the uploads in progress
    // are), so allow one object of slack; without reservations they reach about 40 MiB.
    assert!(
        largest <= limit + size as u64,
        "objects and uploads in progress reached {largest} bytes, past --max-size {limit}"
    );
    let s = stats(&server);
    assert!(s["stored_bytes"].as_u64() <= Some(limit), "{s}");
}

/// Writes to `file` until the disk is full, down to the last few bytes.
fn fill(file: &mut std::fs::File) {
    let block = vec![0u8; 64 << 10];
    while file.write_all(&block).is_ok() {}
    while file.write_all(&block[..512]).is_ok() {}
}

#[test]
fn a_disk_another_program_keeps_filling_does_not_drain_the_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    let _mount = Mount::tmpfs(&root, "size=32m");
    let mut config = in_dir(&root);
    config.max_size = 1 << 30; // the disk, not the limit, is what runs out
    let server = start(config);
    let object = |i: u64| bytes(i, 512 << 10);
    let url = |i: u64| server.url(&format!("/ns/k{i}"));
    for i in 0..48 {
        assert_eq!(put(&url(i), &object(i)).status, 201);
    }
    let held = stats(&server)["stored_bytes"]
        .as_u64()
        .expect("stored_bytes");

    // Another program fills the disk, and keeps taking whatever space appears.
    let filler_path = root.join("filler");
    let mut filler = std::fs::File::create(&filler_path).expect("filler");
    fill(&mut filler);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let statuses: Vec<(u16, String)> = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                fill(&mut filler);
                std::thread::yield_now();
            }
        });
        let statuses = (100..160)
            .map(|i| {
                let r = put(&url(i), &object(i));
                (r.status, String::from_utf8_lossy(&r.body).into_owned())
            })
            .collect();
        // Reads keep working while the disk stays full.
        let ready = get(&server.url("/readyz"));
        assert_eq!(
            ready.status,
            503,
            "{}",
            String::from_utf8_lossy(&ready.body)
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        statuses
    });
    for (status, body) in &statuses {
        assert!(
            *status == 201 || (*status == 507 && body.contains("insufficient storage")),
            "{status} {body}"
        );
    }
    assert!(
        statuses[40..].iter().all(|(s, _)| *s == 507),
        "uploads get 507 once the bound is reached: {:?}",
        statuses.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );
    let kept: Vec<u64> = (0..48)
        .chain(100..160)
        .filter(|&i| {
            let r = get(&url(i));
            assert!(
                r.status == 404 || r.body == object(i),
                "k{i} read back wrong"
            );
            r.status == 200
        })
        .collect();
    let kept_bytes = kept.len() as u64 * (512 << 10);
    // Half of what it held, less one eviction's worth (the pending write and 1 MiB of slack).
    assert!(
        kept_bytes + (2 << 20) >= held / 2,
        "the cache held {held} bytes, keeps {kept_bytes} ({} objects) under a foreign writer",
        kept.len()
    );
    assert_eq!(tree_size(&root.join("tmp")).0, 0, "no stray upload files");

    // The other program stops and its file goes: ready again, uploads are stored.
    drop(filler);
    std::fs::remove_file(&filler_path).expect("remove filler");
    assert_eq!(get(&server.url("/readyz")).status, 200);
    for i in 200..204 {
        assert_eq!(put(&url(i), &object(i)).status, 201);
        assert!(get(&url(i)).body == object(i));
    }
}
