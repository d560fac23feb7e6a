//! `cachet setup`: the one-time setup that sends a user's cargo builds through cachet, Rust
//! and the C, C++ and assembly their build scripts compile.
//!
//! It writes cargo's own configuration (`$CARGO_HOME/config.toml`, or `--config FILE`):
//! `build.rustc-wrapper`, and in `[env]` the variables the `cc` crate reads to find a C
//! compiler wrapper. cc accepts a wrapper in `CC` only when its name is in its list of known
//! wrappers, which `CC_KNOWN_WRAPPER_CUSTOM=cachet` extends; and it reads the compiler per
//! target first (`CC_<target>` before `HOST_CC`/`TARGET_CC` and `CC`). So the setup names the
//! compiler per target: the host's `cc`/`c++`, and for every installed rustup target the
//! cross compiler cc itself would pick (`x86_64-linux-musl-gcc` or `musl-gcc`,
//! `aarch64-linux-gnu-gcc`, ...) when it is on `PATH`. A target without one is left alone, so
//! cc keeps choosing its compiler as before: a cross build never gets the host's compiler.
//! Cargo's `[env]` never overrides a variable set in the environment. `--off` removes exactly
//! what the setup wrote; the rest of the file, comments included, is kept.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::Context;
use toml_edit::{DocumentMut, Item, Table};

/// Arguments of `cachet setup`.
#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    /// The cargo configuration file to edit (default: $CARGO_HOME/config.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Remove what `cachet setup` wrote, turning cachet off for cargo.
    #[arg(long)]
    pub off: bool,
    /// Print the settings instead of writing them.
    #[arg(long)]
    pub print: bool,
}

/// The variable the `cc` crate reads for a target (`-` and `.` become `_`).
fn target_var(var: &str, target: &str) -> String {
    format!("{var}_{}", target.replace(['-', '.'], "_"))
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
}

/// The cross compilers the `cc` crate would use for `target` (`<prefix>-gcc`, `<prefix>-g++`)
/// when its C compiler is on `PATH`.
fn cross_compilers(target: &str) -> Option<(String, Option<String>)> {
    let parts: Vec<&str> = target.split('-').collect();
    let (arch, os, env) = match parts.as_slice() {
        [arch, _vendor, os, env] => (*arch, *os, *env),
        _ => return None,
    };
    if os != "linux" {
        return None;
    }
    let arch = match arch {
        a if a.starts_with("armv7") || a == "arm" => "arm",
        "riscv64gc" => "riscv64",
        "riscv32gc" => "riscv32",
        "i586" | "i686" if env.starts_with("musl") => "musl",
        a => a,
    };
    let mut prefixes = vec![if arch == "musl" {
        "musl".to_string()
    } else {
        format!("{arch}-linux-{env}")
    }];
    if env.starts_with("musl") && arch == "x86_64" {
        prefixes.push("musl".into());
    }
    prefixes.into_iter().find_map(|p| {
        let cc = format!("{p}-gcc");
        on_path(&cc).then(|| {
            let cxx = format!("{p}-g++");
            let cxx = on_path(&cxx).then_some(cxx);
            (cc, cxx)
        })
    })
}

fn rustc_host() -> anyhow::Result<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .arg("-vV")
        .output()
        .with_context(|| format!("failed to run `{rustc} -vV`"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .context("`rustc -vV` printed no host line")
}

fn installed_targets() -> Vec<String> {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// How to call cachet from cargo: `cachet` when that is this binary on `PATH`, else its path.
fn cachet_command() -> String {
    let me = std::env::current_exe().ok();
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("cachet"))
            .find(|p| p.is_file())
    });
    let canon = |p: &Path| std::fs::canonicalize(p).ok();
    match (me, found) {
        (Some(me), Some(f)) if canon(&me) == canon(&f) => "cachet".into(),
        (Some(me), _) if !me.to_string_lossy().contains(char::is_whitespace) => {
            me.to_string_lossy().into_owned()
        }
        _ => "cachet".into(),
    }
}

/// The `[env]` entries and the wrapper, for this machine.
fn settings() -> anyhow::Result<(String, Vec<(String, String)>)> {
    let cachet = cachet_command();
    let host = rustc_host()?;
    let mut env = vec![("CC_KNOWN_WRAPPER_CUSTOM".to_string(), "cachet".to_string())];
    env.push((target_var("CC", &host), format!("{cachet} cc")));
    env.push((target_var("CXX", &host), format!("{cachet} c++")));
    for target in installed_targets() {
        if target == host {
            continue;
        }
        if let Some((cc, cxx)) = cross_compilers(&target) {
            env.push((target_var("CC", &target), format!("{cachet} {cc}")));
            if let Some(cxx) = cxx {
                env.push((target_var("CXX", &target), format!("{cachet} {cxx}")));
            }
        }
    }
    Ok((cachet, env))
}

