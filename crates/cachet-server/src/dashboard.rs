//! The dashboard's HTTP side: clients' call reports in (`POST /_reports/<ns>`), the versioned
//! JSON API out (`GET /_api/v1/...`), and the pages at `/ui` (rendered by [`crate::ui`]).
//!
//! Everything here answers with the same token scopes as objects: a token that may read a
//! namespace may report to it and see its numbers; a token that may read every namespace (or an
//! `admin` one) sees all; with no tokens configured, everything is open. A page has no way to
//! send an `Authorization` header on a link, so `/ui` also takes the token from a cookie, set
//! by the login form at `/ui/login` (HttpOnly, SameSite=Strict, path `/`): see
//! `docs/dashboard.md`.
//!
//! The API is computed from the rollups of [`crate::history`] on each request: summing a
//! year of daily buckets is a few milliseconds, so nothing is cached.

use std::collections::{BTreeMap, BTreeSet};

use cachet_core::report::{CallReport, MissCause, MAX_BATCH_BYTES, REPORT_VERSION};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};

use crate::auth::{Denied, Scope};
use crate::error::ApiError;
use crate::history::{self, Detail, NsBucket, Query, Stats, DAY_MS, HOUR_MS};
use crate::http_util::{discard_rest, empty, full, read_limited, Body};
use crate::report_limit::{client_key, declared_records};
use crate::state::AppState;

/// Name of the cookie holding a token for the pages.
pub const COOKIE: &str = "cachet_token";
/// The range when a request names none.
pub const DEFAULT_SINCE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);
/// Detailed records an API answer lists at most.
pub const MAX_DETAILS: usize = 500;

type ApiResult = Result<Response<Body>, ApiError>;

/// The namespaces a request may see: `None` = all of them.
pub type Visible = Option<BTreeSet<String>>;

/// The `Authorization` value of a request: the header, else the dashboard cookie as a bearer.
pub fn credentials<B>(req: &Request<B>) -> Option<Vec<u8>> {
    if let Some(h) = req.headers().get(header::AUTHORIZATION) {
        return Some(h.as_bytes().to_vec());
    }
    let token = decode(&cookie(req, COOKIE)?);
    Some(format!("Bearer {token}").into_bytes())
}

/// A cookie of the request, if set and not empty.
pub fn cookie<B>(req: &Request<B>, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name && !v.is_empty()).then(|| v.to_string())
        })
}

/// Which namespaces the request's credentials may read. No namespace at all with missing or
/// unknown credentials is a 401 (a page shows the login form instead).
pub fn visible<B>(state: &AppState, req: &Request<B>) -> Result<Visible, ApiError> {
    let tokens = state.tokens();
    if tokens.is_empty() {
        return Ok(None);
    }
    let creds = credentials(req);
    let creds = creds.as_deref();
    match tokens.check(creds, Scope::Read, None) {
        Ok(_) => return Ok(None),
        Err(Denied::Unauthenticated) => return Err(ApiError::Unauthenticated),
        Err(Denied::Forbidden) => {}
    }
    // A valid token limited to some namespaces: those of them that have history (and any the
    // request names, so an empty namespace shows as empty rather than forbidden).
    let mut names = state.history.namespaces();
    names.extend(query_all(req, "namespace"));
    Ok(Some(
        names
            .into_iter()
            .filter(|ns| tokens.check(creds, Scope::Read, Some(ns)).is_ok())
            .collect(),
    ))
}

/// Values of a query parameter (percent-decoded).
pub fn query_all<B>(req: &Request<B>, name: &str) -> Vec<String> {
    req.uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| decode(v))
        })
        .collect()
}

/// The first value of a query parameter.
pub fn query_one<B>(req: &Request<B>, name: &str) -> Option<String> {
    query_all(req, name).into_iter().next()
}

