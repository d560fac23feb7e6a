//! `cachet docker start`: runs the server container and waits until Docker reports it healthy.
//!
//! Everything that commonly goes wrong is checked before `docker run`, so the message can say
//! what to do: the image is missing (build it), the name is taken, the host port is taken, a
//! persistent data directory is not writable by the container's uid 1000.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::{
    docker_ok, docker_output, inspect, CONTAINER_PORT, DEFAULT_IMAGE, DEFAULT_NAME, MODE_LABEL,
};

/// The uid:gid the server runs as inside the image.
const CONTAINER_UID: u32 = 1000;

/// Where the store lives.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// An anonymous volume, removed with the container by `cachet docker stop`.
    Ephemeral,
    /// A host directory (`--data-dir`), kept across stops and restarts.
    Persistent,
}

/// Arguments of `cachet docker start`.
#[derive(clap::Args)]
pub struct StartArgs {
    /// Where the store lives.
    #[arg(long, value_enum, default_value = "ephemeral")]
    pub mode: Mode,
    /// Host port to publish the server on.
    #[arg(long, default_value_t = CONTAINER_PORT)]
    pub port: u16,
    /// Host address to publish on (`0.0.0.0` for other machines; mind `--token-file`).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Host directory of the store in persistent mode.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Token file (see docs/server.md), mounted read-only.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Container name.
    #[arg(long, default_value = DEFAULT_NAME)]
    pub name: String,
    /// Image to run.
    #[arg(long, default_value = DEFAULT_IMAGE)]
    pub image: String,
    /// Also attach the container to this Docker network, reachable there as `cachet`.
    #[arg(long)]
    pub network: Option<String>,
    /// Memory limit of the container (`docker run --memory`), e.g. `512m`.
    #[arg(long)]
    pub memory: Option<String>,
    /// Store size limit (`CACHET_MAX_SIZE`), e.g. `20G`.
    #[arg(long)]
    pub max_size: Option<String>,
    /// How long to wait for the container to turn healthy.
    #[arg(long, default_value = "60s")]
    pub wait: humantime::Duration,
}

