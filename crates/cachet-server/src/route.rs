//! Turns a request path into a [`Route`]: an ops endpoint, an admin action, or an object.
//!
//! This is the only place a client-supplied path is interpreted, so it is strict and total:
//! the raw path is percent-decoded once, then the namespace and key are checked with
//! `cachet_core::wire` (which refuses `..`, `.`, empty segments, backslashes and anything
//! outside a conservative character set). Anything else is a 400, never a guess (the one
//! leniency: empty segments between the namespace and the key are skipped). Namespaces
//! starting with `_` are reserved for the server's own routes (`/_admin/...`), and the ops
//! endpoints are single segments, which an object path (`/<namespace>/<key>`) never is.
//!
//! Each route also names its template (`/{namespace}/{key}`), the label used by metrics, so
//! the label set stays bounded whatever paths clients send.

use cachet_core::wire::{is_valid_key, is_valid_namespace};
use percent_encoding::percent_decode_str;

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/healthz`: the process is alive.
    Healthz,
    /// `/readyz`: the store takes writes.
    Readyz,
    /// `/metrics`: Prometheus text format.
    Metrics,
    /// `/stats`: JSON statistics.
    Stats,
    /// `/_whoami?namespace=<ns>`: the server's version and what the caller's token may do.
    Whoami,
    /// `/_admin/namespaces/<ns>`: purge a namespace (DELETE).
    AdminNamespace(String),
    /// `/_admin/stats`: zero the statistics (DELETE).
    AdminStats,
    /// `/_admin/prune/<age>`: prune objects older than `<age>`, e.g. `30d` (POST); what
    /// `cachet server prune` points to while this server runs.
    AdminPrune(String),
    /// `/<ns>/` or `/<ns>/<prefix>/`: a WebDAV collection (virtual: every one exists).
    Collection {
        /// The namespace.
        namespace: String,
    },
    /// `/<ns>/<key>`: an object.
    Object {
        /// The namespace.
        namespace: String,
        /// The key (may contain `/`).
        key: String,
    },
    /// `/`: the root collection.
    Root,
    /// `/_reports/<ns>`: a batch of call reports for the dashboard (POST).
    Reports(String),
    /// `/_api/v1/<rest>`: the dashboard's JSON API (`rest` may be empty or contain `/`).
    DashboardApi(String),
    /// `/ui` and `/ui/<rest>`: the dashboard's pages (`rest` without the leading `/`).
    Ui(String),
}

/// Why a path was refused (the message is safe to show the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// Not percent-decodable to UTF-8.
    #[error("the path is not valid percent-encoded UTF-8")]
    Encoding,
    /// The namespace is not valid.
    #[error("invalid namespace: expected 1-64 characters of A-Z a-z 0-9 . _ -")]
    Namespace,
    /// The namespace starts with `_`, reserved for the server.
    #[error("namespaces starting with _ are reserved")]
    Reserved,
    /// The key is not valid.
    #[error("invalid key: expected /-separated segments of A-Z a-z 0-9 . _ - ~, no . or ..")]
    Key,
    /// No such admin route.
    #[error("no such admin route")]
    UnknownAdmin,
    /// No such dashboard API endpoint (wrong version or name).
    #[error("no such dashboard API endpoint: the API is at /_api/v1/")]
    UnknownApi,
}

impl Route {
    /// The route's template, used as a metrics label.
    pub fn template(&self) -> &'static str {
        match self {
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
            Route::Stats => "/stats",
            Route::Whoami => "/_whoami",
            Route::AdminNamespace(_) => "/_admin/namespaces/{namespace}",
            Route::AdminStats => "/_admin/stats",
            Route::AdminPrune(_) => "/_admin/prune/{age}",
            Route::Collection { .. } => "/{namespace}/",
            Route::Object { .. } => "/{namespace}/{key}",
            Route::Root => "/",
            Route::Reports(_) => "/_reports/{namespace}",
            Route::DashboardApi(_) => "/_api/v1/{endpoint}",
            Route::Ui(_) => "/ui/{page}",
        }
    }
}

/// The first path segment of the dashboard's pages; not usable as a namespace.
pub const UI_SEGMENT: &str = "ui";

/// The template label for requests whose path could not be parsed.
pub const INVALID_TEMPLATE: &str = "invalid";

/// Parses a request path (without the query string).
pub fn parse(raw: &str) -> Result<Route, RouteError> {
    match raw {
        "/healthz" => return Ok(Route::Healthz),
        "/readyz" => return Ok(Route::Readyz),
        "/metrics" => return Ok(Route::Metrics),
        "/stats" => return Ok(Route::Stats),
        "/_whoami" => return Ok(Route::Whoami),
        // `*` is the target of `OPTIONS *` (the server as a whole).
        "" | "/" | "*" => return Ok(Route::Root),
        "/ui" | "/ui/" => return Ok(Route::Ui(String::new())),
        _ => {}
    }
    // The dashboard's pages take the first path segment `ui`: that namespace is reserved too.
    if let Some(page) = raw.strip_prefix("/ui/") {
        return if page
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-%".contains(&b))
            && !page.contains("..")
        {
            Ok(Route::Ui(page.to_string()))
        } else {
            Err(RouteError::Key)
        };
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| RouteError::Encoding)?;
    let rest = decoded.strip_prefix('/').ok_or(RouteError::Namespace)?;
    let (namespace, key) = rest.split_once('/').unwrap_or((rest, ""));
    // WebDAV clients join an endpoint ending in `/` with a root starting with `/`
    // (sccache sends `/sccache//.sccache_check`): empty segments before the key mean nothing.
    let key = key.trim_start_matches('/');
    if namespace == "_admin" {
        return match key.split_once('/') {
            Some(("namespaces", ns)) if is_valid_namespace(ns) && !ns.starts_with('_') => {
                Ok(Route::AdminNamespace(ns.to_string()))
            }
            Some(("namespaces", _)) => Err(RouteError::Namespace),
            Some(("prune", age)) => Ok(Route::AdminPrune(age.to_string())),
            None if key == "stats" => Ok(Route::AdminStats),
            _ => Err(RouteError::UnknownAdmin),
        };
    }
    if namespace == cachet_core::report::REPORTS_SEGMENT {
        return if is_valid_namespace(key) && !key.starts_with('_') && key != UI_SEGMENT {
            Ok(Route::Reports(key.to_string()))
        } else {
            Err(RouteError::Namespace)
        };
    }
    if let Some(rest) = decoded.strip_prefix(cachet_core::report::API_PREFIX) {
        return match rest.strip_prefix('/') {
            Some(rest) if !rest.contains("..") => Ok(Route::DashboardApi(rest.to_string())),
            _ if rest.is_empty() => Ok(Route::DashboardApi(String::new())),
            _ => Err(RouteError::UnknownApi),
        };
    }
    if !is_valid_namespace(namespace) {
        return Err(RouteError::Namespace);
    }
    if namespace.starts_with('_') || namespace == UI_SEGMENT {
        return Err(RouteError::Reserved);
    }
    let namespace = namespace.to_string();
    if key.is_empty() {
        return Ok(Route::Collection { namespace });
    }
    if let Some(prefix) = key.strip_suffix('/') {
        return if is_valid_key(prefix) {
            Ok(Route::Collection { namespace })
        } else {
            Err(RouteError::Key)
        };
    }
    if !is_valid_key(key) {
        return Err(RouteError::Key);
    }
    Ok(Route::Object {
        namespace,
        key: key.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn routes() {
        assert_eq!(parse("/healthz"), Ok(Route::Healthz));
        assert_eq!(
            parse("/cachet/v1/e/ab"),
            Ok(Route::Object {
                namespace: "cachet".into(),
                key: "v1/e/ab".into()
            })
        );
        assert_eq!(
            parse("/sccache/a/b/"),
            Ok(Route::Collection {
                namespace: "sccache".into()
            })
        );
        assert_eq!(
            parse("/ns/a%2Fb"),
            Ok(Route::Object {
                namespace: "ns".into(),
                key: "a/b".into()
            })
        );
        assert_eq!(
            parse("/_admin/namespaces/ccache"),
            Ok(Route::AdminNamespace("ccache".into()))
        );
        assert_eq!(parse("/_admin/stats"), Ok(Route::AdminStats));
        assert_eq!(
            parse("/_admin/prune/30d"),
            Ok(Route::AdminPrune("30d".into()))
        );
        assert_eq!(parse("/_reports/ns"), Ok(Route::Reports("ns".into())));
        assert_eq!(
            parse("/_api/v1/summary"),
            Ok(Route::DashboardApi("summary".into()))
        );
        assert_eq!(parse("/ui"), Ok(Route::Ui(String::new())));
        assert_eq!(parse("/ui/crates"), Ok(Route::Ui("crates".into())));
        assert!(parse("/_reports/_x").is_err());
        assert!(parse("/_reports/a/b").is_err());
        assert!(parse("/_api/v2/summary").is_err());
        assert!(parse("/ui/../x").is_err());
    }

    #[test]
    fn traversal_is_refused() {
        for bad in [
            "/ns/..",
            "/ns/%2e%2e",
            "/ns/a/%2E%2E/b",
            "/ns/a/../../etc/passwd",
            "//etc/passwd",
            "/ns/a\\b",
            "/ns/a%5c..%5cb",
            "/../x",
            "/%2e%2e/x",
            "/ns/a%00b",
            "/ns/%ff",
            "/_x/y",
            "/_admin/namespaces/..",
            "/_admin/whatever",
            "relative/x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        /// Whatever the path, parsing never panics, and an accepted object names a key that
        /// stays inside its namespace directory (no `..`, no absolute part, no backslash).
        #[test]
        fn parse_is_total_and_contained(raw in "(/|%2[eEfF]|%5[cC]|\\.|[a-z_]|\\\\|%00|~){0,40}") {
            if let Ok(Route::Object { namespace, key }) = parse(&raw) {
                prop_assert!(is_valid_namespace(&namespace));
                prop_assert!(!namespace.starts_with('_'));
                prop_assert!(key.split('/').all(|s| !s.is_empty() && s != ".." && s != "."));
                prop_assert!(!key.contains('\\') && !key.contains('\0') && !key.starts_with('/'));
            }
        }

        #[test]
        fn parse_never_panics(raw in ".{0,200}") {
            let _ = parse(&raw);
        }
    }
}
