//! Rendering checks on generated history.

use super::html::{esc, Params};
use super::overview::overview;
use super::tables::{clients, crates};
use crate::history::{self, Bucket, CauseStats, History, Limits, NsBucket, Query, Stats, DAY_MS};
use cachet_core::report::MissCause;

fn stats(seed: u64) -> Stats {
    let mut s = Stats {
        calls: 100 + seed % 50,
        hits_local: 40,
        hits_remote: 30 + seed % 7,
        misses: 20,
        pass_through: 5,
        saved_ms: 60_000 + seed,
        compile_ms: 90_000,
        lost_ms: 40_000 + seed % 1000,
        restore_ms: 3_000,
        bytes: 1 << 20,
        ..Stats::default()
    };
    s.causes.insert(
        MissCause::SourceFile,
        CauseStats {
            count: 12,
            compile_ms: 30_000,
        },
    );
    s.causes.insert(
        MissCause::Dependency,
        CauseStats {
            count: 8,
            compile_ms: 10_000,
        },
    );
    s.reasons.insert("crate-type bin".into(), 5);
    s
}

/// A year of daily rollups (and a week of hourly ones) for 100 clients and 300 crates:
/// the overview and crates pages render from it. Not timed (load varies): the time is
/// printed for the report, and the page sizes are held, which is what rendering cost
/// follows.
#[test]
fn render_a_year_of_history_for_100_clients() {
    let history = History::in_memory(Limits::default());
    let now = history::now_ms();
    let mut bucket = Bucket::default();
    let mut nb = NsBucket::default();
    for i in 0..300 {
        nb.crates.insert(format!("crate-{i}"), stats(i));
    }
    for i in 0..100 {
        nb.clients.insert(format!("client-{i}"), stats(i));
    }
    nb.total = stats(1);
    bucket.namespaces.insert("team".into(), nb);
    for d in 8..365 {
        history.insert_bucket((now / DAY_MS - d) * DAY_MS, true, bucket.clone());
    }
    for h in 0..(7 * 24) {
        history.insert_bucket(
            (now / history::HOUR_MS - h) * history::HOUR_MS,
            false,
            bucket.clone(),
        );
    }
    let q = Query {
        since_ms: now - 365 * DAY_MS,
        until_ms: now + 1,
        namespaces: None,
    };
    let started = std::time::Instant::now();
    let params = Params::default();
    let o = overview(&history, &q, &params);
    let c = crates(&history, &q, &params);
    let cl = clients(&history, &q, &params);
    let took = started.elapsed();
    eprintln!(
        "rendered overview ({} B), crates ({} B), clients ({} B) from a year in {took:?}",
        o.len(),
        c.len(),
        cl.len()
    );
    assert!(o.contains("Saved this week"));
    assert_eq!(c.matches("<tr data-crate=").count(), 300);
    assert_eq!(cl.matches("<tr data-client=").count(), 100);
    assert!(o.len() < 200_000 && c.len() < 400_000, "pages stay small");
}

#[test]
fn text_is_escaped() {
    assert_eq!(
        esc("<a href='x'>&\"</a>"),
        "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
    );
}
