//! The pinned crates.io graph (`../shared/workloads/service`, 95 crates): a cold build stores
//! every crate (libraries, proc-macros, build scripts, the program), a rebuild after `cargo
//! clean` restores all of them and compiles at most 5% of what the cold build compiled, and two
//! builds at once share one cache without losing or corrupting anything.

use std::collections::BTreeSet;
use std::path::Path;

use cachet_core::entry::Entry;
use cachet_wrapper::journal::{Outcome, Record};

use crate::util::{cacheable, crates_with, workload_service, Project, ServerProcess};

pub(crate) fn fetch(p: &Project) {
    p.cachet_cargo(&["fetch", "--locked"], &[]);
}

pub(crate) fn stored_crates(records: &[Record]) -> BTreeSet<String> {
    crates_with(records, Outcome::Miss)
}

/// Cacheable calls that compiled successfully instead of hitting. (Build scripts probe the
/// compiler with snippets that are meant to fail; failed compiles are never stored.)
fn successful_misses(records: &[Record]) -> Vec<&Record> {
    cacheable(records)
        .into_iter()
        .filter(|r| !matches!(r.outcome, Outcome::HitLocal | Outcome::CompileFailed))
        .collect()
}

/// The rustc calls cargo made for the graph's crates that compiled (build-script probes, made
/// by build scripts rather than cargo, and cargo's version queries are not compilations).
fn compilations(records: &[Record]) -> usize {
    let mut by_parent = std::collections::BTreeMap::<u32, usize>::new();
    for r in records {
        *by_parent.entry(r.parent).or_default() += 1;
    }
    let Some((&cargo, _)) = by_parent.iter().max_by_key(|(_, n)| **n) else {
        return 0;
    };
    records
        .iter()
        .filter(|r| r.parent == cargo)
        .filter(|r| match r.outcome {
            Outcome::HitLocal | Outcome::HitRemote => false,
            Outcome::PassThrough => r.reason.as_deref() != Some("version or print query"),
            _ => true,
        })
        .count()
}

/// Decodes every entry in the cache; returns how many there are.
fn check_entries(cache: &Path) -> usize {
    let mut n = 0;
    for shard in std::fs::read_dir(cache.join("v1/entries")).unwrap() {
        for f in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let f = f.unwrap();
            if f.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let bytes = std::fs::read(f.path()).unwrap();
            let key = f.file_name().to_string_lossy().parse().unwrap();
            Entry::decode(&bytes, &key)
                .unwrap_or_else(|e| panic!("corrupt entry {}: {e}", f.path().display()));
            n += 1;
        }
    }
    n
}

/// One cold build of the graph through a shared server, then: a rebuild after `cargo clean`
/// hits the local cache for every library crate, and a second client with an empty local
/// cache gets every one of them from the server. The two clients have different
/// `CACHET_CLIENT_NAME`s, and the first then edits the program's source: the server's dashboard
/// reports both clients, every call the two journals recorded, and the edited crate's miss with
/// the cause "a source file changed" (issue 16's test, on the same builds).
#[test]
fn real_graph_warm_build_hits_every_crate_locally_and_from_the_server() {
    let storage = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&["--storage", &format!("dir:{}", storage.path().display())]);
    let alice = [("CACHET_CLIENT_NAME", "alice")];
    let with_server = [
        ("CACHET_SERVER", server.base_url()),
        ("CACHET_CLIENT_NAME", "alice"),
    ];
    let p = Project::copy_of(&workload_service());
    fetch(&p);
    p.cachet_cargo(&["build", "--locked", "--offline"], &with_server);
    let output = p.run_program("target", "debug", "wl-service");
    let cold = p.journal();
    let stored = stored_crates(&cold);
    assert!(
        stored.len() >= 50,
        "expected most of the graph's crates to be stored, got {}",
        stored.len()
    );
    // Linked crates are cached too: the program, build scripts and proc-macros.
    for linked in ["wl_service", "build_script_build", "serde_derive"] {
        assert!(stored.contains(linked), "{linked} not stored: {stored:?}");
    }
    let cold_compilations = compilations(&cold);

    p.cachet_cargo(&["clean"], &alice);
    let before = p.journal().len();
    p.cachet_cargo(&["build", "--locked", "--offline"], &alice);
    let warm = p.journal().split_off(before);
    let misses: Vec<_> = successful_misses(&warm);
    assert!(misses.is_empty(), "warm build missed: {misses:?}");
    let warm_compilations = compilations(&warm);
    eprintln!("cold build: {cold_compilations} compilations; warm rebuild: {warm_compilations}");
    assert!(
        warm_compilations * 20 <= cold_compilations,
        "a warm rebuild compiles at most 5% of the cold build's {cold_compilations} \
         compilations, got {warm_compilations}"
    );
    let hit = crates_with(&warm, Outcome::HitLocal);
    assert_eq!(hit, stored, "every stored crate hits");
    assert_eq!(p.run_program("target", "debug", "wl-service"), output);
    assert!(output.contains("\"sorted\":[1,3,5,9]"), "{output}");

    let second = p.client("second-client-cache");
    let bob = [
        ("CACHET_SERVER", server.base_url()),
        ("CACHET_CLIENT_NAME", "bob"),
    ];
    second.cachet_cargo(&["clean"], &bob);
    second.cachet_cargo(&["build", "--locked", "--offline"], &bob);
    let remote = second.journal();
    let misses: Vec<_> = cacheable(&remote)
        .into_iter()
        .filter(|r| !matches!(r.outcome, Outcome::HitRemote | Outcome::CompileFailed))
        .collect();
    assert!(misses.is_empty(), "the second client missed: {misses:?}");
    let from_server = crates_with(&remote, Outcome::HitRemote);
    assert_eq!(
        from_server, stored,
        "every stored library crate comes from the server"
    );
    assert_eq!(second.run_program("target", "debug", "wl-service"), output);

    // Alice, who built the program before, edits its source and builds again through the
    // server. (A client whose only earlier build of a crate was a hit keeps no record of its
    // inputs, so its edit would report "first build".)
    let main = p.root.join("src/main.rs");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        format!("{text}\nfn _added_for_the_dashboard() {{}}\n"),
    )
    .unwrap();
    let warm_len = warm.len();
    p.cachet_cargo(&["build", "--locked", "--offline"], &with_server);
    // Alice's warm rebuild had no server, so it reported nothing.
    let mut alice_reported = p.journal();
    alice_reported.drain(before..before + warm_len);
    dashboard_reports_both_clients(
        server.base_url(),
        &[
            (&p, "alice", alice_reported),
            (&second, "bob", second.journal()),
        ],
    );
}

