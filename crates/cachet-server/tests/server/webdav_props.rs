//! Property test against a live server: whatever path and WebDAV method a client sends, the
//! server answers with one of the expected statuses and never creates anything outside its
//! store directory.

use proptest::prelude::*;

use crate::util::{in_dir, raw_status, start};

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("..".to_string()),
        Just("%2e%2e".to_string()),
        Just(".".to_string()),
        Just("".to_string()),
        Just("%2f".to_string()),
        Just("%5c".to_string()),
        Just("a\\b".to_string()),
        Just("_admin".to_string()),
        Just("%00".to_string()),
        Just("%ff".to_string()),
        "[a-zA-Z0-9._~-]{1,12}",
    ]
}

#[test]
fn propfind_and_mkcol_never_escape_the_store() {
    let outer = tempfile::tempdir().expect("tempdir");
    let store = outer.path().join("store");
    let server = start(in_dir(&store));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 200,
        ..ProptestConfig::default()
    });
    let strategy = (
        prop_oneof![
            Just("PROPFIND"),
            Just("MKCOL"),
            Just("PUT"),
            Just("GET"),
            Just("DELETE")
        ],
        proptest::collection::vec(segment(), 1..6),
        any::<bool>(),
    );
    runner
        .run(&strategy, |(method, segments, trailing)| {
            let mut path = format!("/{}", segments.join("/"));
            if trailing {
                path.push('/');
            }
            let req = format!(
                "{method} {path} HTTP/1.1\r\nHost: t\r\nDepth: 0\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            );
            let status = raw_status(server.addr, &req);
            prop_assert!(
                matches!(status, Some(200 | 201 | 204 | 207 | 400 | 404 | 405)),
                "{method} {path}: {status:?}"
            );
            Ok(())
        })
        .expect("property");
    let names: Vec<String> = std::fs::read_dir(outer.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["store"], "nothing created next to the store");
    let mut top: Vec<String> = std::fs::read_dir(&store)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(
        top,
        ["LOCK", "VERSION", "objects-v1", "tmp", "trash"],
        "only the store's own layout"
    );
}
