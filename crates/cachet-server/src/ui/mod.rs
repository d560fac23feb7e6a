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
//! Authentication ([`auth`]): with tokens configured, a request needs a token by
//! `Authorization` header or by the `cachet_token` cookie that the login form (`/ui/login`)
//! sets (HttpOnly, SameSite=Strict, Secure over TLS) and the logout form (`/ui/logout`)
//! clears. Without one the answer is 401 with the login form, and no numbers.

mod auth;
mod charts;
mod html;
mod overview;
mod tables;

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;

use crate::dashboard;
use crate::error::ApiError;
use crate::state::AppState;
use html::{html, PageResult, Params};

pub use html::{duration, esc};

/// Answers a `/ui` request.
pub async fn page(state: &AppState, page: &str, req: Request<Incoming>) -> PageResult {
    match (page, req.method()) {
        ("login", &Method::POST) => return auth::login(state, req).await,
        ("logout", &Method::POST) => return auth::logout(state),
        _ => {}
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(ApiError::MethodNotAllowed);
    }
    if page == "login" {
        return Ok(html(StatusCode::OK, auth::login_page(None)));
    }
    let visible = match dashboard::visible(state, &req) {
        Ok(v) => v,
        Err(ApiError::Unauthenticated) => {
            return Ok(html(
                StatusCode::UNAUTHORIZED,
                auth::login_page(Some("Sign in with a cachet token to see the dashboard.")),
            ))
        }
        Err(e) => return Err(e),
    };
    let q = dashboard::query(&req, &visible)?;
    state.history.note_usage(&state.store.usage());
    let params = Params::of(&req);
    let body = match page.trim_end_matches('/') {
        "" => overview::overview(&state.history, &q, &params),
        "crates" => tables::crates(&state.history, &q, &params),
        "clients" => tables::clients(&state.history, &q, &params),
        "storage" => {
            let range = state.history.range_with(&q, false);
            let storage = dashboard::storage(state, &range);
            overview::storage_page(&range, &q, &storage, &params)
        }
        other => match other.strip_prefix("crate/") {
            Some(name) => tables::crate_page(&state.history, &q, &dashboard::decode(name), &params),
            None => return Err(ApiError::NotFound),
        },
    };
    Ok(html(StatusCode::OK, body))
}

#[cfg(test)]
mod tests;
