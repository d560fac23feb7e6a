//! Many clients at once: no torn or mixed objects.

use crate::util::{bytes, ephemeral, get, put, start};

#[test]
fn concurrent_uploads_never_corrupt_objects() {
    let server = start(ephemeral());
    let base = server.url("");
    let size = 300_000;
    std::thread::scope(|scope| {
        for i in 0..32u64 {
            let base = base.clone();
            scope.spawn(move || {
                // Half race on one key, half write their own.
                let path = if i % 2 == 0 {
                    "/ns/shared".to_string()
                } else {
                    format!("/ns/own-{i}")
                };
                let status = put(&format!("{base}{path}"), &bytes(i, size)).status;
                assert_eq!(status, 201, "{path}");
                // Read the shared key while others may still be replacing it.
                let shared = get(&format!("{base}/ns/shared"));
                if shared.status == 200 {
                    let whole = (0..32).step_by(2).any(|j| shared.body == bytes(j, size));
                    assert!(whole, "a read saw a torn or mixed object");
                }
            });
        }
    });
    for i in (1..32u64).step_by(2) {
        assert_eq!(
            get(&server.url(&format!("/ns/own-{i}"))).body,
            bytes(i, size)
        );
    }
    let shared = get(&server.url("/ns/shared")).body;
    assert!((0..32).step_by(2).any(|j| shared == bytes(j, size)));
}
