//! The settings and subcommands a user touches: stats, zero-stats, CACHET_* variables, logs.

use cachet_wrapper::journal::Outcome;

use crate::util::{fixture, outcomes_for, stderr_of, write_file, Project};

/// The soundness fixture built, `cargo clean`ed and built again: every crate stored, then hit.
fn built_cleaned_and_rebuilt() -> Project {
    let p = Project::copy_of(&fixture("soundness"));
    p.cachet_cargo(&["build"], &[]);
    p.cachet_cargo(&["clean"], &[]);
    p.cachet_cargo(&["build"], &[]);
    p
}

#[test]
fn stats_show_hits_misses_and_pass_through_reasons() {
    let p = built_cleaned_and_rebuilt();

    let out = p.cachet(&["stats", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Five crates: two libraries, a proc-macro, a build script and the program.
    assert_eq!(v["stats"]["hits_local"], 5);
    assert_eq!(v["stats"]["misses"], 5);
    assert_eq!(v["stats"]["entries_written"], 5);
    assert!(
        v["stats"]["pass_through"]["version or print query"]
            .as_u64()
            .unwrap()
            >= 1,
        "{v}"
    );
    assert!(v["cache"]["size_bytes"].as_u64().unwrap() > 0);
    assert_eq!(v["cache"]["limit_bytes"], 10u64 << 30);

    let text = String::from_utf8(p.cachet(&["stats"]).stdout).unwrap();
    for line in [
        "hits (local cache)",
        "misses",
        "version or print query",
        "Compile time avoided",
        "Cache size",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }

    assert!(p.cachet(&["zero-stats"]).status.success());
    let v: serde_json::Value =
        serde_json::from_slice(&p.cachet(&["stats", "--json"]).stdout).unwrap();
    assert_eq!(v["stats"]["hits_local"], 0);
    assert_eq!(v["stats"]["calls"], 0);
    assert!(
        v["cache"]["size_bytes"].as_u64().unwrap() > 0,
        "zero-stats keeps the cache"
    );
}

/// Cargo compiles workspace members with `-C incremental` in the dev profile: they are
/// looked up and stored like any other crate (they used to pass through).
#[test]
fn incremental_crates_are_cached_and_still_build() {
    let p = Project::copy_of(&fixture("soundness"));
    p.cachet_cargo(&["build"], &[("CARGO_INCREMENTAL", "1")]);
    p.assert_app_prints("lib=core-lib v1");
    let journal = p.journal();
    assert_eq!(outcomes_for(&journal, "core_lib"), vec![Outcome::Miss]);
    assert!(
        !p.stats().pass_through.contains_key("-C incremental"),
        "{:?}",
        p.stats()
    );
    assert!(p.root.join("target/debug/incremental").is_dir());
}

#[test]
fn disable_runs_rustc_unchanged_and_records_nothing() {
    let p = Project::copy_of(&fixture("soundness"));
    p.cachet_cargo(&["build"], &[("CACHET_DISABLE", "1")]);
    p.assert_app_prints("lib=core-lib v1");
    assert!(p.journal().is_empty());
    assert_eq!(p.stats().calls, 0);
}

#[test]
fn recache_compiles_and_overwrites() {
    let p = Project::copy_of(&fixture("soundness"));
    p.cachet_cargo(&["build"], &[]);
    p.cachet_cargo(&["clean"], &[]);
    let records = p.cachet_cargo_records(&["build"], &[("CACHET_RECACHE", "1")]);
    assert_eq!(outcomes_for(&records, "core_lib"), vec![Outcome::Miss]);
    // Five crates, stored twice.
    assert_eq!(p.stats().entries_written, 10);
    assert_eq!(p.stats().hits_local, 0);
}

#[test]
fn unknown_variables_and_bad_values_warn_once_per_build() {
    let p = Project::copy_of(&fixture("soundness"));
    let out = p.cachet_cargo(
        &["build"],
        &[("CACHET_BOGUS", "1"), ("CACHET_CACHE_SIZE", "huge")],
    );
    let err = stderr_of(&out);
    assert_eq!(
        err.matches("unknown variable CACHET_BOGUS").count(),
        1,
        "{err}"
    );
    assert_eq!(
        err.matches("CACHET_CACHE_SIZE=\"huge\" is not a size")
            .count(),
        1,
        "{err}"
    );
    p.assert_app_prints("lib=core-lib v1");
}

#[test]
fn debug_logs_go_to_the_log_file_never_to_stderr() {
    let p = Project::copy_of(&fixture("soundness"));
    let out = p.cachet_cargo(&["build"], &[("CACHET_LOG", "debug")]);
    let log = std::fs::read_to_string(p.cache.join("cachet.log")).unwrap();
    assert!(log.contains("stored") && log.contains("core_lib"), "{log}");
    assert!(log.contains("pass-through"), "{log}");
    let err = stderr_of(&out);
    assert!(
        !err.contains("DEBUG") && !err.contains("pass-through"),
        "{err}"
    );

    let custom = p.tmp.path().join("custom.log");
    p.cachet_cargo(&["clean"], &[]);
    p.cachet_cargo(
        &["build"],
        &[
            ("CACHET_LOG", "debug"),
            ("CACHET_LOG_FILE", custom.to_str().unwrap()),
        ],
    );
    assert!(std::fs::read_to_string(&custom).unwrap().contains("hit"));
}

#[test]
fn small_cache_size_evicts_to_stay_under_the_limit() {
    let p = Project::copy_of(&fixture("soundness"));
    p.cachet_cargo(&["build"], &[("CACHET_CACHE_SIZE", "6K")]);
    let v: serde_json::Value =
        serde_json::from_slice(&p.cachet(&["stats", "--json"]).stdout).unwrap();
    let size = v["cache"]["size_bytes"].as_u64().unwrap();
    assert!(size <= 6 * 1024, "cache holds {size} bytes over a 6K limit");
    p.assert_app_prints("lib=core-lib v1");
}

#[test]
fn version_and_help() {
    let out = std::process::Command::new(crate::util::cachet_bin())
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("cachet "));
    let out = std::process::Command::new(crate::util::cachet_bin())
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("RUSTC_WRAPPER"), "{help}");
    assert!(help.contains("CACHET_DIR"), "{help}");
}