fn default_config() -> anyhow::Result<PathBuf> {
    let home = match std::env::var_os("CARGO_HOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => dirs_home()?.join(".cargo"),
    };
    Ok(home.join("config.toml"))
}

fn dirs_home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("HOME is not set: pass --config FILE")
}

/// True when `value` is a command line whose first word is cachet.
fn is_cachet_value(value: &str) -> bool {
    let first = value.split_whitespace().next().unwrap_or("");
    Path::new(first).file_stem().is_some_and(|s| s == "cachet")
}

/// Runs `cachet setup`.
pub fn run(args: &SetupArgs) -> anyhow::Result<ExitCode> {
    let (cachet, env) = settings()?;
    if args.print {
        outln!("[build]\nrustc-wrapper = {cachet:?}\n\n[env]")?;
        for (k, v) in &env {
            outln!("{k} = {v:?}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let path = match &args.config {
        Some(p) => p.clone(),
        None => default_config()?,
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", path.display())),
    };
    let mut doc: DocumentMut = text
        .parse()
        .with_context(|| format!("{} is not valid TOML; fix it first", path.display()))?;
    // What an earlier setup wrote goes first, so targets removed since do not linger.
    remove_ours(&mut doc);
    if !args.off {
        let build = doc
            .entry("build")
            .or_insert(Item::Table(Table::new()))
            .as_table_mut()
            .context("`build` in the cargo configuration is not a table")?;
        if let Some(existing) = build.get("rustc-wrapper").and_then(|v| v.as_str()) {
            anyhow::ensure!(
                is_cachet_value(existing),
                "{} already sets build.rustc-wrapper = {existing:?}: remove it first",
                path.display()
            );
        }
        build["rustc-wrapper"] = toml_edit::value(cachet);
        let env_table = doc
            .entry("env")
            .or_insert(Item::Table(Table::new()))
            .as_table_mut()
            .context("`env` in the cargo configuration is not a table")?;
        for (k, v) in &env {
            if env_table.contains_key(k) {
                eprintln!("cachet setup: keeping your own {k} in {}", path.display());
                continue;
            }
            env_table[k.as_str()] = toml_edit::value(v.clone());
        }
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create {}", parent.display()))?;
    }
    std::fs::write(&path, doc.to_string())
        .with_context(|| format!("failed to write {}", path.display()))?;
    if args.off {
        outln!(
            "cachet is off for cargo builds ({} updated)",
            path.display()
        )?;
    } else {
        outln!(
            "cargo builds now go through cachet, Rust and C/C++/assembly ({} updated; \
             `cachet setup --off` undoes it)",
            path.display()
        )?;
        for (k, v) in &env {
            outln!("  {k} = {v}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes the wrapper and the `[env]` entries a setup wrote (values that call cachet).
fn remove_ours(doc: &mut DocumentMut) {
    if let Some(build) = doc.get_mut("build").and_then(|b| b.as_table_mut()) {
        if build
            .get("rustc-wrapper")
            .and_then(|v| v.as_str())
            .is_some_and(is_cachet_value)
        {
            build.remove("rustc-wrapper");
        }
    }
    if let Some(env) = doc.get_mut("env").and_then(|e| e.as_table_mut()) {
        let ours: Vec<String> = env
            .iter()
            .filter(|(k, v)| {
                let value = v.as_str().unwrap_or("");
                (*k == "CC_KNOWN_WRAPPER_CUSTOM" && value == "cachet")
                    || ((k.starts_with("CC_") || k.starts_with("CXX_")) && is_cachet_value(value))
            })
            .map(|(k, _)| k.to_string())
            .collect();
        for k in ours {
            env.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_variables_use_underscores() {
        assert_eq!(
            target_var("CC", "x86_64-unknown-linux-musl"),
            "CC_x86_64_unknown_linux_musl"
        );
        assert_eq!(
            target_var("CC", "thumbv8m.main-none-eabi"),
            "CC_thumbv8m_main_none_eabi"
        );
    }

    #[test]
    fn off_removes_only_what_setup_wrote() {
        let mut doc: DocumentMut = "# mine\n[build]\nrustc-wrapper = \"/opt/cachet\"\njobs = 4\n\n[env]\nCC_KNOWN_WRAPPER_CUSTOM = \"cachet\"\nCC_x86_64_unknown_linux_gnu = \"cachet cc\"\nFOO = \"bar\"\nCC_aarch64_unknown_linux_gnu = \"clang\"\n"
            .parse()
            .unwrap();
        remove_ours(&mut doc);
        let text = doc.to_string();
        assert!(text.contains("# mine") && text.contains("jobs = 4") && text.contains("FOO"));
        assert!(text.contains("CC_aarch64_unknown_linux_gnu = \"clang\""));
        assert!(!text.contains("cachet"));
    }
}