/// Percent-decodes a query or form value (`+` is a space).
pub fn decode(v: &str) -> String {
    percent_encoding::percent_decode_str(&v.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// The range and namespaces a request asks for, within what it may see.
pub fn query<B>(req: &Request<B>, visible: &Visible) -> Result<Query, ApiError> {
    let since = match query_one(req, "since") {
        Some(s) => humantime::parse_duration(&s)
            .map_err(|_| ApiError::BadRequest("invalid since: expected a duration such as 7d"))?,
        None => DEFAULT_SINCE,
    };
    let now = history::now_ms();
    let asked: BTreeSet<String> = query_all(req, "namespace")
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let namespaces = match (visible, asked.is_empty()) {
        (None, true) => None,
        (None, false) => Some(asked),
        (Some(v), true) => Some(v.clone()),
        (Some(v), false) => {
            if !asked.is_subset(v) {
                return Err(ApiError::Forbidden);
            }
            Some(asked)
        }
    };
    Ok(Query {
        since_ms: now.saturating_sub(since.as_millis() as u64),
        until_ms: now + HOUR_MS,
        namespaces,
    })
}

/// `POST /_reports/<ns>`: a batch of JSON lines. Malformed lines and unknown versions are
/// skipped and counted; the answer says how many of each.
pub async fn reports(state: &AppState, namespace: &str, req: Request<Incoming>) -> ApiResult {
    if req.method() != Method::POST {
        return Err(ApiError::MethodNotAllowed);
    }
    let creds = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match state.tokens().check(creds, Scope::Read, Some(namespace)) {
        Ok(_) => {}
        Err(Denied::Unauthenticated) => return Err(ApiError::Unauthenticated),
        Err(Denied::Forbidden) => return Err(ApiError::Forbidden),
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    // Over a rate, refused from the headers: the body is not parsed. A refused batch's body is
    // read to its end (bounded) and dropped before the answer, as a refused upload's is: a
    // client still sending then reads the answer instead of a broken pipe.
    let limits = &state.report_limits;
    let admitted = match limits.admit(client_key(&req), declared_records(&req)) {
        Ok(admitted) => admitted,
        Err(refused) => {
            let mut body = req.into_body();
            discard_rest(&mut body, state.body_timeout, MAX_BATCH_BYTES as u64).await;
            return Err(ApiError::TooManyReports {
                retry_after: refused.retry_after,
            });
        }
    };
    let buf = read_limited(
        req.into_body(),
        declared,
        state.body_timeout,
        MAX_BATCH_BYTES as u64,
    )
    .await?;
    let (reports, skipped) = parse_batch(&buf);
    let accepted = reports.len();
    limits.settle(admitted, accepted as u64 + skipped);
    state.history.add(namespace, reports, skipped);
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header("x-cachet-accepted", accepted)
        .header("x-cachet-skipped", skipped)
        .body(empty())
        .unwrap_or_else(|_| Response::new(empty())))
}

/// Parses JSON lines into reports of the known version; returns them and how many lines were
/// skipped (malformed, or of another version).
pub fn parse_batch(body: &[u8]) -> (Vec<CallReport>, u64) {
    let mut skipped = 0;
    let mut out = Vec::new();
    for line in body.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<CallReport>(line) {
            Ok(r) if r.v == REPORT_VERSION => out.push(r),
            _ => skipped += 1,
        }
    }
    (out, skipped)
}

/// The JSON form of a set of numbers (the `STATS` of `docs/dashboard.md`).
pub fn stats_json(s: &Stats) -> serde_json::Map<String, Value> {
    let mut causes: Vec<_> = s.causes.iter().filter(|(_, c)| c.count > 0).collect();
    causes.sort_by(|a, b| {
        b.1.compile_ms
            .cmp(&a.1.compile_ms)
            .then(b.1.count.cmp(&a.1.count))
    });
    let mut reasons: Vec<_> = s.reasons.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let hit_rate = s.hit_rate().map(|r| (r * 10_000.0).round() / 10_000.0);
    let v = json!({
        "calls": s.calls,
        "hits_local": s.hits_local,
        "hits_remote": s.hits_remote,
        "misses": s.misses,
        "misses_not_stored": s.misses_not_stored,
        "pass_through": s.pass_through,
        "compile_failed": s.compile_failed,
        "hit_rate": hit_rate,
        "saved_ms": s.saved_ms,
        "compile_ms": s.compile_ms,
        "lost_ms": s.lost_ms,
        "restore_ms": s.restore_ms,
        "bytes": s.bytes,
        "causes": causes.iter().map(|(c, n)| json!({
            "cause": c.as_str(),
            "description": c.describe(),
            "count": n.count,
            "compile_ms": n.compile_ms,
        })).collect::<Vec<_>>(),
        "pass_through_reasons": reasons.iter().map(|(r, n)| json!({"reason": r, "count": n})).collect::<Vec<_>>(),
    });
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// Crates with the most time lost to misses in the summary.
pub const TOP_CRATES: usize = 10;
/// Clients with the most calls in the summary.
pub const TOP_CLIENTS: usize = 20;

fn ns_json(name: Option<&str>, b: &NsBucket) -> Value {
    let mut m = stats_json(&b.total);
    let mut crates: Vec<(&String, &Stats)> = b.crates.iter().collect();
    crates.sort_by(|x, y| {
        y.1.lost_ms
            .cmp(&x.1.lost_ms)
            .then(y.1.calls.cmp(&x.1.calls))
            .then(x.0.cmp(y.0))
    });
    let top: Vec<Value> = crates
        .iter()
        .take(TOP_CRATES)
        .map(|(k, s)| {
            let st = stats_json(s);
            json!({
                "krate": k,
                "calls": s.calls,
                "hits": s.hits(),
                "misses": s.misses + s.misses_not_stored,
                "lost_ms": s.lost_ms,
                "saved_ms": s.saved_ms,
                "causes": st["causes"],
            })
        })
        .collect();
    m.insert("top_crates".into(), json!(top));
    let mut clients: Vec<(&String, &Stats)> = b.clients.iter().collect();
    clients.sort_by(|x, y| y.1.calls.cmp(&x.1.calls).then(x.0.cmp(y.0)));
    let per_client: Vec<Value> = clients
        .iter()
        .take(TOP_CLIENTS)
        .map(|(k, s)| {
            json!({
                "client": k,
                "calls": s.calls,
                "hits": s.hits(),
                "misses": s.misses + s.misses_not_stored,
                "hit_rate": s.hit_rate().map(|r| (r * 10_000.0).round() / 10_000.0),
                "saved_ms": s.saved_ms,
                "lost_ms": s.lost_ms,
                "last_ms": s.last_ms,
            })
        })
        .collect();
    m.insert("per_client".into(), json!(per_client));
    if let Some(name) = name {
        m.insert("namespace".into(), json!(name));
    }
    m.insert(
        "clients".into(),
        json!(b.clients.keys().filter(|c| *c != history::OTHER).count()),
    );
    m.insert("server".into(), json!(b.server));
    Value::Object(m)
}

/// The whole range added up over its namespaces.
pub fn total(range: &history::Range) -> NsBucket {
    let mut total = NsBucket::default();
    for b in range.namespaces.values() {
        total.merge(b);
    }
    total
}

/// `GET /_api/v1/summary`.
pub fn summary(state: &AppState, q: &Query) -> Value {
    let range = state.history.range(q);
    let namespaces: Vec<Value> = range
        .namespaces
        .iter()
        .map(|(ns, b)| ns_json(Some(ns), b))
        .collect();
    json!({
        "api": 1,
        "since_ms": q.since_ms,
        "until_ms": q.until_ms.min(history::now_ms()),
        "total": ns_json(None, &total(&range)),
        "namespaces": namespaces,
        "history": state.history.info(),
    })
}

/// A crate's numbers with its namespace and name.
pub struct CrateRow {
    /// The namespace.
    pub namespace: String,
    /// The crate.
    pub name: String,
    /// Its numbers.
    pub stats: Stats,
}

/// The rows of every namespace's crates or clients (`pick` chooses which).
fn rows(
    range: &history::Range,
    pick: impl Fn(&NsBucket) -> &BTreeMap<String, Stats>,
) -> Vec<CrateRow> {
    range
        .namespaces
        .iter()
        .flat_map(|(ns, b)| {
            pick(b).iter().map(|(name, s)| CrateRow {
                namespace: ns.clone(),
                name: name.clone(),
                stats: s.clone(),
            })
        })
        .collect()
}

/// Every crate of the range, most time lost to misses first.
pub fn crate_rows(range: &history::Range) -> Vec<CrateRow> {
    let mut rows = rows(range, |b| &b.crates);
    rows.sort_by(|a, b| {
        b.stats
            .lost_ms
            .cmp(&a.stats.lost_ms)
            .then(b.stats.calls.cmp(&a.stats.calls))
            .then(a.name.cmp(&b.name))
    });
    rows
}

/// Every client of the range, most calls first.
pub fn client_rows(range: &history::Range) -> Vec<CrateRow> {
    let mut rows = rows(range, |b| &b.clients);
    rows.sort_by(|a, b| b.stats.calls.cmp(&a.stats.calls).then(a.name.cmp(&b.name)));
    rows
}

fn rows_json(rows: &[CrateRow], key: &str) -> Vec<Value> {
    rows.iter()
        .map(|r| {
            let mut m = stats_json(&r.stats);
            m.insert("namespace".into(), json!(r.namespace));
            m.insert(key.into(), json!(r.name));
            Value::Object(m)
        })
        .collect()
}

/// One point of a time series: a bucket's totals per namespace and its evictions.
pub struct Point {
    /// Start (unix ms).
    pub start_ms: u64,
    /// Length (ms).
    pub len_ms: u64,
    /// Totals per namespace.
    pub namespaces: BTreeMap<String, Stats>,
    /// Evictions.
    pub evictions: history::Evictions,
}

/// The range as a time series: hours for up to two days, else days.
pub fn series(range: &history::Range, q: &Query) -> Vec<Point> {
    let span = history::now_ms().saturating_sub(q.since_ms);
    let step = if span <= 2 * DAY_MS { HOUR_MS } else { DAY_MS };
    let mut points: BTreeMap<u64, Point> = BTreeMap::new();
    for (start, _len, totals, ev) in &range.series {
        let key = start / step * step;
        let p = points.entry(key).or_insert_with(|| Point {
            start_ms: key,
            len_ms: step,
            namespaces: BTreeMap::new(),
            evictions: history::Evictions::default(),
        });
        for (ns, s) in totals {
            p.namespaces.entry(ns.clone()).or_default().merge(s);
        }
        p.evictions.count += ev.count;
        p.evictions.bytes += ev.bytes;
        p.evictions.age_ms_total += ev.age_ms_total;
    }
    points.into_values().collect()
}

/// What the storage page and `/_api/v1/storage` show.
pub fn storage(state: &AppState, range: &history::Range) -> Value {
    let report = state.store.report();
    let e = range.evictions;
    json!({
        "usage": report.usage,
        "tiers": report.tiers,
        "uploads": report.uploads,
        "evictions": {
            "count": e.count,
            "bytes": e.bytes,
            "mean_age_ms": e.age_ms_total.checked_div(e.count),
            "seen": "evictions by this server's disk store (size limit); not seen: Redis TTL or maxmemory evictions and S3 lifecycle rules, which the shared store does without telling the server",
        },
        "history": state.history.info(),
        "reports": reports_json(state),
    })
}

/// The ingestion limits and what they let through and refused (`storage.reports`).
fn reports_json(state: &AppState) -> Value {
    let r = state.report_limits.rates();
    json!({
        "client_records_per_s": r.client_records,
        "client_requests_per_s": r.client_requests,
        "server_records_per_s": r.server_records,
        "counts": state.report_limits.counts(),
    })
}

fn detail_json(d: &Detail) -> Value {
    let mut v = serde_json::to_value(d).unwrap_or(Value::Null);
    if let (Value::Object(m), Some(c)) = (&mut v, d.report.cause) {
        m.insert("cause_description".into(), json!(c.describe()));
    }
    v
}

/// `GET /_api/v1/...`.
pub fn api(state: &AppState, endpoint: &str, req: &Request<Incoming>) -> ApiResult {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(ApiError::MethodNotAllowed);
    }
    let visible = visible(state, req)?;
    let q = query(req, &visible)?;
    state.history.note_usage(&state.store.usage());
    let body = match endpoint.trim_end_matches('/') {
        "" => {
            json!({"api": 1, "endpoints": ["summary", "timeline", "crates", "crates/{name}", "clients", "evictions", "storage"]})
        }
        "summary" => summary(state, &q),
        "timeline" => {
            let range = state.history.range_with(&q, false);
            let points: Vec<Value> = series(&range, &q)
                .iter()
                .map(|p| {
                    json!({
                        "start_ms": p.start_ms,
                        "len_ms": p.len_ms,
                        "namespaces": p.namespaces.iter().map(|(ns, s)| (ns.clone(), Value::Object(stats_json(s)))).collect::<serde_json::Map<_, _>>(),
                        "evictions": p.evictions,
                    })
                })
                .collect();
            json!({"api": 1, "since_ms": q.since_ms, "points": points})
        }
        "crates" => {
            let range = state.history.range(&q);
            json!({"api": 1, "since_ms": q.since_ms, "crates": rows_json(&crate_rows(&range), "crate")})
        }
        "clients" => {
            let range = state.history.range(&q);
            json!({"api": 1, "since_ms": q.since_ms, "clients": rows_json(&client_rows(&range), "client")})
        }
        "evictions" => {
            let range = state.history.range_with(&q, false);
            let points: Vec<Value> = series(&range, &q)
                .iter()
                .filter(|p| p.evictions.count > 0)
                .map(|p| json!({"start_ms": p.start_ms, "len_ms": p.len_ms, "count": p.evictions.count, "bytes": p.evictions.bytes, "mean_age_ms": p.evictions.age_ms_total.checked_div(p.evictions.count)}))
                .collect();
            let mut v = storage(state, &range)["evictions"].clone();
            v["points"] = json!(points);
            v
        }
        "storage" => {
            let range = state.history.range_with(&q, false);
            storage(state, &range)
        }
        other => {
            let Some(name) = other.strip_prefix("crates/") else {
                return Err(ApiError::NotFound);
            };
            let name = decode(name);
            let range = state.history.range(&q);
            let mut stats = Stats::default();
            for b in range.namespaces.values() {
                if let Some(s) = b.crates.get(&name) {
                    stats.merge(s);
                }
            }
            let calls = state
                .history
                .details(&q, MAX_DETAILS, |d| d.report.krate == name);
            json!({
                "api": 1,
                "crate": name,
                "since_ms": q.since_ms,
                "stats": stats_json(&stats),
                "calls": calls.iter().map(detail_json).collect::<Vec<_>>(),
            })
        }
    };
    Ok(json_response(&body))
}

/// A JSON 200.
pub fn json_response(v: &Value) -> Response<Body> {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(full(serde_json::to_vec(v).unwrap_or_default()))
        .unwrap_or_else(|_| Response::new(empty()))
}

/// A miss cause's sentence, for pages.
pub fn describe(c: MissCause) -> &'static str {
    c.describe()
}