#[test]
fn explain_lists_the_last_builds_misses_and_pass_throughs() {
    let p = Project::copy_of(&fixture("soundness"));
    p.cachet_cargo(&["build"], &[]);
    let text = String::from_utf8(p.cachet(&["explain"]).stdout).unwrap();
    assert!(text.contains("first compile of this crate"), "{text}");
    let out = p.cachet(&["explain", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let calls = v["calls"].as_array().unwrap();
    for krate in ["app", "core_lib", "build_script_build", "fixture_macros"] {
        assert!(
            calls
                .iter()
                .any(|c| c["krate"] == krate && c["outcome"] == "miss"),
            "{krate} in {v}"
        );
    }
    // An incremental build is keyed apart from a plain one; explain says why it missed.
    p.cachet_cargo(&["build"], &[("CARGO_INCREMENTAL", "1")]);
    let text = String::from_utf8(p.cachet(&["explain"]).stdout).unwrap();
    assert!(text.contains("-C=incremental"), "{text}");
    let out = p.cachet(&["explain", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["calls"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["krate"] == "app" && c["outcome"] == "miss"));
    let none = p.cachet(&["explain", "no_such_crate"]);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no call for crate no_such_crate"));
}

/// Every package's build script is the crate `build_script_build`. In a workspace with more of
/// them than the explain records kept per name, each must still be compared with its own
/// earlier compile: after every script changes, each miss names its own `build.rs` and no
/// other package's files.
#[test]
fn explain_compares_each_build_script_with_its_own_package() {
    const PACKAGES: usize = 10; // more than the records kept per name (explain::KEEP, 8)
    let names: Vec<String> = (0..PACKAGES).map(|i| format!("pkg{i:02}")).collect();
    let script = |name: &str, version: u32| {
        format!("fn main() {{ println!(\"cargo:rustc-env=VERSION={name} v{version}\"); }}\n")
    };
    let mut files = vec![(
        "Cargo.toml".to_string(),
        format!(
            "[workspace]\nresolver = \"2\"\nmembers = [{}]\n",
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )];
    for name in &names {
        files.push((
            format!("{name}/Cargo.toml"),
            format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
        ));
        files.push((format!("{name}/build.rs"), script(name, 1)));
        files.push((
            format!("{name}/src/lib.rs"),
            "pub const VERSION: &str = env!(\"VERSION\");\n".to_string(),
        ));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let p = Project::from_files(&refs);
    p.cachet_cargo(&["build"], &[]);
    for name in &names {
        write_file(&p.root, &format!("{name}/build.rs"), &script(name, 2));
    }
    let records = p.cachet_cargo_records(&["build"], &[]);
    let scripts: Vec<_> = records
        .iter()
        .filter(|r| r.krate.as_deref() == Some("build_script_build"))
        .collect();
    assert_eq!(scripts.len(), PACKAGES, "{records:#?}");
    let mut explained = std::collections::BTreeSet::new();
    for record in scripts {
        // Compiled; the second miss of a member in a row is not stored (edit_loop.rs).
        assert!(
            matches!(record.outcome, Outcome::Miss | Outcome::MissNotStored),
            "{record:#?}"
        );
        let changes = record.changes.clone().unwrap_or_default();
        let named: std::collections::BTreeSet<&String> = names
            .iter()
            .filter(|n| changes.iter().any(|c| c.name.contains(&format!("{n}/"))))
            .collect();
        assert_eq!(named.len(), 1, "one package's files per miss: {changes:#?}");
        let name = named.into_iter().next().unwrap();
        assert!(
            changes
                .iter()
                .any(|c| c.kind == "source file" && c.name.ends_with(&format!("{name}/build.rs"))),
            "{changes:#?}"
        );
        explained.insert(name.clone());
    }
    assert_eq!(explained.len(), PACKAGES, "{explained:?}");
}

/// `cachet stats`' "Compile time avoided" is what the journal's hits add up to: each hit's
/// `saved_ms` (its entry's recorded compile time minus the time to serve it), never more than
/// the compile time its own miss recorded; "Time compiling" is the sum of the journal's
/// `compile_ms`. The text says it is a sum over crates, not wall-clock time.
#[test]
fn compile_time_avoided_is_the_sum_of_the_journals_per_hit_times() {
    let p = built_cleaned_and_rebuilt();
    let journal = p.journal();
    let stats = p.stats();
    let hits: Vec<_> = journal.iter().filter(|r| r.outcome.is_hit()).collect();
    assert_eq!(hits.len(), 5, "{journal:#?}");
    assert_eq!(hits.len() as u64, stats.hits());
    let saved: u64 = hits
        .iter()
        .map(|r| r.saved_ms.expect("a hit records saved_ms"))
        .sum();
    assert_eq!(saved, stats.saved_millis);
    let compiled: u64 = journal.iter().filter_map(|r| r.compile_ms).sum();
    assert_eq!(compiled, stats.compile_millis);
    for hit in &hits {
        let miss = journal
            .iter()
            .find(|r| r.outcome == Outcome::Miss && r.pre_key == hit.pre_key)
            .unwrap_or_else(|| panic!("no miss stored the entry of {hit:?}"));
        let compile_ms = miss.compile_ms.expect("a miss records compile_ms");
        assert!(
            hit.saved_ms.unwrap() <= compile_ms,
            "{hit:?} saved more than {miss:?} compiled"
        );
        assert!(hit.compile_ms.is_none() && miss.saved_ms.is_none());
    }
    let text = String::from_utf8(p.cachet(&["stats"]).stdout).unwrap();
    let shown = format!(
        "{:.1} s (summed over the crates that hit; not wall-clock time)",
        saved as f64 / 1000.0
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("Compile time avoided"))
        .unwrap_or_else(|| panic!("no compile time line in\n{text}"));
    assert!(line.ends_with(&shown), "{line:?} should end with {shown:?}");
}
