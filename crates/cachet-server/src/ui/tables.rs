//! The table pages: crates (sortable), one crate's misses, clients.

use std::fmt::Write as _;

use super::html::{cards, date, duration, esc, layout, range_links, rate, Params};
use crate::dashboard::{self, CrateRow};
use crate::history::{History, Query, Stats, OTHER};

pub(super) fn causes_table(s: &Stats, id: &str) -> String {
    let mut causes: Vec<_> = s.causes.iter().filter(|(_, c)| c.count > 0).collect();
    if causes.is_empty() {
        return "<p class=\"muted\">No misses.</p>".into();
    }
    causes.sort_by_key(|c| std::cmp::Reverse(c.1.compile_ms));
    let mut out = format!("<table id=\"{id}\"><tr><th>cause</th><th class=\"n\">misses</th><th class=\"n\">compile time</th></tr>");
    for (cause, n) in causes {
        let _ = write!(
            out,
            "<tr data-cause=\"{}\"><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            cause.as_str(),
            esc(cause.describe()),
            n.count,
            duration(n.compile_ms)
        );
    }
    out.push_str("</table>");
    out
}

fn top_causes(s: &Stats) -> String {
    let mut causes: Vec<_> = s.causes.iter().filter(|(_, c)| c.count > 0).collect();
    causes.sort_by_key(|c| std::cmp::Reverse(c.1.compile_ms));
    causes
        .iter()
        .take(3)
        .map(|(c, n)| format!("{} ({})", esc(c.describe()), n.count))
        .collect::<Vec<_>>()
        .join("; ")
}

pub(super) fn crates(history: &History, q: &Query, params: &Params) -> String {
    let range = history.range(q);
    let mut rows = dashboard::crate_rows(&range);
    let sort = params.sort.as_deref().unwrap_or("lost");
    sort_rows(&mut rows, sort);
    let mut c = format!("<h1>Crates</h1>{}", range_links("/ui/crates", params));
    c.push_str("<table id=\"crates\"><tr><th>");
    c.push_str(&sort_link(params, "/ui/crates", "name", "crate", sort));
    c.push_str("</th><th>namespace</th><th class=\"n\">");
    c.push_str(&sort_link(params, "/ui/crates", "calls", "calls", sort));
    c.push_str("</th><th class=\"n\">");
    c.push_str(&sort_link(
        params,
        "/ui/crates",
        "hit_rate",
        "hit rate",
        sort,
    ));
    c.push_str("</th><th class=\"n\">");
    c.push_str(&sort_link(
        params,
        "/ui/crates",
        "lost",
        "lost to misses",
        sort,
    ));
    c.push_str("</th><th class=\"n\">");
    c.push_str(&sort_link(params, "/ui/crates", "saved", "saved", sort));
    c.push_str("</th><th class=\"n\">compiling</th><th>top miss causes</th></tr>");
    for r in &rows {
        let s = &r.stats;
        let name = if r.name == OTHER {
            esc(&r.name)
        } else {
            format!(
                "<a href=\"{}\">{}</a>",
                params.link(
                    &format!(
                        "/ui/crate/{}",
                        percent_encoding::utf8_percent_encode(
                            &r.name,
                            percent_encoding::NON_ALPHANUMERIC
                        )
                    ),
                    &[]
                ),
                esc(&r.name)
            )
        };
        let _ = write!(
            c,
            "<tr data-crate=\"{}\"><td>{name}</td><td>{}</td><td class=\"n\" data-k=\"calls\">{}</td><td class=\"n\">{}</td><td class=\"n\" data-k=\"lost_ms\" data-value=\"{}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(&r.name),
            esc(&r.namespace),
            s.calls,
            rate(s),
            s.lost_ms,
            duration(s.lost_ms),
            duration(s.saved_ms),
            duration(s.compile_ms),
            top_causes(s)
        );
    }
    c.push_str("</table>");
    if rows.is_empty() {
        c.push_str("<p class=\"muted\">No crates reported in this range.</p>");
    }
    layout("Crates", "Crates", params, &c)
}

fn sort_rows(rows: &mut [CrateRow], sort: &str) {
    match sort {
        "name" => rows.sort_by(|a, b| a.name.cmp(&b.name).then(a.namespace.cmp(&b.namespace))),
        "calls" => rows.sort_by_key(|r| std::cmp::Reverse(r.stats.calls)),
        "saved" => rows.sort_by_key(|r| std::cmp::Reverse(r.stats.saved_ms)),
        "hit_rate" => rows.sort_by(|a, b| {
            let ra = a.stats.hit_rate().unwrap_or(-1.0);
            let rb = b.stats.hit_rate().unwrap_or(-1.0);
            ra.total_cmp(&rb)
        }),
        _ => rows.sort_by(|a, b| {
            b.stats
                .lost_ms
                .cmp(&a.stats.lost_ms)
                .then(a.name.cmp(&b.name))
        }),
    }
}

