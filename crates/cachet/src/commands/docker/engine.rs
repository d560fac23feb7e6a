//! Running the `docker` command line: the defaults every subcommand shares, `docker` calls whose
//! two common failures (no `docker` binary, no daemon) become messages that say what to do, and
//! `docker inspect` read into a [`ContainerState`].

use std::process::{Command, Output};

use anyhow::{bail, Context};

/// Default container name.
pub const DEFAULT_NAME: &str = "cachet";
/// Default image tag, the one `cachet docker build` makes.
pub const DEFAULT_IMAGE: &str = "cachet:local";
/// Port the server listens on inside the container.
pub const CONTAINER_PORT: u16 = 4226;
/// Label set on containers started by `cachet docker start`, with the mode as value.
pub const MODE_LABEL: &str = "io.cachet.mode";

/// A `docker` command with `args`.
pub fn docker_command(args: &[&str]) -> Command {
    let mut cmd = Command::new("docker");
    cmd.args(args);
    cmd
}

/// Runs `docker ARGS` and returns its output (whatever the exit status), after turning the two
/// failures every subcommand shares into clear errors: no `docker` binary, and no daemon.
pub fn docker_output(args: &[&str]) -> anyhow::Result<Output> {
    let out = match docker_command(args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "docker is not installed (no `docker` on PATH): install Docker Engine \
             (Debian: `apt-get install docker.io`) and run this again"
        ),
        Err(e) => return Err(e).context("failed to run `docker`"),
    };
    if !out.status.success() {
        check_daemon(&String::from_utf8_lossy(&out.stderr))?;
    }
    Ok(out)
}

/// Runs `docker ARGS` and fails with docker's own message when it fails.
pub fn docker_ok(args: &[&str]) -> anyhow::Result<String> {
    let out = docker_output(args)?;
    if !out.status.success() {
        bail!(
            "`docker {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fails with a clear message when docker's stderr says the daemon cannot be reached.
pub fn check_daemon(stderr: &str) -> anyhow::Result<()> {
    let down = [
        "Cannot connect to the Docker daemon",
        "Is the docker daemon running",
        "error during connect",
        "connect: no such file or directory",
        "connect: connection refused",
    ];
    if down.iter().any(|needle| stderr.contains(needle)) {
        let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "the default socket".into());
        bail!(
            "the Docker daemon is not reachable at {host}: start it (`sudo systemctl start docker`) \
             or fix DOCKER_HOST / the docker context\n  docker said: {}",
            stderr.trim()
        );
    }
    if stderr.contains("permission denied") && stderr.contains("docker.sock") {
        bail!(
            "permission denied on the Docker socket: add your user to the `docker` group \
             (`sudo usermod -aG docker $USER`, then log in again) or run with sudo"
        );
    }
    Ok(())
}

/// The state of a container as `docker inspect` reports it.
pub struct ContainerState {
    /// `running`, `exited`, `created`, `restarting`, ...
    pub status: String,
    /// `healthy`, `unhealthy`, `starting`, or empty without a health check.
    pub health: String,
    /// True when the kernel killed it for memory.
    pub oom_killed: bool,
    /// The host port `4226/tcp` is published on, if any.
    pub host_port: Option<(String, u16)>,
    /// The value of the mode label.
    pub mode: String,
    /// The host directory mounted at `/var/cachet`, for a persistent container.
    pub data_dir: Option<String>,
    /// The image the container runs.
    pub image: String,
}

/// Inspects the container `name`; `None` when there is no such container.
pub fn inspect(name: &str) -> anyhow::Result<Option<ContainerState>> {
    let out = docker_output(&["container", "inspect", name])?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No such") || err.contains("no such") {
            return Ok(None);
        }
        bail!("failed to inspect container {name}: {}", err.trim());
    }
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("failed to parse `docker inspect` output")?;
    let c = &json[0];
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let binding = &c["NetworkSettings"]["Ports"][format!("{CONTAINER_PORT}/tcp")][0];
    let host_port = binding["HostPort"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .map(|p| {
            let ip = s(&binding["HostIp"]);
            let ip = if ip.is_empty() || ip == "0.0.0.0" || ip == "::" {
                "127.0.0.1".to_string()
            } else {
                ip
            };
            (ip, p)
        });
    let data_dir = c["Mounts"].as_array().and_then(|mounts| {
        mounts
            .iter()
            .find(|m| m["Destination"] == "/var/cachet" && m["Type"] == "bind")
            .map(|m| s(&m["Source"]))
    });
    Ok(Some(ContainerState {
        status: s(&c["State"]["Status"]),
        health: s(&c["State"]["Health"]["Status"]),
        oom_killed: c["State"]["OOMKilled"].as_bool().unwrap_or(false),
        host_port,
        mode: s(&c["Config"]["Labels"][MODE_LABEL]),
        data_dir,
        image: s(&c["Config"]["Image"]),
    }))
}

/// The inspected state of `name`, or an error saying how to start it.
pub fn require_container(name: &str) -> anyhow::Result<ContainerState> {
    inspect(name)?.with_context(|| {
        format!("there is no container named {name}: start one with `cachet docker start --name {name}`")
    })
}

/// The `host:port` the server of `state` is reachable at from this host.
pub fn host_address(name: &str, state: &ContainerState) -> anyhow::Result<String> {
    let (ip, port) = state.host_port.as_ref().with_context(|| {
        format!(
            "container {name} does not publish port {CONTAINER_PORT} to the host: restart it with \
             `cachet docker start --port N`"
        )
    })?;
    Ok(format!("{ip}:{port}"))
}
