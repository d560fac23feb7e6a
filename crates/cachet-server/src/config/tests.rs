use std::path::Path;

use super::*;

#[test]
fn default_config_file_parses() {
    let parsed: Result<Settings, _> = toml::from_str(DEFAULT_CONFIG_TOML);
    assert!(parsed.is_ok(), "{parsed:?}");
}

#[test]
fn flags_override_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "max_size = \"1G\"\nstorage = \"ephemeral\"\nlisten = \"127.0.0.1:1\"\n\
         max_connections = 100\nprotect_stats = true\ntoken_file = \"tokens.txt\"\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("tokens.txt"), "t0ken-for-test read *\n").expect("tokens");
    let args = ServerArgs {
        config: Some(path),
        settings: Settings {
            listen: Some("127.0.0.1:2".into()),
            ..Settings::default()
        },
        ..ServerArgs::default()
    };
    let c = Config::resolve(&args).expect("valid");
    assert_eq!(c.listen.port(), 2);
    assert_eq!(c.max_size, 1 << 30);
    assert_eq!(c.storage, StorageSpec::Ephemeral);
    assert_eq!(c.max_object_size, 1 << 30);
    // TOML numbers and booleans, and a token file relative to the config file.
    assert_eq!(c.max_connections, Some(100));
    assert!(c.protect_stats);
    assert_eq!(c.tokens.len(), 1);
}

#[test]
fn bad_values_name_the_setting() {
    let with = |settings: Settings| ServerArgs {
        settings,
        ..ServerArgs::default()
    };
    let cases = [
        with(Settings {
            max_size: Some("ten".into()),
            ..Settings::default()
        }),
        with(Settings {
            storage: Some("s3:x".into()),
            ..Settings::default()
        }),
        with(Settings {
            max_age: Some("soon".into()),
            storage: Some("ephemeral".into()),
            ..Settings::default()
        }),
        with(Settings {
            max_size: Some("1M".into()),
            max_object_size: Some("2M".into()),
            storage: Some("ephemeral".into()),
            ..Settings::default()
        }),
    ];
    for args in cases {
        let err = Config::resolve(&args).expect_err("invalid").to_string();
        assert!(err.starts_with("invalid --"), "{err}");
    }
}

#[test]
fn unknown_file_fields_are_rejected() {
    assert!(toml::from_str::<Settings>("max_sise = \"1G\"").is_err());
    assert!(toml::from_str::<Settings>("max_connections = [1]").is_err());
}

/// The defaults are valid, `with_storage` is what a server started with nothing but a storage
/// runs with, and a smaller `--max-size` lowers the default object limit.
#[test]
fn the_defaults_are_one_configuration() {
    let given = |settings: Settings| {
        Config::resolve(&ServerArgs {
            settings: Settings {
                storage: Some("ephemeral".into()),
                ..settings
            },
            ..ServerArgs::default()
        })
        .expect("valid")
    };
    let resolved = given(Settings::default());
    let built = Config::with_storage(StorageSpec::Ephemeral);
    assert_eq!(format!("{resolved:?}"), format!("{built:?}"));
    assert_eq!(built.max_size, 10 << 30);
    assert_eq!(built.upload_memory, 128 << 20);
    let small = given(Settings {
        max_size: Some("100M".into()),
        ..Settings::default()
    });
    assert_eq!(small.max_object_size, 100 << 20);
}

/// Every fixed default is written the same in the commented default file, in docs/server.md's
/// table and, where `cachet --help` names one, in the list of variables.
#[test]
fn the_docs_say_the_defaults() {
    let docs_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/server.md");
    let docs = std::fs::read_to_string(&docs_path).expect("docs/server.md");
    for (flag, key, default) in DEFAULTS.table() {
        let quoted = format!("# {key} = \"{default}\"\n");
        let bare = format!("# {key} = {default}\n");
        assert!(
            DEFAULT_CONFIG_TOML.contains(&quoted) || DEFAULT_CONFIG_TOML.contains(&bare),
            "default-config.toml does not say {key} = {default}"
        );
        let row = docs
            .lines()
            .find(|l| l.starts_with(&format!("| `{flag} ")))
            .unwrap_or_else(|| panic!("no row for {flag} in docs/server.md"));
        assert!(
            row.contains(&format!("| `{default}` ")),
            "docs/server.md does not give {default} as the default of {flag}: {row}"
        );
        let var = format!("CACHET_{}", key.to_uppercase());
        let (_, help) = cachet_core::env_vars::ALL
            .iter()
            .find(|(name, _)| *name == var)
            .unwrap_or_else(|| panic!("{var} is not in cachet_core::env_vars::ALL"));
        // A value in parentheses that starts with a digit is the default the help names.
        if let Some(named) = help
            .rsplit_once('(')
            .map(|(_, rest)| rest.trim_end_matches(')').trim_start_matches("default "))
            .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        {
            assert_eq!(named, default, "`cachet --help` says {var}: {help}");
        }
    }
}
