//! Signing in and out of the pages: the login form sets the token cookie, the logout form
//! clears it. The cookie is `HttpOnly` and `SameSite=Strict`, and `Secure` when the server
//! serves TLS (a browser then never sends it over plain HTTP).

use http::{header, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::html::{esc, html, layout, PageResult, Params};
use crate::auth::Scope;
use crate::dashboard::{self, COOKIE};
use crate::error::ApiError;
use crate::http_util::empty;
use crate::state::AppState;

/// Longest login form body read.
const MAX_FORM: usize = 4096;

/// `POST /ui/login`: checks the token, sets the cookie, and goes to the overview.
pub(super) async fn login(state: &AppState, req: Request<Incoming>) -> PageResult {
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
    Ok(redirect("/ui", &cookie(state, &value.to_string(), "")))
}

/// `POST /ui/logout`: clears the cookie and goes to the login form. A form, not a link, so a
/// page elsewhere cannot sign a user out with an image.
pub(super) fn logout(state: &AppState) -> PageResult {
    Ok(redirect("/ui/login", &cookie(state, "", "; Max-Age=0")))
}

/// The token cookie's header value: `Secure` when the server serves TLS.
pub(super) fn cookie(state: &AppState, value: &str, extra: &str) -> String {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/{secure}{extra}")
}

fn redirect(to: &str, set_cookie: &str) -> Response<crate::http_util::Body> {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, to)
        .header(header::SET_COOKIE, set_cookie)
        .body(empty())
        .unwrap_or_else(|_| Response::new(empty()))
}

pub(super) fn login_page(message: Option<&str>) -> String {
    let msg = message
        .map(|m| format!("<p id=\"login-message\">{}</p>", esc(m)))
        .unwrap_or_default();
    let content = format!(
        "<h1>Sign in</h1>{msg}<form method=\"post\" action=\"/ui/login\">\
         <p><label>Token<br><input type=\"password\" name=\"token\" autocomplete=\"current-password\" required></label></p>\
         <p><button type=\"submit\">Sign in</button></p></form>\
         <p class=\"note\">A token that may read a namespace shows that namespace; an admin token \
         shows all. The token is kept in an HttpOnly cookie for this server only (sent over \
         HTTPS only when the server serves TLS); Sign out clears it.</p>"
    );
    layout("Sign in", "", &Params::default(), &content)
}
