//! Tests of the entry writer's helpers.

use std::fs;

use super::write::{find, holds_at};

#[test]
fn find_locates_a_value_across_chunk_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let needle = b"/home/dev/project/src";
    // Place the needle across the first and second 1 MiB boundaries, at the very end, and
    // nowhere.
    for at in [(1 << 20) - 7, (2 << 20) - 3, (3 << 20) - needle.len()] {
        let mut bytes = vec![b'x'; 3 << 20];
        bytes[at..at + needle.len()].copy_from_slice(needle);
        let path = dir.path().join(format!("out-{at}"));
        fs::write(&path, &bytes).unwrap();
        let file = fs::File::open(&path).unwrap();
        assert!(find(&file, needle).unwrap().is_some());
        assert_eq!(find(&file, needle).unwrap(), Some(at as u64));
        assert!(holds_at(&file, at as u64, needle).unwrap());
        assert!(!holds_at(&file, at as u64 + 1, needle).unwrap());
    }
    let path = dir.path().join("none");
    fs::write(&path, vec![b'x'; 3 << 20]).unwrap();
    assert!(find(&fs::File::open(&path).unwrap(), needle)
        .unwrap()
        .is_none());
    fs::write(&path, b"").unwrap();
    assert!(find(&fs::File::open(&path).unwrap(), needle)
        .unwrap()
        .is_none());
}

#[test]
fn crates_not_named_after_their_package_keep_explain_records_per_package() {
    use super::context::explain_name;
    assert_eq!(
        explain_name("build_script_build", Some("ring")),
        "build_script_build.ring"
    );
    assert_eq!(explain_name("cli", Some("my-tool")), "cli.my-tool");
    assert_eq!(explain_name("serde", Some("serde")), "serde");
    assert_eq!(explain_name("my_pkg", Some("my-pkg")), "my_pkg");
    assert_eq!(
        explain_name("build_script_build", None),
        "build_script_build"
    );
    assert_eq!(
        explain_name("build_script_build", Some("")),
        "build_script_build"
    );
}
