//! Unit tests of the disk store: the index alone, then the store on a real directory.

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};

use super::index::Reservation;
use super::room::{DiskRoom, SHARE_DIVISOR};
use super::*;

fn id(ns: &str, key: &str) -> ObjectId {
    ObjectId {
        namespace: ns.into(),
        key: key.into(),
    }
}

async fn put(store: &DiskStore, ns: &str, key: &str, data: &[u8]) {
    let mut up = store.put(&id(ns, key)).await.expect("put");
    up.write(Bytes::copy_from_slice(data)).await.expect("write");
    up.commit().await.expect("commit");
}

fn slot(i: u8) -> Slot {
    Slot {
        ns: Arc::from("ns"),
        hash: [i; 32],
    }
}

#[test]
fn reservations_evict_the_least_recently_used_and_hold_the_limit() {
    let mut idx = Index::default();
    for i in 0..4 {
        idx.upsert(slot(i), 100, u64::from(i));
    }
    idx.touch(&slot(0), 10);
    // 400 stored; 250 more under a limit of 500 evicts the two least recently used.
    assert_eq!(
        idx.reserve(250, 500),
        Reservation::Granted(vec![slot(1), slot(2)])
    );
    assert_eq!((idx.total, idx.reserved), (200, 250));
    // Reservations alone may not pass the limit, and such a refusal evicts nothing.
    assert_eq!(idx.reserve(300, 500), Reservation::Refused);
    assert_eq!(idx.map.len(), 2);
    assert_eq!(
        idx.reserve(250, 500),
        Reservation::Granted(vec![slot(3), slot(0)])
    );
    assert_eq!(idx.total + idx.reserved, 500);
    // A commit turns a reservation into an object.
    idx.release(250);
    idx.upsert(slot(9), 250, 20);
    assert_eq!((idx.total, idx.reserved), (250, 250));
    idx.release(250);
    assert_eq!(idx.reserved, 0);
}

#[test]
fn evicting_for_disk_space_stops_once_enough_is_freed() {
    let mut idx = Index::default();
    for i in 0..5 {
        idx.upsert(slot(i), 100, u64::from(i));
    }
    assert_eq!(idx.evict_bytes(150), vec![slot(0), slot(1)]);
    assert_eq!(idx.total, 300);
    assert_eq!(idx.take_older_than(4, 10), vec![slot(2), slot(3)]);
    assert_eq!(idx.take_older_than(100, 0), Vec::<Slot>::new());
    assert_eq!(idx.evict_over(0), vec![slot(4)]);
}

#[test]
fn evicting_for_disk_space_goes_on_while_the_store_uses_what_it_frees() {
    // The store alone fills the disk: each upload frees 2 MiB and writes them back.
    let mut room = DiskRoom::default();
    let mut written = 0;
    for _ in 0..1000 {
        assert!(room.may_evict(10 << 20, written));
        room.evicted(2 << 20);
        written += 2 << 20;
    }
    assert_eq!(room.unspent(written), 0);
}

#[test]
fn evicting_for_disk_space_stops_when_others_take_what_it_frees() {
    // 100 MiB stored when the disk filled; another program takes every byte freed.
    let stored = 100 << 20;
    let mut room = DiskRoom::default();
    let mut freed = 0;
    let mut written = 0;
    while room.may_evict(stored - freed, written) {
        room.evicted(3 << 20);
        freed += 3 << 20;
        written += 1 << 20; // an upload's first megabyte, then 507
        assert!(freed < stored, "emptied the cache chasing space");
    }
    // At most half of the store (plus one eviction) went, and it stays that way.
    assert!(freed - written >= stored / SHARE_DIVISOR, "{freed}");
    assert!(
        freed - written < stored / SHARE_DIVISOR + (3 << 20),
        "{freed}"
    );
    for _ in 0..100 {
        assert!(!room.may_evict(stored - freed, written));
    }
    // A full disk seen again is no reason to resume; room for what was freed is.
    room.seen_free(0, written, 2 << 20);
    assert!(!room.may_evict(stored - freed, written));
    room.seen_free(freed - written - 1, written, 2 << 20);
    assert!(!room.may_evict(stored - freed, written));
    room.seen_free(freed - written, written, 2 << 20);
    assert!(room.may_evict(stored - freed, written));
    // So is the store writing back what it freed (the other program stopped and left).
    let mut room2 = DiskRoom::default();
    assert!(room2.may_evict(10 << 20, 0));
    room2.evicted(5 << 20);
    assert!(!room2.may_evict(5 << 20, 0));
    assert!(
        room2.may_evict(5 << 20, 5 << 20),
        "written back: a new episode"
    );
}

