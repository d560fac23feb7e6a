use super::*;

fn cfg(vars: &[(&str, &str)]) -> Config {
    Config::from_sources(
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        FileConfig::default(),
        Vec::new(),
    )
}

#[test]
fn server_settings_from_env_win_over_the_file() {
    let file = FileConfig {
        server: Some("http://file:4226/".into()),
        token: Some("file-token".into()),
        ..FileConfig::default()
    };
    let vars = [("CACHET_TOKEN".to_string(), "env-token".to_string())];
    let c = Config::from_sources(vars.into_iter(), file, Vec::new());
    let r = c.remote.unwrap();
    assert_eq!(r.url, "http://file:4226");
    assert_eq!(r.token.as_deref(), Some("env-token"));
    assert_eq!(r.namespace, "cachet");
    let c = cfg(&[("CACHET_SERVER", "cache:4226")]);
    assert!(c.remote.is_none());
    assert_eq!(c.warnings.len(), 1);
}

#[test]
fn extra_key_inputs_are_read_for_every_crate_or_one() {
    let c = cfg(&[
        ("CACHET_KEY_ENV", "DATABASE_URL, my-app:TEMPLATE_DIR,"),
        ("CACHET_KEY_FILES", ".sqlx/*.json,web:templates/**/*.html"),
    ]);
    let e = &c.extra_key;
    assert_eq!(e.env.len(), 2);
    assert!(e.env[0].applies_to("anything"));
    assert_eq!(e.env[1].krate.as_deref(), Some("my_app"));
    assert_eq!(e.env[1].value, "TEMPLATE_DIR");
    assert!(!e.env[1].applies_to("other"));
    assert_eq!(e.files[0].value, ".sqlx/*.json");
    assert_eq!(e.files[1].value, "templates/**/*.html");
    // The environment replaces the file's lists.
    let file = FileConfig {
        key_env: Some(vec!["FROM_FILE".into()]),
        ..FileConfig::default()
    };
    let c = Config::from_sources(std::iter::empty(), file, Vec::new());
    assert_eq!(c.extra_key.env[0].value, "FROM_FILE");
}

#[test]
fn edit_loop_settings_come_from_the_environment_or_the_file() {
    assert_eq!(cfg(&[]).edit_loop, Policy::default());
    let c = cfg(&[("CACHET_EDIT_STORE", "all"), ("CACHET_EDIT_PAUSE", "90s")]);
    assert_eq!(
        c.edit_loop,
        Policy {
            stored_in_a_row: u32::MAX,
            pause_ms: 90_000
        }
    );
    let file: FileConfig = toml::from_str("edit_store = 3\nedit_pause = \"1h\"\n").unwrap();
    let c = Config::from_sources(std::iter::empty(), file, Vec::new());
    assert_eq!(
        c.edit_loop,
        Policy {
            stored_in_a_row: 3,
            pause_ms: 3_600_000
        }
    );
    // The environment wins over the file.
    let file: FileConfig = toml::from_str("edit_store = \"all\"\n").unwrap();
    let vars = [("CACHET_EDIT_STORE".to_string(), "2".to_string())];
    let c = Config::from_sources(vars.into_iter(), file, Vec::new());
    assert_eq!(c.edit_loop.stored_in_a_row, 2);
    // Bad values: one warning each, and the defaults.
    let c = cfg(&[("CACHET_EDIT_STORE", "0"), ("CACHET_EDIT_PAUSE", "soon")]);
    assert_eq!(c.edit_loop, Policy::default());
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("CACHET_EDIT_STORE=\"0\""));
    let file: FileConfig = toml::from_str("edit_store = -1\n").unwrap();
    let c = Config::from_sources(std::iter::empty(), file, Vec::new());
    assert!(
        c.warnings[0].starts_with("edit_store=\"-1\""),
        "{:?}",
        c.warnings
    );
}

