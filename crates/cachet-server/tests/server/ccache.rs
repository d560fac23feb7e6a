//! Debian's ccache 4.7 with `remote_storage=http://user:token@.../ccache/`: a wiped local cache
//! gets remote hits from a token-protected server.

use std::path::Path;
use std::process::Command;

use crate::util::{require_tool, run_ok, start, with_tokens};

fn compile(ccache: &Path, cache_dir: &Path, remote: &str, project: &Path) {
    for file in ["a", "b"] {
        let mut cmd = Command::new(ccache);
        cmd.args([
            "gcc",
            "-O1",
            "-c",
            &format!("{file}.c"),
            "-o",
            &format!("{file}.o"),
        ])
        .current_dir(project)
        .env("CCACHE_DIR", cache_dir)
        .env("CCACHE_CONFIGPATH", cache_dir.join("ccache.conf"))
        .env("CCACHE_REMOTE_STORAGE", remote)
        .env_remove("CCACHE_DISABLE")
        .env_remove("CCACHE_READONLY");
        run_ok(cmd);
    }
}

fn stat(ccache: &Path, cache_dir: &Path, name: &str) -> u64 {
    let out = Command::new(ccache)
        .arg("--print-stats")
        .env("CCACHE_DIR", cache_dir)
        .env("CCACHE_CONFIGPATH", cache_dir.join("ccache.conf"))
        .output()
        .expect("ccache --print-stats");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once('\t')?;
            (k == name).then(|| v.trim().parse().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no {name} in ccache stats:\n{text}"))
}

#[test]
fn ccache_gets_remote_hits_from_cachet() {
    let ccache = require_tool("CACHET_TEST_CCACHE", "ccache", &[]);
    // Token-protected, as a shared server would be: ccache sends the URL's user:password as
    // HTTP Basic.
    let server = start(with_tokens("ccache-secret-1 read,write ccache"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).expect("mkdir");
    std::fs::write(project.join("a.c"), "int a(int x) { return x * 3 + 1; }\n").expect("a.c");
    std::fs::write(
        project.join("b.c"),
        "#include <stdio.h>\nvoid b(void) { puts(\"b\"); }\n",
    )
    .expect("b.c");
    let remote = format!("http://ci:ccache-secret-1@{}/ccache/", server.addr);

    let first = tmp.path().join("ccache-a");
    compile(&ccache, &first, &remote, &project);
    assert_eq!(stat(&ccache, &first, "remote_storage_hit"), 0);
    assert!(stat(&ccache, &first, "cache_miss") >= 2);

    let second = tmp.path().join("ccache-b"); // a wiped local cache
    compile(&ccache, &second, &remote, &project);
    assert_eq!(
        stat(&ccache, &second, "remote_storage_hit"),
        2,
        "both files from cachet"
    );
    assert_eq!(stat(&ccache, &second, "cache_miss"), 0);
}