/// After `cachet flush` on each client: the server's dashboard names both clients, holds for
/// every crate as many calls, local hits, server hits and misses as the journals recorded in
/// the builds that had a server (`records`), and lists the edited program's miss with the
/// cause "a source file changed". cargo's version and print queries are journaled, not
/// reported.
fn dashboard_reports_both_clients(url: &str, clients: &[(&Project, &str, Vec<Record>)]) {
    use std::collections::BTreeMap;
    let mut journal: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for (p, name, records) in clients {
        let env = [("CACHET_SERVER", url), ("CACHET_CLIENT_NAME", name)];
        crate::util::run_ok(crate::reports::flush(p, &env));
        let reported = records
            .iter()
            .filter(|r| r.reason.as_deref() != Some("version or print query"));
        for r in reported {
            // A call with no crate name (a version query) is reported as `(unknown)`.
            let krate = r.krate.clone().unwrap_or_else(|| "(unknown)".into());
            let n = journal.entry(krate).or_default();
            n[0] += 1;
            match r.outcome {
                Outcome::HitLocal => n[1] += 1,
                Outcome::HitRemote => n[2] += 1,
                Outcome::Miss => n[3] += 1,
                _ => {}
            }
        }
    }
    let clients_api = crate::reports::api(url, "/_api/v1/clients?since=1d");
    let names: BTreeSet<&str> = clients_api["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["alice", "bob"]));
    let crates = crate::reports::api(url, "/_api/v1/crates?since=1d");
    let mut server: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for c in crates["crates"].as_array().unwrap() {
        let n = |k: &str| c[k].as_u64().unwrap();
        server.insert(
            c["crate"].as_str().unwrap().to_string(),
            [n("calls"), n("hits_local"), n("hits_remote"), n("misses")],
        );
    }
    assert!(
        journal.len() >= 50,
        "{} crates in the journals",
        journal.len()
    );
    assert_eq!(
        server, journal,
        "per crate [calls, local hits, server hits, misses]: the server's and the journals'"
    );
    let program = crate::reports::api(url, "/_api/v1/crates/wl_service?since=1d");
    let edited = program["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client"] == "alice" && c["outcome"] == "miss" && c["cause"] != "first-build")
        .unwrap_or_else(|| panic!("no miss of the edited wl_service: {program}"));
    assert_eq!(edited["cause"], "source-file", "{edited}");
    assert_eq!(edited["cause_description"], "a source file changed");
}

#[test]
fn two_builds_at_once_share_one_cache() {
    let p = Project::copy_of(&workload_service());
    fetch(&p);
    let spawn = |target: &str| {
        let mut cmd = p.cargo_command(&["build", "--locked", "--offline"]);
        cmd.env("RUSTC_WRAPPER", crate::util::cachet_bin())
            .env("CACHET_DIR", &p.cache)
            .env("CARGO_TARGET_DIR", p.root.join(target));
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().unwrap()
    };
    let a = spawn("target-a");
    let b = spawn("target-b");
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out_a = p.run_program("target-a", "debug", "wl-service");
    assert_eq!(out_a, p.run_program("target-b", "debug", "wl-service"));

    // The statistics add up: every call was counted once, and every lookup was a hit or a miss.
    let journal = p.journal();
    let stats = p.stats();
    assert_eq!(stats.calls, journal.len() as u64);
    // A failed compile (a build script's probe) is a compile failure, not also a miss.
    assert_eq!(
        stats.cacheable_calls,
        stats.hits_local + stats.misses + stats.compile_failures
    );
    assert_eq!(stats.cacheable_calls, cacheable(&journal).len() as u64);
    let entries = check_entries(&p.cache);
    assert!(entries >= 50, "{entries} entries");

    // Nothing was lost: a third build in a fresh target dir hits every library crate.
    let before = journal.len();
    p.cachet_cargo(
        &["clean"],
        &[(
            "CARGO_TARGET_DIR",
            p.root.join("target-a").to_str().unwrap(),
        )],
    );
    p.cachet_cargo(
        &["build", "--locked", "--offline"],
        &[(
            "CARGO_TARGET_DIR",
            p.root.join("target-a").to_str().unwrap(),
        )],
    );
    let third = p.journal().split_off(before);
    let misses: Vec<_> = successful_misses(&third);
    assert!(
        misses.is_empty(),
        "after concurrent builds, a rebuild missed: {misses:?}"
    );
    assert_eq!(p.run_program("target-a", "debug", "wl-service"), out_a);
}