#[test]
fn reads_values_and_reports_bad_ones() {
    let c = cfg(&[
        ("CACHET_DIR", "/x"),
        ("CACHET_CACHE_SIZE", "2G"),
        ("CACHET_RECACHE", "1"),
    ]);
    assert_eq!(c.dir, PathBuf::from("/x"));
    assert_eq!(c.cache_size, 2 << 30);
    assert!(c.recache && !c.disable);
    assert!(c.warnings.is_empty());
    assert_eq!(c.log_file, PathBuf::from("/x/cachet.log"));

    let c = cfg(&[
        ("CACHET_CACHE_SIZE", "lots"),
        ("CACHET_DIRR", "/y"),
        ("CACHET_DISABLE", "maybe"),
    ]);
    assert_eq!(c.cache_size, DEFAULT_CACHE_SIZE);
    assert!(!c.disable);
    assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
    assert!(c.warnings.iter().any(|w| w.contains("CACHET_DIRR")));
}

#[test]
fn signing_keys_come_from_the_file_unless_the_environment_sets_them() {
    let a = crate::signing::SecretKey::generate("a")
        .unwrap()
        .public_text();
    let b = crate::signing::SecretKey::generate("b")
        .unwrap()
        .public_text();
    let file = || FileConfig {
        trusted_keys: Some(vec![a.clone()]),
        signing_key: Some(PathBuf::from("/etc/cachet/ci.key")),
        ..FileConfig::default()
    };
    let c = Config::from_sources(std::iter::empty(), file(), Vec::new());
    assert_eq!(c.trusted_keys.len(), 1);
    assert_eq!(c.trusted_keys[0].0, "a");
    assert_eq!(c.signing_key, Some(PathBuf::from("/etc/cachet/ci.key")));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let vars = [
        ("CACHET_TRUSTED_KEYS".to_string(), b),
        ("CACHET_SIGNING_KEY".to_string(), "/other.key".to_string()),
    ];
    let c = Config::from_sources(vars.into_iter(), file(), Vec::new());
    assert_eq!(c.trusted_keys[0].0, "b");
    assert_eq!(c.signing_key, Some(PathBuf::from("/other.key")));
    // An empty variable does not switch off the checking the file asks for.
    let vars = [("CACHET_TRUSTED_KEYS".to_string(), String::new())];
    let c = Config::from_sources(vars.into_iter(), file(), Vec::new());
    assert_eq!(c.trusted_keys[0].0, "a");
    // A relative key in the environment is refused, and the file's key is not used instead.
    let vars = [("CACHET_SIGNING_KEY".to_string(), "ci.key".to_string())];
    let c = Config::from_sources(vars.into_iter(), file(), Vec::new());
    assert_eq!(c.signing_key, None);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    // A list that cannot be read refuses everything, and says where it came from.
    let bad = FileConfig {
        trusted_keys: Some(vec!["nocolon".into()]),
        ..FileConfig::default()
    };
    let c = Config::from_sources(std::iter::empty(), bad, Vec::new());
    assert_eq!(c.trusted_keys.len(), 1);
    assert!(c.warnings[0].starts_with("trusted_keys in the config file"));
}

#[test]
fn a_config_file_reads_signing_keys_relative_to_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "trusted_keys = [\"ci-1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"]\nsigning_key = \"ci.key\"\n",
    )
    .unwrap();
    let mut warnings = Vec::new();
    let file = parse_file_config(&path, &mut warnings);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(file.signing_key, Some(dir.path().join("ci.key")));
    let c = Config::from_sources(std::iter::empty(), file, warnings);
    assert_eq!(c.trusted_keys[0], ("ci-1".to_string(), [0; 32]));
}

#[test]
fn relative_paths_are_refused_once_not_resolved_per_crate() {
    // What broke: CACHET_DIR=rel-cache created a cache inside every package rustc ran in.
    let c = cfg(&[("CACHET_DIR", "rel-cache"), ("CACHET_LOG_FILE", "x.log")]);
    assert_eq!(c.dir, default_dir());
    assert_eq!(c.log_file, default_dir().join("cachet.log"));
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("CACHET_DIR=\"rel-cache\" is a relative path"));
    let c = cfg(&[
        ("CACHET_SERVER", "http://127.0.0.1:1"),
        ("CACHET_CA_CERT", "ca.pem"),
    ]);
    assert!(c.remote.is_none());
    assert_eq!(c.warnings.len(), 1);
}
