//! What every page shares: the response with its security headers, the page layout and its
//! style, the query parameters links carry, and the formatting of numbers, dates and cards.
//! A leaf module: the pages use it, it uses none of them.

use std::fmt::Write as _;

use http::{header, Request, Response, StatusCode};

use crate::dashboard;
use crate::error::ApiError;
use crate::history::Stats;
use crate::http_util::{empty, full, Body};

/// What a page handler answers.
pub(super) type PageResult = Result<Response<Body>, ApiError>;

pub(super) fn html(status: StatusCode, body: String) -> Response<Body> {
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
pub(super) struct Params {
    pub(super) since: Option<String>,
    pub(super) namespaces: Vec<String>,
    pub(super) sort: Option<String>,
    /// The request carries the sign-in cookie: the header offers "Sign out".
    pub(super) signed_in: bool,
}

impl Params {
    pub(super) fn of<B>(req: &Request<B>) -> Params {
        Params {
            since: dashboard::query_one(req, "since"),
            namespaces: dashboard::query_all(req, "namespace"),
            sort: dashboard::query_one(req, "sort"),
            signed_in: dashboard::cookie(req, dashboard::COOKIE).is_some(),
        }
    }

    /// `?since=..&namespace=..` plus `extra`, escaped for an attribute.
    pub(super) fn link(&self, path: &str, extra: &[(&str, &str)]) -> String {
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
pub use crate::http_util::escape_markup as esc;

pub(super) const STYLE: &str = r#"
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
form.out{display:inline;margin-left:1rem}form.out button{padding:.1rem .6rem;font-size:.85rem}
form button{font:inherit;padding:.4rem 1rem;border-radius:4px;border:1px solid var(--accent);background:var(--accent);color:#fff}
"#;

pub(super) fn layout(title: &str, active: &str, params: &Params, content: &str) -> String {
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
    if params.signed_in {
        nav.push_str("<form class=\"out\" method=\"post\" action=\"/ui/logout\"><button type=\"submit\" id=\"sign-out\">Sign out</button></form>");
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

pub(super) fn range_links(path: &str, params: &Params) -> String {
    let current = params.since.as_deref().unwrap_or("7d");
    let mut out = String::from("<p class=\"range\">Range: ");
    for s in ["24h", "7d", "30d", "365d"] {
        let p = Params {
            since: Some(s.to_string()),
            namespaces: params.namespaces.clone(),
            sort: params.sort.clone(),
            signed_in: params.signed_in,
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

pub(super) fn rate(s: &Stats) -> String {
    s.hit_rate()
        .map(|r| format!("{:.1}%", r * 100.0))
        .unwrap_or_else(|| "–".into())
}

pub(super) fn date(ms: u64, with_time: bool) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    if with_time {
        format!("{} {}", &s[..10], &s[11..16])
    } else {
        s[..10].to_string()
    }
}

/// A row of cards: (id, shown value, raw value for `data-value`, label) each.
pub(super) fn cards(items: &[(&str, String, u64, &str)]) -> String {
    let mut out = String::from("<div class=\"cards\">");
    for (id, value, raw, label) in items {
        out.push_str(&card(id, value, *raw, label));
    }
    out.push_str("</div>");
    out
}

pub(super) fn card(id: &str, value: &str, raw: u64, label: &str) -> String {
    format!(
        "<div class=\"card\"><div class=\"v\" id=\"{id}\" data-value=\"{raw}\">{}</div><div class=\"l\">{}</div></div>",
        esc(value),
        esc(label)
    )
}
