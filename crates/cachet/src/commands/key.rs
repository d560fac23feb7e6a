//! `cachet key`: the ed25519 keys that sign entries (see `cachet_wrapper::signing`).
//!
//! `generate` makes a writer's key: the secret goes to a file readable by its owner only (give
//! its path to trusted writers as `CACHET_SIGNING_KEY`), the public key is printed (give it to
//! clients as `CACHET_TRUSTED_KEYS`). `public` prints the public key of a key file again.
//! `rotate` makes the next key and prints the `CACHET_TRUSTED_KEYS` value that trusts both
//! the old and the new key: deploy that to clients, switch writers to the new key, and once
//! the cache holds the new key's entries, trust the new key alone.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use cachet_wrapper::signing::SecretKey;
use clap::{Args, Subcommand};

/// `cachet key ...`.
#[derive(Subcommand)]
pub enum KeyCommand {
    /// Make a new signing key: write the secret to FILE and print the public key.
    Generate(GenerateArgs),
    /// Print the public key of a secret key file.
    Public {
        /// The secret key file.
        file: PathBuf,
    },
    /// Make the next key after OLD: write it to FILE and print the trusted-keys value for
    /// the changeover (old and new).
    Rotate(RotateArgs),
}

/// `cachet key generate`.
#[derive(Args)]
pub struct GenerateArgs {
    /// The key's name, shown beside the public key (e.g. `ci-main-1`).
    #[arg(long)]
    name: String,
    /// Where the secret key is written (refused if it exists).
    #[arg(long)]
    out: PathBuf,
}

/// `cachet key rotate`.
#[derive(Args)]
pub struct RotateArgs {
    /// The current secret key file.
    #[arg(long)]
    old: PathBuf,
    /// The new key's name (e.g. `ci-main-2`).
    #[arg(long)]
    name: String,
    /// Where the new secret key is written (refused if it exists).
    #[arg(long)]
    out: PathBuf,
}

fn write_secret(key: &SecretKey, out: &Path) -> anyhow::Result<()> {
    let mut f = std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("failed to create {}", out.display()))?;
    writeln!(f, "{}", key.secret_text())
        .with_context(|| format!("failed to write {}", out.display()))
}

fn new_key(name: &str, out: &Path) -> anyhow::Result<SecretKey> {
    let key = SecretKey::generate(name).context("failed to read random bytes")?;
    // Parsing the name back refuses one that cannot be written in a key list.
    SecretKey::parse(&key.secret_text())
        .context("failed to name the key: use letters, digits, `.`, `_`, `-`")?;
    write_secret(&key, out)?;
    Ok(key)
}

/// Runs `cachet key ...`.
pub fn run(cmd: KeyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeyCommand::Generate(args) => {
            let key = new_key(&args.name, &args.out)?;
            eprintln!(
                "secret key written to {} (set CACHET_SIGNING_KEY to its path on trusted writers)",
                args.out.display()
            );
            outln!("{}", key.public_text())?;
        }
        KeyCommand::Public { file } => {
            let key = SecretKey::load(&file)?;
            outln!("{}", key.public_text())?;
        }
        KeyCommand::Rotate(args) => {
            let old = SecretKey::load(&args.old)?;
            let key = new_key(&args.name, &args.out)?;
            eprintln!(
                "new secret key written to {}; during the changeover clients trust both:",
                args.out.display()
            );
            outln!("{},{}", old.public_text(), key.public_text())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
