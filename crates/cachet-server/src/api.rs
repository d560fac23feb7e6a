//! Request handling: `request → route → auth → store → response`.
//!
//! [`handle`] is the whole HTTP API as one function of a request. It parses the path into a
//! [`Route`], checks credentials for the scope the method needs *before* touching the store
//! (so a caller without read permission cannot learn whether a key exists), calls the store,
//! and records one metrics sample and one debug log line per request, labelled by the route
//! template. Errors from any step become responses in exactly one place,
//! [`ApiError::into_response`].

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use tracing::Instrument;

use crate::auth::{Denied, Scope, Tokens};
use crate::error::ApiError;
use crate::http_util::{discard_rest, empty, full, next_chunk, stream, Body};
use crate::metrics::method_label;
use crate::route::{self, Route, INVALID_TEMPLATE};
use crate::storage::budget::Refused;
use crate::storage::{ObjectBody, ObjectId, StoreError};
use crate::webdav;

pub use crate::state::{AppState, UPLOAD_BUFFER};

/// How long an upload waits for room in the upload memory budget before it gets 503.
pub const UPLOAD_MEMORY_WAIT: Duration = Duration::from_secs(2);

type ApiResult = Result<Response<Body>, ApiError>;

/// Answers one request. Never fails: errors are responses.
pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = route::parse(&path);
    let template = route
        .as_ref()
        .map(Route::template)
        .unwrap_or(INVALID_TEMPLATE);
    let span = tracing::debug_span!("request", method = %method, path = %path);
    // Body bytes that actually arrived (not what Content-Length announced).
    let received = std::sync::atomic::AtomicU64::new(0);
    let result = match route {
        Ok(route) => {
            dispatch(&state, route, req, &received)
                .instrument(span)
                .await
        }
        Err(err) => Err(err.into()),
    };
    let response = result.unwrap_or_else(ApiError::into_response);
    let took = started.elapsed();
    let status = response.status().as_u16();
    state
        .metrics
        .request(method_label(&method), template, status, took);
    let bytes = if method == Method::PUT {
        received.load(std::sync::atomic::Ordering::Relaxed)
    } else {
        response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    tracing::debug!(
        method = %method,
        path = %path,
        route = template,
        status,
        bytes,
        latency_us = took.as_micros() as u64,
        "request"
    );
    Ok(response)
}

fn content_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// `GET /_whoami?namespace=NS`: the server's version and the scopes the caller's credentials
/// grant on `NS` (default `cachet`), so `cachet status` can tell a user what their token does.
/// Wrong credentials get 401, as on any other route.
fn whoami(state: &AppState, req: &Request<Incoming>) -> ApiResult {
    let namespace = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("namespace="))
        .unwrap_or(cachet_core::wire::DEFAULT_NAMESPACE);
    if !cachet_core::wire::is_valid_namespace(namespace) {
        return Err(ApiError::BadRequest("invalid namespace"));
    }
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let tokens = state.tokens();
    let mut scopes = Vec::new();
    let mut unauthenticated = false;
    for (name, scope) in [
        ("read", Scope::Read),
        ("write", Scope::Write),
        ("admin", Scope::Admin),
    ] {
        match tokens.check(header, scope, Some(namespace)) {
            Ok(_) => scopes.push(name),
            Err(Denied::Unauthenticated) => unauthenticated = true,
            Err(Denied::Forbidden) => {}
        }
    }
    if unauthenticated && scopes.is_empty() {
        return Err(ApiError::Unauthenticated);
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "server": "cachet",
            "version": env!("CARGO_PKG_VERSION"),
            "namespace": namespace,
            "scopes": scopes,
            "open": tokens.is_empty(),
        }),
    ))
}

fn authorize(
    tokens: &Tokens,
    req: &Request<Incoming>,
    scope: Scope,
    namespace: Option<&str>,
) -> Result<(), ApiError> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match tokens.check(header, scope, namespace) {
        Ok(_) => Ok(()),
        Err(Denied::Unauthenticated) => Err(ApiError::Unauthenticated),
        Err(Denied::Forbidden) => Err(ApiError::MissingScope {
            scope: scope.name(),
            namespace: namespace.map(str::to_string),
        }),
    }
}

fn method_scope(method: &Method) -> Option<Scope> {
    match method.as_str() {
        "GET" | "HEAD" | "PROPFIND" => Some(Scope::Read),
        "PUT" | "DELETE" | "MKCOL" => Some(Scope::Write),
        _ => None,
    }
}