fn sort_link(params: &Params, path: &str, key: &str, label: &str, current: &str) -> String {
    let mark = if key == current { " ▾" } else { "" };
    format!(
        "<a href=\"{}\">{label}{mark}</a>",
        params.link(path, &[("sort", key)])
    )
}

pub(super) fn crate_page(history: &History, q: &Query, name: &str, params: &Params) -> String {
    let range = history.range(q);
    let mut s = Stats::default();
    for b in range.namespaces.values() {
        if let Some(c) = b.crates.get(name) {
            s.merge(c);
        }
    }
    let calls = history.details(q, dashboard::MAX_DETAILS, |d| d.report.krate == name);
    let mut c = format!(
        "<h1>Crate {}</h1>{}",
        esc(name),
        range_links(&format!("/ui/crate/{}", esc(name)), params)
    );
    c.push_str(&cards(&[
        ("crate-calls", s.calls.to_string(), s.calls, "calls"),
        (
            "crate-misses",
            (s.misses + s.misses_not_stored).to_string(),
            s.misses + s.misses_not_stored,
            "misses",
        ),
        (
            "crate-hit-rate",
            rate(&s),
            s.hit_rate().map_or(0, |r| (r * 10_000.0).round() as u64),
            "hit rate",
        ),
        (
            "crate-lost",
            duration(s.lost_ms),
            s.lost_ms,
            "lost to misses",
        ),
        (
            "crate-saved",
            duration(s.saved_ms),
            s.saved_ms,
            "saved by hits",
        ),
    ]));
    c.push_str("<h2>Miss causes</h2>");
    c.push_str(&causes_table(&s, "causes"));
    c.push_str("<h2>Misses and uncached calls, newest first</h2>");
    if calls.is_empty() {
        c.push_str(
            "<p class=\"muted\">None kept in this range (hits are counted, not listed).</p>",
        );
    } else {
        c.push_str("<table id=\"calls\"><tr><th>when (UTC)</th><th>client</th><th>namespace</th><th>version</th><th>what happened</th><th>what differed</th><th class=\"n\">compile</th></tr>");
        for d in &calls {
            let r = &d.report;
            let what = match r.outcome {
                cachet_core::report::Outcome::Miss => "miss, stored".to_string(),
                cachet_core::report::Outcome::MissNotStored => {
                    format!("miss, not stored: {}", r.reason.as_deref().unwrap_or(""))
                }
                cachet_core::report::Outcome::CompileFailed => "compile failed".to_string(),
                cachet_core::report::Outcome::PassThrough => {
                    format!("not cacheable: {}", r.reason.as_deref().unwrap_or(""))
                }
                _ => "hit".to_string(),
            };
            let _ = write!(
                c,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td data-cause=\"{}\">{}</td><td class=\"n\">{}</td></tr>",
                date(r.time_ms, true),
                esc(&r.client),
                esc(&d.namespace),
                esc(r.version.as_deref().unwrap_or("")),
                esc(&what),
                r.cause.map_or("", |c| c.as_str()),
                r.cause.map_or("", |c| c.describe()),
                duration(r.compile_ms)
            );
        }
        c.push_str("</table>");
    }
    layout(name, "Crates", params, &c)
}

pub(super) fn clients(history: &History, q: &Query, params: &Params) -> String {
    let range = history.range(q);
    let rows = dashboard::client_rows(&range);
    let mut c = format!("<h1>Clients</h1>{}", range_links("/ui/clients", params));
    c.push_str("<table id=\"clients\"><tr><th>client</th><th>namespace</th><th class=\"n\">calls</th><th class=\"n\">hit rate</th><th class=\"n\">local hits</th><th class=\"n\">server hits</th><th class=\"n\">misses</th><th class=\"n\">saved</th><th class=\"n\">lost to misses</th></tr>");
    for r in &rows {
        let s = &r.stats;
        let _ = write!(
            c,
            "<tr data-client=\"{n}\"><td>{n}</td><td>{}</td><td class=\"n\" data-k=\"calls\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&r.namespace),
            s.calls,
            rate(s),
            s.hits_local,
            s.hits_remote,
            s.misses + s.misses_not_stored,
            duration(s.saved_ms),
            duration(s.lost_ms),
            n = esc(&r.name)
        );
    }
    c.push_str("</table>");
    if rows.is_empty() {
        c.push_str("<p class=\"muted\">No client reported in this range.</p>");
    }
    c.push_str("<p class=\"note\">Clients are cachet wrappers that send call reports (named by CACHET_CLIENT_NAME, default the host name). Unmodified sccache and ccache clients send none: they appear as the server's GET hits and misses on the overview.</p>");
    layout("Clients", "Clients", params, &c)
}
