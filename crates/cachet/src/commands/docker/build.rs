//! `cachet docker build`: makes the server image from this checkout on a machine without a
//! registry. Step 1 builds static musl `cachet` and `cachet-server` binaries with cargo on the
//! host (or takes `--binary`); step 2 generates a build context (the two binaries,
//! `docker/Dockerfile.local`, an empty `var/cachet/`) and runs `docker build`, whose Dockerfile
//! starts `FROM scratch`, so nothing is ever pulled.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context};

use super::{check_daemon, DEFAULT_IMAGE};

/// The Rust target of the static binary.
const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";

/// Arguments of `cachet docker build`.
#[derive(clap::Args)]
pub struct BuildArgs {
    /// Tag of the image.
    #[arg(long, short, default_value = DEFAULT_IMAGE)]
    pub tag: String,
    /// The cachet checkout to build (default: found upwards from the current directory).
    #[arg(long)]
    pub source: Option<PathBuf>,
    /// Use this static `cachet` binary, and the `cachet-server` beside it, instead of building
    /// them with cargo.
    #[arg(long)]
    pub binary: Option<PathBuf>,
}

/// Builds the image.
pub fn run(args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let source = match &args.source {
        Some(s) => s.clone(),
        None => find_checkout()?,
    };
    let dockerfile = source.join("docker/Dockerfile.local");
    if !dockerfile.is_file() {
        bail!(
            "{} is not a cachet checkout (no docker/Dockerfile.local): pass --source DIR",
            source.display()
        );
    }
    let binary = match &args.binary {
        Some(b) => b.clone(),
        None => build_static_binary(&source)?,
    };
    let server = binary.with_file_name("cachet-server");
    eprintln!("[2/2] docker build -t {} (FROM scratch, no pull)", args.tag);
    let context = tempfile_dir()?;
    let result = (|| {
        for (from, name) in [(&binary, "cachet"), (&server, "cachet-server")] {
            std::fs::copy(from, context.join(name))
                .with_context(|| format!("failed to copy {}", from.display()))?;
        }
        std::fs::copy(&dockerfile, context.join("Dockerfile"))?;
        std::fs::create_dir_all(context.join("var/cachet"))?;
        let status = Command::new("docker")
            .args(["build", "--tag", &args.tag, "."])
            .current_dir(&context)
            // The classic builder: it needs no buildx plugin and never pulls for `FROM scratch`.
            .env("DOCKER_BUILDKIT", "0")
            .stderr(std::process::Stdio::piped())
            .spawn();
        let child = match status {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "docker is not installed (no `docker` on PATH): install Docker Engine and run this again"
            ),
            Err(e) => return Err(e).context("failed to run `docker build`"),
        };
        let out = child.wait_with_output()?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            check_daemon(&err)?;
            bail!("`docker build` failed: {}", err.trim());
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&context);
    result?;
    let size = super::docker_ok(&["image", "inspect", "--format", "{{.Size}}", &args.tag])?;
    let mib = size.trim().parse::<f64>().unwrap_or(0.0) / (1024.0 * 1024.0);
    outln!("built image {} ({mib:.1} MiB)", args.tag)?;
    Ok(ExitCode::SUCCESS)
}

/// The checkout: the first ancestor of the current directory with `docker/Dockerfile.local`,
/// else the one this binary was built from.
fn find_checkout() -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir()?;
    for dir in cwd.ancestors() {
        if dir.join("docker/Dockerfile.local").is_file() {
            return Ok(dir.to_path_buf());
        }
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if built_from.join("docker/Dockerfile.local").is_file() {
        return Ok(built_from);
    }
    bail!(
        "no cachet checkout above {}: run this inside one or pass --source DIR",
        cwd.display()
    )
}

/// Builds `cachet` and `cachet-server` for the musl target with cargo, showing cargo's
/// progress, and returns the path of `cachet` (`cachet-server` is beside it).
fn build_static_binary(source: &Path) -> anyhow::Result<PathBuf> {
    eprintln!("[1/2] cargo build --release --target {MUSL_TARGET} -p cachet");
    let mut cmd = Command::new("cargo");
    cmd.args([
        "build",
        "--release",
        "--locked",
        "--target",
        MUSL_TARGET,
        "-p",
        "cachet",
    ])
    .current_dir(source);
    // C dependencies (zstd, blake3, ring) need a musl C compiler.
    if std::env::var_os("CC_x86_64_unknown_linux_musl").is_none() && which("musl-gcc") {
        cmd.env("CC_x86_64_unknown_linux_musl", "musl-gcc");
    }
    let status = cmd
        .status()
        .context("failed to run cargo: is the Rust toolchain installed?")?;
    if !status.success() {
        bail!(
            "cargo could not build the static binary: add the target \
             (`rustup target add {MUSL_TARGET}`) and a musl C compiler (`apt-get install musl-tools`)"
        );
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| source.join("target"));
    let target_dir = if target_dir.is_relative() {
        source.join(target_dir)
    } else {
        target_dir
    };
    Ok(target_dir.join(MUSL_TARGET).join("release/cachet"))
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false)
}

/// A fresh scratch directory for the build context.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("cachet-docker-build-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    Ok(dir)
}
