//! Rendering checks on generated history.

use super::html::{esc, Params};
use super::overview::overview;
use super::tables::{clients, crates};
use crate::history::{self, History, Limits, Query, DAY_MS};

/// A year of daily rollups (and a week of hourly ones) for 100 clients and 300 crates:
/// the overview and crates pages render from it. Not timed (load varies): the time is
/// printed for the report, and the page sizes are held, which is what rendering cost
/// follows.
#[test]
fn render_a_year_of_history_for_100_clients() {
    let history = History::in_memory(Limits::default());
    let now = history::now_ms();
    history::tests::a_year_for_100_clients(&history, now);
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