async fn dispatch(
    state: &AppState,
    route: Route,
    req: Request<Incoming>,
    received: &std::sync::atomic::AtomicU64,
) -> ApiResult {
    let method = req.method().clone();
    if method == Method::OPTIONS {
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .header(
                header::ALLOW,
                "GET, HEAD, PUT, DELETE, PROPFIND, MKCOL, OPTIONS",
            )
            .header("DAV", "1")
            .body(empty())
            .unwrap_or_else(|_| Response::new(empty())));
    }
    let get_or_head = method == Method::GET || method == Method::HEAD;
    match route {
        Route::Healthz if get_or_head => Ok(text(StatusCode::OK, "ok\n")),
        Route::Readyz if get_or_head => match state.store.check_writable().await {
            Ok(()) => Ok(text(StatusCode::OK, "ready\n")),
            Err(err) => Err(ApiError::NotReady(err)),
        },
        Route::Metrics | Route::Stats if get_or_head && state.protect_stats => {
            authorize(&state.tokens(), &req, Scope::Read, None)?;
            Ok(ops_document(state, &route))
        }
        Route::Metrics | Route::Stats if get_or_head => Ok(ops_document(state, &route)),
        Route::Whoami if get_or_head => whoami(state, &req),
        Route::AdminNamespace(ns) if method == Method::DELETE => {
            authorize(&state.tokens(), &req, Scope::Admin, Some(&ns))?;
            let purged = state.store.purge_namespace(&ns).await?;
            tracing::info!(namespace = %ns, objects = purged, "purged namespace");
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "namespace": ns, "purged_objects": purged }),
            ))
        }
        Route::AdminStats if method == Method::DELETE => {
            authorize(&state.tokens(), &req, Scope::Admin, None)?;
            state.metrics.zero();
            state.report_limits.zero();
            tracing::info!("statistics zeroed");
            Ok(status_only(StatusCode::NO_CONTENT))
        }
        Route::AdminPrune(age) if method == Method::POST => {
            authorize(&state.tokens(), &req, Scope::Admin, None)?;
            let older_than = humantime::parse_duration(&age)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or(ApiError::BadRequest(
                    "invalid age: expected a duration such as 30d or 12h",
                ))?;
            let pruned = state.store.prune(older_than).await?;
            tracing::info!(objects = pruned, older_than = %age, "pruned objects on request");
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "older_than": age, "pruned_objects": pruned }),
            ))
        }
        Route::Root if method.as_str() == "PROPFIND" => Ok(multistatus(webdav::collection("/"))),
        Route::Reports(ns) => crate::dashboard::reports(state, &ns, req).await,
        Route::DashboardApi(endpoint) => crate::dashboard::api(state, &endpoint, &req),
        Route::Ui(page) => crate::ui::page(state, &page, req).await,
        Route::Collection { namespace } => {
            let scope = method_scope(&method).ok_or(ApiError::MethodNotAllowed)?;
            authorize(&state.tokens(), &req, scope, Some(&namespace))?;
            match method.as_str() {
                "PROPFIND" => Ok(multistatus(webdav::collection(req.uri().path()))),
                "MKCOL" => Ok(status_only(StatusCode::CREATED)),
                _ => Err(ApiError::MethodNotAllowed),
            }
        }
        Route::Object { namespace, key } => {
            let scope = method_scope(&method).ok_or(ApiError::MethodNotAllowed)?;
            authorize(&state.tokens(), &req, scope, Some(&namespace))?;
            let id = ObjectId { namespace, key };
            match method.as_str() {
                "GET" => get(state, &id).await,
                "HEAD" => head(state, &id).await,
                "PUT" => put(state, &id, req, received).await,
                "DELETE" => {
                    state.store.delete(&id).await?;
                    Ok(status_only(StatusCode::NO_CONTENT))
                }
                "PROPFIND" => match state.store.head(&id).await? {
                    Some(meta) => Ok(multistatus(webdav::file(
                        req.uri().path(),
                        meta.size,
                        meta.modified,
                    ))),
                    None => Err(ApiError::NotFound),
                },
                // An object path is never a collection.
                _ => Err(ApiError::MethodNotAllowed),
            }
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

async fn get(state: &AppState, id: &ObjectId) -> ApiResult {
    let Some(object) = state.store.get(id).await? else {
        state.metrics.miss();
        state.history.server_get(&id.namespace, false, 0);
        return Err(ApiError::NotFound);
    };
    state.metrics.hit();
    state
        .history
        .server_get(&id.namespace, true, object.meta.size);
    state.metrics.bytes_out(object.meta.size);
    let body = match object.body {
        ObjectBody::Full(bytes) => full(bytes),
        ObjectBody::Stream(s) => stream(s),
    };
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, object.meta.size)
        .body(body)
        .unwrap_or_else(|_| Response::new(empty())))
}

