//! The one error type of the HTTP API.
//!
//! Every handler returns `Result<Response, ApiError>`. Turning an error into a response is
//! the only place that decides what a client sees: a status, a small JSON body
//! `{"error": "...", "status": N}` with a sanitized message, and for internal errors a log line
//! with the full cause chain (logged here, once; the client only learns "internal error").
//! Authentication errors are decided before the store is consulted, so a caller without read
//! permission gets the same 401/403 whether or not the key exists.

use http::{header, Response, StatusCode};

use crate::http_util::{full, Body, BodyError};
use crate::route::RouteError;
use crate::storage::StoreError;

/// Kept here for the HTTP layer's callers; the function lives in the leaf [`crate::cause`].
pub use crate::cause::chain;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The path could not be parsed.
    #[error("{0}")]
    BadPath(#[from] RouteError),
    /// The request is malformed in another way.
    #[error("{0}")]
    BadRequest(&'static str),
    /// No or unknown credentials.
    #[error("authentication required")]
    Unauthenticated,
    /// Valid credentials without the needed scope.
    #[error("this token may not do that here")]
    Forbidden,
    /// Valid credentials without `scope` on `namespace` (`None`: a server-wide request). The
    /// message names both, so whoever holds the token knows which scope to ask for; it says
    /// nothing the caller did not send (the namespace comes from the request's path).
    #[error("{}", missing_scope_message(scope, namespace.as_deref()))]
    MissingScope {
        /// `read`, `write` or `admin`.
        scope: &'static str,
        /// The namespace of the request.
        namespace: Option<String>,
    },
    /// No such object.
    #[error("not found")]
    NotFound,
    /// The method does not apply to this route.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The body is larger than `--max-object-size`.
    #[error("object larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The client stalled for longer than `--body-timeout`.
    #[error("the request body stalled for longer than the body timeout")]
    Timeout,
    /// The client went away or sent a broken body.
    #[error("failed to read the request body")]
    Body(#[source] hyper::Error),
    /// The store failed.
    #[error("internal error")]
    Store(#[from] StoreError),
    /// The upload memory budget stayed full for too long.
    #[error("the server is busy with other uploads: retry in a few seconds")]
    Busy,
    /// The upload needs more memory than the whole budget (a store that holds uploads whole).
    #[error(
        "insufficient storage: this upload needs more memory than --upload-memory ({budget} \
         bytes) allows, as the store holds an upload whole until it is stored: raise \
         --upload-memory or put a dir: tier in front"
    )]
    OverBudget {
        /// `--upload-memory`.
        budget: u64,
    },
    /// Call reports over a client's or the server's rate (see [`crate::report_limit`]).
    #[error("too many call reports: retry in {retry_after} s")]
    TooManyReports {
        /// Seconds until the batch would be let through.
        retry_after: u64,
    },
    /// The store is not writable (for `/readyz`).
    #[error("the store is not writable")]
    NotReady(#[source] StoreError),
}

impl ApiError {
    /// The status code answered for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadPath(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::MissingScope { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Body(_) => StatusCode::BAD_REQUEST,
            ApiError::Store(StoreError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Store(StoreError::Full { .. }) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Store(StoreError::Unavailable { .. } | StoreError::Backend { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::NotReady(_) | ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::OverBudget { .. } => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::TooManyReports { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// Logs what must be logged and builds the response.
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        match &self {
            ApiError::Store(err @ (StoreError::TooLarge { .. } | StoreError::Full { .. })) => {
                tracing::warn!(cause = %chain(err), "upload refused");
            }
            ApiError::NotReady(err @ StoreError::Full { .. }) => {
                tracing::debug!(cause = %chain(err), "not ready");
            }
            ApiError::Store(err) | ApiError::NotReady(err) => {
                tracing::error!(cause = %chain(err), "request failed");
            }
            ApiError::Body(err) => tracing::debug!(cause = %err, "client body failed"),
            ApiError::OverBudget { .. } => tracing::warn!(cause = %self, "upload refused"),
            _ => {}
        }
        let message = match &self {
            // Says which limit, as the client needs to know; names no key or path.
            ApiError::Store(err @ StoreError::TooLarge { .. }) => err.to_string(),
            ApiError::Store(StoreError::Unavailable { .. } | StoreError::Backend { .. }) => {
                "storage unavailable".to_string()
            }
            // Names no path.
            ApiError::Store(StoreError::Full { reason, .. }) => {
                format!("insufficient storage: {reason}")
            }
            ApiError::NotReady(StoreError::Full { reason, .. }) => {
                format!("not ready: {reason}")
            }
            _ => self.to_string(),
        };
        let body = serde_json::json!({ "error": message, "status": status.as_u16() });
        let mut builder = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json");
        if status == StatusCode::UNAUTHORIZED {
            builder = builder
                .header(header::WWW_AUTHENTICATE, "Bearer realm=\"cachet\"")
                .header(header::WWW_AUTHENTICATE, "Basic realm=\"cachet\"");
        }
        if matches!(self, ApiError::Busy) {
            builder = builder.header(header::RETRY_AFTER, "2");
        }
        if let ApiError::TooManyReports { retry_after } = self {
            builder = builder.header(header::RETRY_AFTER, retry_after);
        }
        if status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::PAYLOAD_TOO_LARGE
            || matches!(self, ApiError::Busy)
        {
            // The rest of the body is not read: do not keep the connection.
            builder = builder.header(header::CONNECTION, "close");
        }
        builder
            .body(full(format!("{body}\n")))
            .unwrap_or_else(|_| Response::new(full("")))
    }
}

fn missing_scope_message(scope: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!(
            "this token lacks the {scope} scope on namespace {ns:?}: use a token with {scope} \
             on {ns:?} (or on every namespace)"
        ),
        None => format!(
            "this token lacks the {scope} scope on every namespace, which this request needs: \
             use a token with {scope} on every namespace"
        ),
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::Timeout => ApiError::Timeout,
            BodyError::Failed(e) => ApiError::Body(e),
            BodyError::TooLarge { limit } => ApiError::TooLarge { limit },
        }
    }
}
