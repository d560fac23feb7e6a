//! Tokens and scopes: 401 without valid credentials, 403 without the scope, Basic and Bearer.

use base64::Engine;

use crate::util::{send, start, with_tokens};

fn basic(user: &str, pass: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {b64}")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn tokens_scopes_and_schemes() {
    let server = start(with_tokens(
        "reader-token read cachet\nwriter-token read,write\nadmin-token admin *",
    ));
    let url = server.url("/cachet/k");
    let req = |m: &str, u: &str, auth: Option<&str>| send(m, u, Some(b"data"), auth).status;

    // No credentials, wrong credentials.
    let r = send("GET", &url, None, None);
    assert_eq!(r.status, 401);
    assert!(r.headers.get_all("www-authenticate").iter().count() >= 1);
    assert_eq!(req("GET", &url, Some(&bearer("wrong-token"))), 401);
    assert_eq!(req("PUT", &url, Some(&basic("x", "wrong-token"))), 401);
    assert_eq!(req("GET", &url, Some("Bearer")), 401);

    // Writer, by Bearer and by Basic (password, or user name alone as ccache may send).
    assert_eq!(req("PUT", &url, Some(&bearer("writer-token"))), 201);
    assert_eq!(req("PUT", &url, Some(&basic("ci", "writer-token"))), 201);
    assert_eq!(req("PUT", &url, Some(&basic("writer-token", ""))), 201);

    // Reader: GET yes, PUT and DELETE no; other namespaces invisible.
    assert_eq!(
        send("GET", &url, None, Some(&bearer("reader-token"))).body,
        b"data"
    );
    assert_eq!(req("PUT", &url, Some(&bearer("reader-token"))), 403);
    assert_eq!(
        send("DELETE", &url, None, Some(&bearer("reader-token"))).status,
        403
    );
    let other_existing = server.url("/other/k");
    assert_eq!(
        req("PUT", &other_existing, Some(&bearer("writer-token"))),
        201
    );
    let other_missing = server.url("/other/missing");
    for u in [&other_existing, &other_missing] {
        for m in ["GET", "HEAD", "PROPFIND"] {
            assert_eq!(
                send(m, u, None, Some(&bearer("reader-token"))).status,
                403,
                "{m} {u}: existence must not leak"
            );
            assert_eq!(send(m, u, None, None).status, 401, "{m} {u}");
        }
    }

    // Admin: only the admin scope purges or zeroes.
    let purge = server.url("/_admin/namespaces/cachet");
    assert_eq!(
        send("DELETE", &purge, None, Some(&bearer("writer-token"))).status,
        403
    );
    assert_eq!(send("DELETE", &purge, None, None).status, 401);
    let zero = server.url("/_admin/stats");
    assert_eq!(
        send("DELETE", &zero, None, Some(&bearer("reader-token"))).status,
        403
    );
    assert_eq!(
        send("DELETE", &zero, None, Some(&bearer("admin-token"))).status,
        204
    );
    assert_eq!(
        send("DELETE", &purge, None, Some(&bearer("admin-token"))).status,
        200
    );
    assert_eq!(
        send("GET", &url, None, Some(&bearer("admin-token"))).status,
        404
    );

    // Ops endpoints stay open for probes and scrapers.
    assert_eq!(send("GET", &server.url("/healthz"), None, None).status, 200);
    assert_eq!(send("GET", &server.url("/metrics"), None, None).status, 200);
}

#[test]
fn whoami_reports_version_and_the_tokens_scopes() {
    let server = start(with_tokens(
        "reader-token read cachet\nwriter-token read,write",
    ));
    let scopes = |ns: &str, auth: Option<&str>| {
        let r = send(
            "GET",
            &server.url(&format!("/_whoami?namespace={ns}")),
            None,
            auth,
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        (r.status, v["scopes"].clone(), v["version"].clone())
    };
    let (status, s, version) = scopes("cachet", Some(&bearer("reader-token")));
    assert_eq!(status, 200);
    assert_eq!(s, serde_json::json!(["read"]));
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    assert_eq!(
        scopes("cachet", Some(&bearer("writer-token"))).1,
        serde_json::json!(["read", "write"])
    );
    // A valid token without rights there: no scopes, not an error.
    assert_eq!(
        scopes("other", Some(&bearer("reader-token"))).1,
        serde_json::json!([])
    );
    assert_eq!(scopes("cachet", Some(&bearer("wrong"))).0, 401);
    assert_eq!(scopes("cachet", None).0, 401);
    assert_eq!(scopes("..", None).0, 400);
}

/// A 403 names the scope the token lacks and the namespace (the issue: "this token may not do
/// that here" left the user guessing), and still says the same for an existing and a missing
/// key, so it reveals nothing a reader could not see.
#[test]
fn forbidden_names_the_missing_scope_and_the_namespace() {
    let server = start(with_tokens(
        "reader-token read cachet\nwriter-token read,write",
    ));
    let reader = bearer("reader-token");
    let writer = bearer("writer-token");
    assert_eq!(
        send("PUT", &server.url("/other/k"), Some(b"x"), Some(&writer)).status,
        201
    );
    let mut bodies = Vec::new();
    for (what, method, path, auth) in [
        ("write on cachet", "PUT", "/cachet/k", &reader),
        ("read on other (existing key)", "GET", "/other/k", &reader),
        (
            "read on other (missing key)",
            "GET",
            "/other/missing",
            &reader,
        ),
        (
            "admin on cachet",
            "DELETE",
            "/_admin/namespaces/cachet",
            &writer,
        ),
        (
            "admin on every namespace",
            "DELETE",
            "/_admin/stats",
            &reader,
        ),
    ] {
        let body = (method == "PUT").then_some(&b"data"[..]);
        let r = send(method, &server.url(path), body, Some(auth));
        assert_eq!(r.status, 403, "{what}");
        bodies.push(format!(
            "{what}: {}",
            String::from_utf8_lossy(&r.body).trim()
        ));
    }
    assert_eq!(
        bodies[1].split_once(": ").unwrap().1,
        bodies[2].split_once(": ").unwrap().1,
        "existence must not leak"
    );
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!("forbidden_bodies", bodies.join("\n")));
}
