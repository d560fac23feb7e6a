//! The dashboard's pages at `/ui` (coming next: served as 404 until then).

use http::{Request, Response};
use hyper::body::Incoming;

use crate::api::AppState;
use crate::error::ApiError;
use crate::http_util::Body;

/// Answers a `/ui` request.
pub async fn page(
    _state: &AppState,
    _page: &str,
    _req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    Err(ApiError::NotFound)
}
