//! The dashboard's pages at `/ui`: server-rendered HTML with inline SVG charts.
//!
//! Why this shape: the server must work offline and air-gapped, so a page loads nothing but
//! itself: no script, no font, no stylesheet from elsewhere (the favicon is an empty `data:`
//! URL so the browser does not ask for one). Sorting is a link (`?sort=`), not JavaScript.
//! Colours come from CSS variables switched by `prefers-color-scheme`, so dark mode is the
//! browser's choice. Every number comes from the same functions as the JSON API
//! ([`crate::dashboard`]), so a page and `/_api/v1` cannot disagree; the elements that carry
//! the main numbers have stable `id`s and `data-` attributes with the raw values, which the
//! browser test compares with the API.
//!
//! Pages are rendered from rollups (a year is ~400 daily buckets), so rendering does not
//! grow with the number of calls; `render_a_year_of_history_for_100_clients` checks the
//! output on generated data.
//!
//! Authentication: with tokens configured, a request needs a token by `Authorization` header
//! or by the `cachet_token` cookie that the login form (`/ui/login`) sets (HttpOnly,
//! SameSite=Strict). Without one the answer is 401 with the login form, and no numbers.

use std::fmt::Write as _;

use http::{header, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::api::AppState;
use crate::auth::Scope;
use crate::dashboard::{self, CrateRow, Point, COOKIE};
use crate::error::ApiError;
use crate::history::{self, History, Query, Stats, DAY_MS, OTHER};
use crate::http_util::{empty, full, Body};

type PageResult = Result<Response<Body>, ApiError>;

/// Longest login form body read.
const MAX_FORM: usize = 4096;

/// Answers a `/ui` request.
pub async fn page(state: &AppState, page: &str, req: Request<Incoming>) -> PageResult {
    if page == "login" && req.method() == Method::POST {
        return login(state, req).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(ApiError::MethodNotAllowed);
    }
    if page == "login" {
        return Ok(html(StatusCode::OK, login_page(None)));
    }
    let visible = match dashboard::visible(state, &req) {
        Ok(v) => v,
        Err(ApiError::Unauthenticated) => {
            return Ok(html(
                StatusCode::UNAUTHORIZED,
                login_page(Some("Sign in with a cachet token to see the dashboard.")),
            ))
        }
        Err(e) => return Err(e),
    };
    let q = dashboard::query(&req, &visible)?;
    state.history.note_usage(&state.store.usage());
    let params = Params::of(&req);
    let body = match page.trim_end_matches('/') {
        "" => overview(&state.history, &q, &params),
        "crates" => crates(&state.history, &q, &params),
        "clients" => clients(&state.history, &q, &params),
        "storage" => {
            let range = state.history.range_with(&q, false);
            let storage = dashboard::storage(state, &range);
            storage_page(&range, &q, &storage, &params)
        }
        other => match other.strip_prefix("crate/") {
            Some(name) => crate_page(&state.history, &q, &dashboard::decode(name), &params),
            None => return Err(ApiError::NotFound),
        },
    };
    Ok(html(StatusCode::OK, body))
}

/// `POST /ui/login`: checks the token, sets the cookie, and goes to the overview.
async fn login(state: &AppState, req: Request<Incoming>) -> PageResult {
    let body = http_body_util::Limited::new(req.into_body(), MAX_FORM)
        .collect()
        .await
        .map_err(|_| ApiError::BadRequest("the login form is too large"))?
        .to_bytes();
    let form = String::from_utf8_lossy(&body);
    let token = form
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .map(dashboard::decode)
        .unwrap_or_default();
    let token = token.trim();
    let header_value = format!("Bearer {token}");
    let tokens = state.tokens();
    let known = tokens.is_empty()
        || !matches!(
            tokens.check(Some(header_value.as_bytes()), Scope::Read, None),
            Err(crate::auth::Denied::Unauthenticated)
        );
    if token.is_empty() || !known {
        return Ok(html(
            StatusCode::UNAUTHORIZED,
            login_page(Some("That token is not known to this server.")),
        ));
    }
    let value = percent_encoding::utf8_percent_encode(token, percent_encoding::NON_ALPHANUMERIC);
    Ok(Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, "/ui")
        .header(
            header::SET_COOKIE,
            format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/"),
        )
        .body(empty())
        .unwrap_or_else(|_| Response::new(empty())))
}

fn html(status: StatusCode, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'",
        )
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .body(full(body))
        .unwrap_or_else(|_| Response::new(empty()))
}