async fn head(state: &AppState, id: &ObjectId) -> ApiResult {
    let meta = state.store.head(id).await?.ok_or(ApiError::NotFound)?;
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, meta.size)
        .header(
            header::LAST_MODIFIED,
            httpdate::fmt_http_date(meta.modified),
        )
        .body(empty())
        .unwrap_or_else(|_| Response::new(empty())))
}

async fn put(
    state: &AppState,
    id: &ObjectId,
    req: Request<Incoming>,
    received_so_far: &std::sync::atomic::AtomicU64,
) -> ApiResult {
    let limit = state.max_object_size;
    let declared = content_length(&req);
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::TooLarge { limit });
    }
    let mut body = req.into_body();
    if let (Some(size), Some((backend, max))) = (declared, state.store.max_upload()) {
        if size > max {
            discard_rest(&mut body, state.body_timeout, limit).await;
            return Err(StoreError::TooLarge {
                backend,
                limit: max,
                size,
            }
            .into());
        }
    }
    // Room in the upload memory budget before reading a byte of the body.
    let want = declared
        .map_or(UPLOAD_BUFFER, |n| n.min(UPLOAD_BUFFER))
        .max(1);
    let mut budget = state.upload_memory.share();
    if let Err(refused) = budget.grow_to(want, Some(UPLOAD_MEMORY_WAIT)).await {
        return Err(over_budget(state, refused));
    }
    let mut upload = match state.store.put(id).await {
        Ok(upload) => upload,
        Err(e) => {
            discard_rest(&mut body, state.body_timeout, limit).await;
            return Err(e.into());
        }
    };
    let mut received = 0u64;
    while let Some(data) = next_chunk(&mut body, state.body_timeout).await? {
        received += data.len() as u64;
        received_so_far.store(received, std::sync::atomic::Ordering::Relaxed);
        if received > limit {
            return Err(ApiError::TooLarge { limit });
        }
        if let Err(e) = upload.write(data).await {
            discard_rest(&mut body, state.body_timeout, limit - received).await;
            return Err(e.into());
        }
        // Whatever the store buffers counts, not only the disk's write buffer: a Redis value
        // is assembled whole, an S3 part is kept until it is full.
        let grown = budget
            .grow_to(upload.buffered(), Some(UPLOAD_MEMORY_WAIT))
            .await;
        if let Err(refused) = grown {
            drop(upload);
            drop(budget);
            discard_rest(&mut body, state.body_timeout, limit - received).await;
            return Err(over_budget(state, refused));
        }
    }
    upload.commit().await?;
    state.metrics.bytes_in(received);
    Ok(status_only(StatusCode::CREATED))
}

/// The answer to an upload the memory budget refused (a busy one is counted).
fn over_budget(state: &AppState, refused: Refused) -> ApiError {
    match refused {
        Refused::Busy => {
            state.metrics.upload_busy();
            ApiError::Busy
        }
        Refused::OverBudget => ApiError::OverBudget {
            budget: state.upload_memory.total(),
        },
    }
}

/// `/metrics` (OpenMetrics text) or `/stats` (JSON).
fn ops_document(state: &AppState, route: &Route) -> Response<Body> {
    if *route == Route::Stats {
        return json(StatusCode::OK, &state.metrics.stats(state.store.as_ref()));
    }
    // The report limits' counters go before the closing `# EOF`.
    let mut text = state.metrics.render(state.store.as_ref());
    let eof = text.rfind("# EOF").unwrap_or(text.len());
    text.insert_str(eof, &state.report_limits.render());
    Response::builder()
        .header(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)
        .body(full(text))
        .unwrap_or_else(|_| Response::new(empty()))
}

fn status_only(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = status;
    r
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(full(body))
        .unwrap_or_else(|_| Response::new(empty()))
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(body))
        .unwrap_or_else(|_| Response::new(empty()))
}

fn multistatus(xml: String) -> Response<Body> {
    Response::builder()
        .status(StatusCode::MULTI_STATUS)
        .header(header::CONTENT_TYPE, "application/xml; charset=utf-8")
        .body(full(xml))
        .unwrap_or_else(|_| Response::new(empty()))
}