/// Starts the container.
pub fn run(args: &StartArgs) -> anyhow::Result<ExitCode> {
    preflight(args)?;
    let mut run: Vec<String> = [
        "run",
        "--detach",
        "--name",
        &args.name,
        "--restart",
        "unless-stopped",
        "--label",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mode = match args.mode {
        Mode::Ephemeral => "ephemeral",
        Mode::Persistent => "persistent",
    };
    run.push(format!("{MODE_LABEL}={mode}"));
    run.push("--publish".into());
    run.push(format!("{}:{}:{CONTAINER_PORT}", args.bind, args.port));
    if let Some(mem) = &args.memory {
        run.extend(["--memory".into(), mem.clone()]);
    }
    if let Some(max) = &args.max_size {
        run.extend(["--env".into(), format!("CACHET_MAX_SIZE={max}")]);
    }
    if args.mode == Mode::Persistent {
        let dir = args.data_dir.as_ref().context("unreachable: checked")?;
        let dir = std::fs::canonicalize(dir)?;
        run.extend(["--volume".into(), format!("{}:/var/cachet", dir.display())]);
    }
    if let Some(file) = &args.token_file {
        let file = std::fs::canonicalize(file)
            .with_context(|| format!("failed to read token file {}", file.display()))?;
        run.extend([
            "--volume".into(),
            format!("{}:/etc/cachet/tokens:ro", file.display()),
            "--env".into(),
            "CACHET_TOKEN_FILE=/etc/cachet/tokens".into(),
        ]);
    }
    run.push(args.image.clone());
    let argv: Vec<&str> = run.iter().map(String::as_str).collect();
    eprintln!(
        "starting container {} from {} ({mode})",
        args.name, args.image
    );
    let out = docker_output(&argv)?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // The container may exist half-started: remove it so a retry is clean.
        let _ = docker_output(&["rm", "--force", &args.name]);
        if err.contains("port is already allocated") || err.contains("address already in use") {
            bail!(
                "port {} is already in use on the host: stop what uses it or choose another with --port",
                args.port
            );
        }
        bail!("`docker run` failed: {}", err.trim());
    }
    if let Some(net) = &args.network {
        docker_ok(&["network", "connect", "--alias", "cachet", net, &args.name])?;
    }
    wait_healthy(&args.name, args.wait.into())?;
    outln!(
        "cachet server {} is healthy at http://{}:{} (mode {mode})",
        args.name,
        args.bind,
        args.port
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Checks what `docker run` would fail on, with messages that say what to do.
fn preflight(args: &StartArgs) -> anyhow::Result<()> {
    let image = docker_output(&["image", "inspect", "--format", "{{.Id}}", &args.image])?;
    if !image.status.success() {
        bail!(
            "image {} is not present: build it with `cachet docker build --tag {}` \
             (no registry needed)",
            args.image,
            args.image
        );
    }
    if let Some(state) = inspect(&args.name)? {
        bail!(
            "the name {} is already in use by a container ({}): stop it with \
             `cachet docker stop --name {}` or choose another --name",
            args.name,
            state.status,
            args.name
        );
    }
    if std::net::TcpListener::bind((args.bind.as_str(), args.port)).is_err() {
        bail!(
            "port {} is already in use on {}: stop what uses it or choose another with --port",
            args.port,
            args.bind
        );
    }
    match (args.mode, &args.data_dir) {
        (Mode::Persistent, None) => {
            bail!("--mode persistent needs --data-dir DIR (a host directory for the store)")
        }
        (Mode::Persistent, Some(dir)) => check_data_dir(dir)?,
        (Mode::Ephemeral, Some(_)) => {
            bail!("--data-dir only applies to --mode persistent: add `--mode persistent`")
        }
        (Mode::Ephemeral, None) => {}
    }
    Ok(())
}

/// Makes sure uid 1000 can write `dir`; creates it (owned by 1000:1000) when missing.
fn check_data_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create data directory {}", dir.display()))?;
        // Only root can give it away; otherwise it is ours, and ours may be 1000.
        let _ = std::os::unix::fs::chown(dir, Some(CONTAINER_UID), Some(CONTAINER_UID));
    }
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("failed to read data directory {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("data directory {} is not a directory", dir.display());
    }
    let mode = meta.mode();
    let writable = (meta.uid() == CONTAINER_UID && mode & 0o300 == 0o300)
        || (meta.gid() == CONTAINER_UID && mode & 0o030 == 0o030)
        || mode & 0o003 == 0o003;
    if !writable {
        bail!(
            "data directory {} is not writable by uid {CONTAINER_UID} (the server's user in the \
             container; it is owned by uid {} with mode {:o}): run `sudo chown -R 1000:1000 {}`",
            dir.display(),
            meta.uid(),
            mode & 0o7777,
            dir.display()
        );
    }
    Ok(())
}

/// Polls Docker's health status until `healthy`, printing progress; fails on `unhealthy`, an
/// exited container, or the timeout.
pub fn wait_healthy(name: &str, timeout: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        let state = inspect(name)?
            .with_context(|| format!("container {name} disappeared while starting"))?;
        if state.health == "healthy" {
            return Ok(());
        }
        if state.status == "exited" || state.status == "dead" || state.health == "unhealthy" {
            let logs = docker_output(&["logs", "--tail", "20", name])
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .unwrap_or_default();
            bail!(
                "container {name} is {} ({}); its last log lines:\n{}\nsee `cachet docker logs --name {name}`",
                state.status,
                if state.health.is_empty() { "no health" } else { &state.health },
                logs.trim_end()
            );
        }
        let now = format!("{}/{}", state.status, state.health);
        if now != last {
            eprintln!(
                "  waiting for {name}: {now} ({:.1}s)",
                start.elapsed().as_secs_f64()
            );
            last = now;
        }
        if start.elapsed() > timeout {
            bail!(
                "container {name} did not turn healthy within {}s (state {last}): see \
                 `cachet docker logs --name {name}`",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
