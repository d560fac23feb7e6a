//! The overview and storage pages: totals, charts over time, miss causes, tiers.

use std::fmt::Write as _;

use super::charts::chart;
use super::html::{cards, duration, esc, layout, range_links, rate, Params};
use super::tables::causes_table;
use crate::dashboard::{self, Point};
use crate::history::{self, History, Query, DAY_MS, OTHER};

pub(super) fn overview(history: &History, q: &Query, params: &Params) -> String {
    let range = history.range_with(q, false);
    let total = dashboard::total(&range);
    let week = Query {
        since_ms: history::now_ms().saturating_sub(7 * DAY_MS),
        ..q.clone()
    };
    let week_total = dashboard::total(&history.range_with(&week, false));
    let hours = week_total.total.saved_ms as f64 / 3_600_000.0;
    let mut c = String::new();
    let _ = write!(
        c,
        "<h1>Overview</h1>{}<p class=\"note\" id=\"saved-week\" data-ms=\"{}\">Saved this week: <b>{}</b> of compiling, across {} calls from {} clients.</p>",
        range_links("/ui", params),
        week_total.total.saved_ms,
        if hours >= 0.1 { format!("{hours:.1} hours") } else { duration(week_total.total.saved_ms) },
        week_total.total.calls,
        week_total.clients.keys().filter(|k| *k != OTHER).count(),
    );
    let t = &total.total;
    c.push_str(&cards(&[
        (
            "total-calls",
            t.calls.to_string(),
            t.calls,
            "calls reported",
        ),
        (
            "total-hit-rate",
            rate(t),
            t.hit_rate().map_or(0, |r| (r * 10_000.0).round() as u64),
            "hit rate (hits / cacheable calls)",
        ),
        (
            "total-saved",
            duration(t.saved_ms),
            t.saved_ms,
            "time saved by hits",
        ),
        (
            "total-lost",
            duration(t.lost_ms),
            t.lost_ms,
            "compile time of misses",
        ),
        (
            "server-gets",
            format!(
                "{} / {}",
                total.server.hits,
                total.server.hits + total.server.misses
            ),
            total.server.hits,
            "object GETs served / asked (all clients, incl. sccache, ccache)",
        ),
    ]));

    c.push_str("<h2>Namespaces</h2><table id=\"namespaces\"><tr><th>namespace</th><th class=\"n\">calls</th><th class=\"n\">hit rate</th><th class=\"n\">saved</th><th class=\"n\">lost to misses</th><th class=\"n\">clients</th><th class=\"n\">server GET hits</th><th class=\"n\">server GET misses</th></tr>");
    for (ns, b) in &range.namespaces {
        let _ = write!(
            c,
            "<tr data-namespace=\"{n}\"><td>{n}</td><td class=\"n\" data-k=\"calls\">{}</td><td class=\"n\">{}</td><td class=\"n\" data-k=\"saved_ms\" data-value=\"{}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            b.total.calls,
            rate(&b.total),
            b.total.saved_ms,
            duration(b.total.saved_ms),
            duration(b.total.lost_ms),
            b.clients.keys().filter(|k| *k != OTHER).count(),
            b.server.hits,
            b.server.misses,
            n = esc(ns)
        );
    }
    c.push_str("</table>");
    if range.namespaces.is_empty() {
        c.push_str("<p class=\"muted\">No reports yet. Clients send them as they build (see docs/dashboard.md).</p>");
    }

    let points = dashboard::series(&range, q);
    for (ns, _) in range.namespaces.iter().filter(|(_, b)| b.total.calls > 0) {
        let hit: Vec<(u64, Option<f64>)> = points
            .iter()
            .map(|p| {
                (
                    p.start_ms,
                    p.namespaces
                        .get(ns)
                        .and_then(|s| s.hit_rate())
                        .map(|r| r * 100.0),
                )
            })
            .collect();
        let saved: Vec<(u64, Option<f64>)> = points
            .iter()
            .map(|p| {
                (
                    p.start_ms,
                    Some(p.namespaces.get(ns).map_or(0, |s| s.saved_ms) as f64),
                )
            })
            .collect();
        let _ = write!(
            c,
            "<h2>{} — hit rate</h2>{}<h2>{} — time saved per {}</h2>{}",
            esc(ns),
            chart(
                &hit,
                false,
                Some(100.0),
                &|v| format!("{v:.0}%"),
                "hit rate over time"
            ),
            esc(ns),
            if points.first().is_some_and(|p| p.len_ms == DAY_MS) {
                "day"
            } else {
                "hour"
            },
            chart(
                &saved,
                true,
                None,
                &|v| duration(v as u64),
                "time saved over time"
            ),
        );
    }

    c.push_str("<h2>Why calls missed</h2>");
    c.push_str(&causes_table(t, "causes"));
    c.push_str("<h2>Why calls were not cached</h2>");
    if t.reasons.is_empty() {
        c.push_str("<p class=\"muted\">No pass-throughs.</p>");
    } else {
        c.push_str("<table id=\"reasons\"><tr><th>reason</th><th class=\"n\">calls</th></tr>");
        let mut reasons: Vec<_> = t.reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1));
        for (r, n) in reasons {
            let _ = write!(c, "<tr><td>{}</td><td class=\"n\">{n}</td></tr>", esc(r));
        }
        c.push_str("</table>");
    }
    c.push_str("<p class=\"note\">Time saved by a hit is the compile time recorded when its entry was stored minus the time the hit took to serve (lookup, download, restore). See docs/dashboard.md.</p>");
    layout("Overview", "Overview", params, &c)
}