#[tokio::test]
async fn lru_evicts_least_recently_used() {
    let store = DiskStore::open(None, 1000).expect("open");
    put(&store, "a", "k1", &[1; 300]).await;
    put(&store, "a", "k2", &[2; 300]).await;
    put(&store, "a", "k3", &[3; 300]).await;
    assert!(store.get(&id("a", "k1")).await.expect("get").is_some());
    put(&store, "a", "k4", &[4; 300]).await;
    assert!(store.head(&id("a", "k2")).await.expect("head").is_none());
    for k in ["k1", "k3", "k4"] {
        assert!(
            store.head(&id("a", k)).await.expect("head").is_some(),
            "{k}"
        );
    }
    assert_eq!(store.usage().evictions, 1);
    assert_eq!(store.usage().stored_bytes, 900);
}

#[tokio::test]
async fn abandoned_uploads_leave_nothing() {
    let store = DiskStore::open(None, 1 << 30).expect("open");
    {
        let mut up = store.put(&id("a", "big")).await.expect("put");
        up.write(Bytes::from(vec![7u8; 3 << 20]))
            .await
            .expect("write");
    }
    assert!(store.head(&id("a", "big")).await.expect("head").is_none());
    let leftovers = fs::read_dir(store.root().join("tmp")).expect("tmp").count();
    assert_eq!(leftovers, 0);
}

/// Pruning (or evicting) an object while a client streams it must not cut the stream
/// short: the reader keeps its open file.
#[tokio::test]
async fn a_read_in_progress_survives_pruning() {
    let store = DiskStore::open(None, 1 << 30).expect("open");
    let data: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 251) as u8).collect();
    put(&store, "a", "big", &data).await;
    let object = store
        .get(&id("a", "big"))
        .await
        .expect("get")
        .expect("found");
    let ObjectBody::Stream(mut stream) = object.body else {
        panic!("a 3 MiB object is streamed")
    };
    let mut read = stream.next().await.expect("chunk").expect("read").to_vec();
    // "Older than zero" excludes an object used in this very millisecond.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.prune(Duration::ZERO).await.expect("prune") == 0 {
        assert!(std::time::Instant::now() < deadline, "never pruned");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(store.head(&id("a", "big")).await.expect("head").is_none());
    while let Some(chunk) = stream.next().await {
        read.extend_from_slice(&chunk.expect("read"));
    }
    assert!(read == data, "the stream delivered the whole object");
}

#[test]
fn refuses_foreign_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("precious.txt"), "x").expect("write");
    let err = DiskStore::open(Some(dir.path()), 1 << 20)
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("non-empty"), "{err}");
}

