//! GET latency of the disk store while a prune removes many objects.
//!
//! Writes `--objects` old objects straight into a fresh store directory (as a previous run
//! would have left them), opens the store, waits for its index, then reads one hot object in a
//! loop: first alone, then while `prune` removes every old object. Prints the latency
//! percentiles of both phases and how long the prune took. Reads take the index lock to record
//! their use; the prune holds it for index updates and renames only, 1024 objects at a time,
//! and deletes the files after releasing it, so the two phases should look alike.
//!
//! ```text
//! cargo run --release -p cachet-server --example prune_latency -- --objects 100000
//! ```
//!
//! An example rather than a test: it measures time and asserts nothing.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use cachet_server::storage::disk::DiskStore;
use cachet_server::storage::{ObjectId, Store};
use clap::Parser;

/// GET latency during a prune.
#[derive(Parser)]
struct Args {
    /// Old objects to prune.
    #[arg(long, default_value_t = 100_000)]
    objects: u32,
    /// Length of the baseline phase.
    #[arg(long, default_value_t = 2)]
    baseline_seconds: u64,
}

fn percentiles(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "{name:>12}: {:>7} GETs  p50 {:>8.1?}  p99 {:>8.1?}  p99.9 {:>8.1?}  max {:>8.1?}",
        samples.len(),
        at(0.5),
        at(0.99),
        at(0.999),
        samples[samples.len() - 1]
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("store");
    let ns = root.join("objects-v1").join("old");
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("VERSION"), "cachet-disk-store 1\n")?;
    let started = Instant::now();
    for i in 0..args.objects {
        let hex = cachet_core::Digest::of(&i.to_le_bytes()).to_hex();
        let shard = ns.join(&hex[..2]);
        if i < 256 {
            std::fs::create_dir_all(&shard)?;
        }
        let path = shard.join(&hex);
        let file = std::fs::File::create(&path).or_else(|_| {
            std::fs::create_dir_all(&shard)?;
            std::fs::File::create(&path)
        })?;
        std::io::Write::write_all(&mut &file, &[7; 100])?;
        file.set_modified(an_hour_ago)?;
    }
    println!(
        "wrote {} old objects in {:.1?}",
        args.objects,
        started.elapsed()
    );

    let store = DiskStore::open(Some(&root), u64::MAX)?;
    while !store.usage().index_ready {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut upload = store.put(&hot_id()).await?;
    upload.write(Bytes::from(vec![1u8; 10_000])).await?;
    upload.commit().await?;

    let read = |store: DiskStore| async move {
        let t = Instant::now();
        let found = store.get(&hot_id()).await.map(|o| o.is_some());
        assert!(matches!(found, Ok(true)), "the hot object must be found");
        t.elapsed()
    };
    let mut baseline = Vec::new();
    let until = Instant::now() + Duration::from_secs(args.baseline_seconds);
    while Instant::now() < until {
        baseline.push(read(store.clone()).await);
    }

    let pruner = {
        let store = store.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let n = store.prune(Duration::from_secs(600)).await;
            (n, t.elapsed())
        })
    };
    let mut during = Vec::new();
    while !pruner.is_finished() {
        during.push(read(store.clone()).await);
    }
    let (pruned, took) = pruner.await?;
    println!("pruned {} objects in {took:.1?}", pruned?);
    percentiles("alone", baseline);
    percentiles("during prune", during);
    Ok(())
}

fn hot_id() -> ObjectId {
    ObjectId {
        namespace: "hot".into(),
        key: "object".into(),
    }
}