pub(super) fn storage_page(
    range: &history::Range,
    q: &Query,
    storage: &serde_json::Value,
    params: &Params,
) -> String {
    let u = &storage["usage"];
    let num = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let mut c = format!("<h1>Storage</h1>{}", range_links("/ui/storage", params));
    let max = num(&u["max_size"]);
    let e = range.evictions;
    c.push_str(&cards(&[
        (
            "stored-bytes",
            cachet_core::format_size(num(&u["stored_bytes"])),
            num(&u["stored_bytes"]),
            "stored (local tier)",
        ),
        (
            "objects",
            num(&u["objects"]).to_string(),
            num(&u["objects"]),
            "objects",
        ),
        (
            "max-size",
            if max == 0 {
                "–".to_string()
            } else {
                cachet_core::format_size(max)
            },
            max,
            "size limit",
        ),
        (
            "evictions",
            e.count.to_string(),
            e.count,
            "evicted in range",
        ),
        (
            "evicted-bytes",
            cachet_core::format_size(e.bytes),
            e.bytes,
            "bytes evicted",
        ),
        (
            "evicted-age",
            e.age_ms_total
                .checked_div(e.count)
                .map_or("–".into(), duration),
            e.age_ms_total.checked_div(e.count).unwrap_or(0),
            "mean age since last use",
        ),
    ]));

    let points: Vec<Point> = dashboard::series(range, q);
    let ev: Vec<(u64, Option<f64>)> = points
        .iter()
        .map(|p| (p.start_ms, Some(p.evictions.count as f64)))
        .collect();
    let _ = write!(
        c,
        "<h2>Evictions over time</h2>{}",
        chart(
            &ev,
            true,
            None,
            &|v| format!("{v:.0}"),
            "evictions over time"
        )
    );
    c.push_str("<p class=\"note\" id=\"not-seen\">Counted: objects this server's disk store evicted to stay under its size limit. <b>Not seen by the server</b>: evictions by Redis (TTL, maxmemory) and S3 lifecycle rules, which happen inside the shared store; a miss that follows one shows up as the cause \"same inputs as a stored entry\".</p>");
    c.push_str("<h2>Tiers</h2>");
    let tiers = storage["tiers"].as_array().cloned().unwrap_or_default();
    if tiers.is_empty() {
        c.push_str("<p class=\"muted\">One tier (no shared store).</p>");
    } else {
        c.push_str("<table id=\"tiers\"><tr><th>tier</th><th>backend</th><th>state</th><th class=\"n\">hits</th><th class=\"n\">misses</th><th class=\"n\">errors</th><th class=\"n\">writes</th></tr>");
        for t in &tiers {
            let _ = write!(
                c,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(t["tier"].as_str().unwrap_or("")),
                esc(t["backend"].as_str().unwrap_or("")),
                if t["available"].as_bool().unwrap_or(false) { "up" } else { "<b style=\"color:var(--bad)\">down (skipped, retried)</b>" },
                num(&t["hits"]),
                num(&t["misses"]),
                num(&t["errors"]),
                num(&t["writes"])
            );
        }
        c.push_str("</table>");
    }
    let h = &storage["history"];
    let others: Vec<&str> = h["other_replicas"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let shared = match h["replica"].as_str() {
        Some(me) if others.is_empty() => format!(
            "Shared through the shared store as replica {}; no other replica has written its history there yet.",
            esc(me)
        ),
        Some(me) => format!(
            "Shared through the shared store as replica {}; the numbers add the histories of {} other replica(s): {}.",
            esc(me),
            others.len(),
            esc(&others.join(", "))
        ),
        None => "Not shared: this server has no Redis or S3 tier, so it shows what it saw itself.".to_string(),
    };
    let _ = write!(
        c,
        "<h2>Dashboard history</h2><p class=\"note\" id=\"history\" data-replicas=\"{}\">This replica: {} detailed records of at most {}; {} rollup entries of at most {}; kept {}. {shared}</p>",
        others.len() + 1,
        num(&h["records"]),
        num(&h["max_records"]),
        num(&h["entries"]),
        num(&h["max_entries"]),
        match (h["file"].as_str(), h["replica"].as_str()) {
            (Some(f), _) => format!("in {}", esc(f)),
            (None, Some(_)) => "in the shared store".to_string(),
            (None, None) => "in memory (lost at restart)".to_string(),
        }
    );
    let r = &storage["reports"];
    let n = &r["counts"];
    let refused = num(&n["refused_client_records"])
        + num(&n["refused_client_requests"])
        + num(&n["refused_server_records"]);
    let _ = write!(
        c,
        "<h2>Call reports received</h2><p class=\"note\" id=\"report-limits\" data-refused=\"{refused}\">Since start: {} records in {} requests let in; <b>{refused}</b> requests ({} records) refused with 429 over a rate ({} over a client's records, {} over a client's requests, {} over the server's ceiling); the client keeps refused records and sends them later. Rates: {} records/s and {} requests/s per client, {} records/s for the server.</p>",
        num(&n["accepted_records"]),
        num(&n["accepted_requests"]),
        num(&n["refused_records"]),
        num(&n["refused_client_records"]),
        num(&n["refused_client_requests"]),
        num(&n["refused_server_records"]),
        num(&r["client_records_per_s"]),
        num(&r["client_requests_per_s"]),
        num(&r["server_records_per_s"]),
    );
    layout("Storage", "Storage", params, &c)
}