/// Files under `objects-v1/` and their total size.
fn on_disk(store: &DiskStore) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut dirs = vec![store.inner.objects.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("list").flatten() {
            let meta = entry.metadata().expect("stat");
            if meta.is_dir() {
                dirs.push(entry.path());
            } else {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    (files, bytes)
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "never {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A read opens an object's file, then notes the read in the index. An eviction landing in
/// between used to make the read index the object again, with its file gone: the index then
/// counted an object that no read could find, for good (the soak test's intermittent
/// "index count against files on disk" failure).
#[tokio::test]
async fn a_read_racing_an_eviction_does_not_count_the_evicted_object_again() {
    let store = DiskStore::open(None, 1000).expect("open");
    wait_until("indexed", || store.usage().index_ready);
    put(&store, "a", "k1", &[1; 600]).await;
    let k1 = id("a", "k1");
    // The read has opened k1's file...
    let opened = fs::File::open(store.inner.path(&k1)).expect("open k1");
    // ...when an upload evicts it...
    put(&store, "a", "k2", &[2; 600]).await;
    assert!(store.head(&k1).await.expect("head").is_none(), "k1 evicted");
    // ...and then the read notes itself in the index.
    store.inner.note_read(&k1);
    drop(opened);
    let usage = store.usage();
    assert_eq!((usage.objects, usage.stored_bytes), on_disk(&store));
    assert_eq!((usage.objects, usage.stored_bytes), (1, 600));
    // A read of an object the index does not know yet (a previous run's) still indexes it.
    let k3 = id("a", "k3");
    let path = store.inner.path(&k3);
    fs::create_dir_all(path.parent().expect("parent")).expect("shard");
    fs::write(&path, [3; 100]).expect("a previous run's object");
    assert!(store.get(&k3).await.expect("get").is_some());
    assert_eq!(store.usage().objects, 2);
    assert_eq!(store.usage().stored_bytes, 700);
}

/// A write reserves its bytes of `--max-size` before writing them. When the write then
/// failed (on a full disk, typically), the reservation was never given back: after enough
/// failures uploads in progress seemed to hold the whole limit, and every upload got 507 until
/// a restart (the soak test hung waiting for uploads to be stored again after the disk filled).
#[tokio::test]
async fn a_write_that_fails_gives_its_reservation_back() {
    let store = DiskStore::open(None, 4 * WRITE_BUFFER as u64).expect("open");
    // Temporary files cannot be created: every write fails after its reservation.
    fs::remove_dir(&store.inner.tmp).expect("remove tmp/");
    for _ in 0..8 {
        let mut up = store.put(&id("a", "big")).await.expect("put");
        up.write(Bytes::from(vec![7u8; WRITE_BUFFER]))
            .await
            .expect_err("tmp/ is gone");
    }
    assert_eq!(store.inner.lock_index().reserved, 0);
    fs::create_dir(&store.inner.tmp).expect("tmp/ back");
    put(&store, "a", "big", &vec![7u8; 3 * WRITE_BUFFER]).await;
    assert_eq!(store.inner.lock_index().reserved, 0);
    assert_eq!(store.usage().stored_bytes, 3 * WRITE_BUFFER as u64);
}

/// An upload whose connection closes while a write runs on a blocking thread is dropped with
/// the write in flight. Its reservation was lost (taken on the blocking thread, never recorded),
/// and its delete of the temporary file could run before the blocking thread created it.
#[test]
fn a_cancelled_write_gives_back_its_file_and_reservation() {
    // One blocking thread: tasks run in order, so a task spawned after the write's ends after it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = DiskStore::open(None, 1 << 30).expect("open");
        let mut up = store.put(&id("a", "big")).await.expect("put");
        {
            // Hold the index lock so the write's blocking task waits inside it, then cancel.
            let idx = store.inner.lock_index();
            let mut write = up.write(Bytes::from(vec![7u8; WRITE_BUFFER]));
            assert!(
                write.as_mut().now_or_never().is_none(),
                "the write waits for the lock"
            );
            drop(write);
            drop(up);
            drop(idx);
        }
        tokio::task::spawn_blocking(|| ())
            .await
            .expect("after the write");
        assert_eq!(store.inner.lock_index().reserved, 0);
        assert_eq!(fs::read_dir(&store.inner.tmp).expect("tmp").count(), 0);
        // And the blocking task never counted an object.
        assert_eq!(store.usage().objects, 0);
    });
}

/// A large object is streamed in chunks of at most `STREAM_CHUNK`, whole; a file shorter than
/// the size it was opened with ends the stream with an error, never a short body.
#[tokio::test]
async fn streamed_reads_are_whole_or_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("object");
    let data: Vec<u8> = (0..(2 * read::STREAM_CHUNK + 5))
        .map(|i| (i % 253) as u8)
        .collect();
    fs::write(&path, &data).expect("write");
    let size = data.len() as u64;
    let chunks: Vec<Bytes> = read::chunks(fs::File::open(&path).expect("open"), size)
        .map(|c| c.expect("chunk"))
        .collect()
        .await;
    assert_eq!(
        chunks.iter().map(Bytes::len).collect::<Vec<_>>(),
        [read::STREAM_CHUNK as usize, read::STREAM_CHUNK as usize, 5]
    );
    assert!(chunks.concat() == data);
    let short = read::chunks(fs::File::open(&path).expect("open"), size + 1);
    let results: Vec<_> = short.collect().await;
    let last = results.last().expect("a result");
    assert_eq!(
        last.as_ref().expect_err("short").kind(),
        std::io::ErrorKind::UnexpectedEof
    );
}

/// A GET of an object in the page cache is answered on the async worker, small or streamed:
/// no blocking thread is started. Handing every read (and every 256 KiB chunk) to Tokio's
/// blocking pool cost two thread wake-ups each, most of what a small GET cost beyond nginx's.
#[test]
fn a_cached_read_starts_no_blocking_thread() {
    use std::sync::atomic::AtomicUsize;
    let started = Arc::new(AtomicUsize::new(0));
    let counter = started.clone();
    // A current-thread runtime starts threads only for its blocking pool.
    let rt = tokio::runtime::Builder::new_current_thread()
        .on_thread_start(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .expect("runtime");
    let store = DiskStore::open(None, 1 << 30).expect("open");
    wait_until("indexed", || store.usage().index_ready);
    let objects = [(id("a", "small"), 4096), (id("a", "large"), 3 << 20)];
    for (id, len) in &objects {
        let path = store.inner.path(id);
        fs::create_dir_all(path.parent().expect("parent")).expect("shard");
        // Just written: in the page cache, its path in the dentry cache.
        fs::write(&path, vec![7u8; *len]).expect("object");
    }
    rt.block_on(async {
        for (id, len) in &objects {
            let object = store.get(id).await.expect("get").expect("found");
            let body = object.body.into_vec().await.expect("body");
            assert_eq!(body, vec![7u8; *len]);
        }
    });
    assert_eq!(
        started.load(Ordering::Relaxed),
        0,
        "a read used a blocking thread"
    );
    assert_eq!(store.usage().objects, 2, "the reads indexed both");
}