/// The query parameters pages carry along in their links.
#[derive(Default)]
struct Params {
    since: Option<String>,
    namespaces: Vec<String>,
    sort: Option<String>,
}

impl Params {
    fn of<B>(req: &Request<B>) -> Params {
        Params {
            since: dashboard::query_one(req, "since"),
            namespaces: dashboard::query_all(req, "namespace"),
            sort: dashboard::query_one(req, "sort"),
        }
    }

    /// `?since=..&namespace=..` plus `extra`, escaped for an attribute.
    fn link(&self, path: &str, extra: &[(&str, &str)]) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let mut parts = Vec::new();
        if let Some(s) = &self.since {
            parts.push(format!("since={}", enc(s)));
        }
        for n in &self.namespaces {
            parts.push(format!("namespace={}", enc(n)));
        }
        for (k, v) in extra {
            parts.push(format!("{k}={}", enc(v)));
        }
        let q = if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&amp;"))
        };
        format!("{path}{q}")
    }
}

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root{--bg:#fff;--fg:#1d2330;--muted:#5d6678;--line:#d9dde5;--card:#f6f7f9;--accent:#2563eb;--good:#15803d;--bad:#b91c1c;}
@media (prefers-color-scheme: dark){:root{--bg:#12151b;--fg:#e4e7ee;--muted:#9aa3b5;--line:#2c3340;--card:#1a1f28;--accent:#6ea0ff;--good:#4ade80;--bad:#f87171;}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{display:flex;gap:1.5rem;align-items:baseline;padding:.8rem 1.5rem;border-bottom:1px solid var(--line);flex-wrap:wrap}
header b{font-size:1.1rem}
nav a{margin-right:1rem}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
main{max-width:1200px;margin:0 auto;padding:1rem 1.5rem 3rem}
h1{font-size:1.4rem;margin:.6rem 0}h2{font-size:1.1rem;margin:1.6rem 0 .5rem}
.cards{display:flex;gap:1rem;flex-wrap:wrap}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.7rem 1rem;min-width:10rem}
.card .v{font-size:1.5rem;font-weight:600}.card .l{color:var(--muted);font-size:.85rem}
table{border-collapse:collapse;width:100%;margin:.3rem 0}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600;font-size:.85rem}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:var(--muted)}.note{color:var(--muted);font-size:.85rem;max-width:60rem}
svg{display:block;max-width:100%;height:auto}
svg text{fill:var(--muted);font-size:11px}
svg .grid{stroke:var(--line)}svg .line{stroke:var(--accent);fill:none;stroke-width:2}
svg .bar{fill:var(--accent)}svg .bar.bad{fill:var(--bad)}svg .dot{fill:var(--accent)}
.range a{margin-right:.6rem}.range a.on{font-weight:700}
form input{font:inherit;padding:.4rem;border:1px solid var(--line);border-radius:4px;background:var(--card);color:var(--fg);min-width:20rem}
form button{font:inherit;padding:.4rem 1rem;border-radius:4px;border:1px solid var(--accent);background:var(--accent);color:#fff}
"#;

fn layout(title: &str, active: &str, params: &Params, content: &str) -> String {
    let mut nav = String::new();
    for (path, name) in [
        ("/ui", "Overview"),
        ("/ui/crates", "Crates"),
        ("/ui/clients", "Clients"),
        ("/ui/storage", "Storage"),
    ] {
        let style = if name == active {
            " style=\"font-weight:700\""
        } else {
            ""
        };
        let _ = write!(
            nav,
            "<a href=\"{}\"{style}>{name}</a>",
            params.link(path, &[])
        );
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <link rel=\"icon\" href=\"data:,\">\
         <title>{title} · cachet</title><style>{STYLE}</style></head><body>\
         <header><b>cachet</b><nav>{nav}</nav></header><main>{content}</main></body></html>",
        title = esc(title)
    )
}

fn login_page(message: Option<&str>) -> String {
    let msg = message
        .map(|m| format!("<p id=\"login-message\">{}</p>", esc(m)))
        .unwrap_or_default();
    let content = format!(
        "<h1>Sign in</h1>{msg}<form method=\"post\" action=\"/ui/login\">\
         <p><label>Token<br><input type=\"password\" name=\"token\" autocomplete=\"current-password\" required></label></p>\
         <p><button type=\"submit\">Sign in</button></p></form>\
         <p class=\"note\">A token that may read a namespace shows that namespace; an admin token \
         shows all. The token is kept in an HttpOnly cookie for this server only.</p>"
    );
    layout("Sign in", "", &Params::default(), &content)
}

fn range_links(path: &str, params: &Params) -> String {
    let current = params.since.as_deref().unwrap_or("7d");
    let mut out = String::from("<p class=\"range\">Range: ");
    for s in ["24h", "7d", "30d", "365d"] {
        let p = Params {
            since: Some(s.to_string()),
            namespaces: params.namespaces.clone(),
            sort: params.sort.clone(),
        };
        let extra: Vec<(&str, &str)> = params
            .sort
            .as_deref()
            .map(|s| vec![("sort", s)])
            .unwrap_or_default();
        let class = if s == current { " class=\"on\"" } else { "" };
        let _ = write!(out, "<a{class} href=\"{}\">{s}</a>", p.link(path, &extra));
    }
    out.push_str("</p>");
    out
}

/// Milliseconds as a short duration: `850 ms`, `12.3 s`, `4.2 min`, `3.1 h`.
pub fn duration(ms: u64) -> String {
    let s = ms as f64 / 1000.0;
    if ms < 1000 {
        format!("{ms} ms")
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

fn rate(s: &Stats) -> String {
    s.hit_rate()
        .map(|r| format!("{:.1}%", r * 100.0))
        .unwrap_or_else(|| "–".into())
}

fn date(ms: u64, with_time: bool) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    if with_time {
        format!("{} {}", &s[..10], &s[11..16])
    } else {
        s[..10].to_string()
    }
}

fn card(id: &str, value: &str, raw: u64, label: &str) -> String {
    format!(
        "<div class=\"card\"><div class=\"v\" id=\"{id}\" data-value=\"{raw}\">{}</div><div class=\"l\">{}</div></div>",
        esc(value),
        esc(label)
    )
}

/// An SVG chart of one value per bucket: bars, or a line with dots. `max` None = the largest.
fn chart(
    points: &[(u64, Option<f64>)],
    bars: bool,
    max: Option<f64>,
    fmt: &dyn Fn(f64) -> String,
    label: &str,
) -> String {
    const W: f64 = 720.0;
    const H: f64 = 160.0;
    const LEFT: f64 = 56.0;
    const BOTTOM: f64 = 22.0;
    let values: Vec<f64> = points.iter().filter_map(|p| p.1).collect();
    let top = max
        .unwrap_or_else(|| values.iter().copied().fold(0.0, f64::max))
        .max(f64::MIN_POSITIVE);
    let mut svg = format!(
        "<svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\" width=\"{W}\" height=\"{H}\">",
        esc(label)
    );
    let plot_h = H - BOTTOM - 8.0;
    for i in 0..=2 {
        let y = 8.0 + plot_h * (i as f64) / 2.0;
        let v = top * (1.0 - i as f64 / 2.0);
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{W}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y + 4.0,
            esc(&fmt(v))
        );
    }
    let n = points.len().max(1) as f64;
    let step = (W - LEFT) / n;
    let mut line = String::new();
    for (i, (start, v)) in points.iter().enumerate() {
        let x = LEFT + step * i as f64;
        if let Some(v) = v {
            let h = (v / top).clamp(0.0, 1.0) * plot_h;
            let y = 8.0 + plot_h - h;
            if bars {
                let _ = write!(
                    svg,
                    "<rect class=\"bar\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{}: {}</title></rect>",
                    x + step * 0.1,
                    (step * 0.8).max(1.0),
                    date(*start, true),
                    esc(&fmt(*v))
                );
            } else {
                let cx = x + step / 2.0;
                let _ = write!(
                    line,
                    "{}{cx:.1},{y:.1}",
                    if line.is_empty() { "" } else { " " }
                );
                if points.len() <= 60 {
                    let _ = write!(
                        svg,
                        "<circle class=\"dot\" cx=\"{cx:.1}\" cy=\"{y:.1}\" r=\"2.5\"><title>{}: {}</title></circle>",
                        date(*start, true),
                        esc(&fmt(*v))
                    );
                }
            }
        }
    }
    if !line.is_empty() {
        let _ = write!(svg, "<polyline class=\"line\" points=\"{line}\"/>");
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            svg,
            "<text x=\"{LEFT}\" y=\"{:.1}\">{}</text><text x=\"{W}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            H - 6.0,
            date(first.0, false),
            H - 6.0,
            date(last.0, false)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn overview(history: &History, q: &Query, params: &Params) -> String {
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
    c.push_str("<div class=\"cards\">");
    c.push_str(&card(
        "total-calls",
        &t.calls.to_string(),
        t.calls,
        "calls reported",
    ));
    c.push_str(&card(
        "total-hit-rate",
        &rate(t),
        t.hit_rate().map_or(0, |r| (r * 10_000.0).round() as u64),
        "hit rate (hits / cacheable calls)",
    ));
    c.push_str(&card(
        "total-saved",
        &duration(t.saved_ms),
        t.saved_ms,
        "time saved by hits",
    ));
    c.push_str(&card(
        "total-lost",
        &duration(t.lost_ms),
        t.lost_ms,
        "compile time of misses",
    ));
    c.push_str(&card(
        "server-gets",
        &format!(
            "{} / {}",
            total.server.hits,
            total.server.hits + total.server.misses
        ),
        total.server.hits,
        "object GETs served / asked (all clients, incl. sccache, ccache)",
    ));
    c.push_str("</div>");

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

fn causes_table(s: &Stats, id: &str) -> String {
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

fn crates(history: &History, q: &Query, params: &Params) -> String {
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

fn crate_page(history: &History, q: &Query, name: &str, params: &Params) -> String {
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
    c.push_str("<div class=\"cards\">");
    c.push_str(&card("crate-calls", &s.calls.to_string(), s.calls, "calls"));
    c.push_str(&card(
        "crate-misses",
        &(s.misses + s.misses_not_stored).to_string(),
        s.misses + s.misses_not_stored,
        "misses",
    ));
    c.push_str(&card(
        "crate-hit-rate",
        &rate(&s),
        s.hit_rate().map_or(0, |r| (r * 10_000.0).round() as u64),
        "hit rate",
    ));
    c.push_str(&card(
        "crate-lost",
        &duration(s.lost_ms),
        s.lost_ms,
        "lost to misses",
    ));
    c.push_str(&card(
        "crate-saved",
        &duration(s.saved_ms),
        s.saved_ms,
        "saved by hits",
    ));
    c.push_str("</div><h2>Miss causes</h2>");
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

fn clients(history: &History, q: &Query, params: &Params) -> String {
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

fn storage_page(
    range: &history::Range,
    q: &Query,
    storage: &serde_json::Value,
    params: &Params,
) -> String {
    let u = &storage["usage"];
    let num = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let mut c = format!("<h1>Storage</h1>{}", range_links("/ui/storage", params));
    c.push_str("<div class=\"cards\">");
    c.push_str(&card(
        "stored-bytes",
        &cachet_core::format_size(num(&u["stored_bytes"])),
        num(&u["stored_bytes"]),
        "stored (local tier)",
    ));
    c.push_str(&card(
        "objects",
        &num(&u["objects"]).to_string(),
        num(&u["objects"]),
        "objects",
    ));
    let max = num(&u["max_size"]);
    c.push_str(&card(
        "max-size",
        &if max == 0 {
            "–".to_string()
        } else {
            cachet_core::format_size(max)
        },
        max,
        "size limit",
    ));
    let e = range.evictions;
    c.push_str(&card(
        "evictions",
        &e.count.to_string(),
        e.count,
        "evicted in range",
    ));
    c.push_str(&card(
        "evicted-bytes",
        &cachet_core::format_size(e.bytes),
        e.bytes,
        "bytes evicted",
    ));
    c.push_str(&card(
        "evicted-age",
        &e.age_ms_total
            .checked_div(e.count)
            .map_or("–".into(), duration),
        e.age_ms_total.checked_div(e.count).unwrap_or(0),
        "mean age since last use",
    ));
    c.push_str("</div>");
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
    let _ = write!(
        c,
        "<h2>Dashboard history</h2><p class=\"note\" id=\"history\">{} detailed records of at most {}; {} rollup entries of at most {}; kept {}. Each server keeps its own history: replicas sharing Redis or S3 each show what they served.</p>",
        num(&h["records"]),
        num(&h["max_records"]),
        num(&h["entries"]),
        num(&h["max_entries"]),
        h["file"].as_str().map_or("in memory (lost at restart)".to_string(), |f| format!("in {}", esc(f)))
    );
    layout("Storage", "Storage", params, &c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Bucket, CauseStats, Limits, NsBucket};
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
}
