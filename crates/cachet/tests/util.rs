//! Shared helpers: a scratch project per test, cargo run through cachet, and readers for the
//! journal and statistics the wrapper leaves in its cache directory.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cachet_wrapper::journal::{self, Outcome, Record};
use cachet_wrapper::stats::{self, Stats};

/// The cachet binary under test: the release build the suite prepares (`CACHET_TEST_BIN`), or
/// this crate's own build.
pub fn cachet_bin() -> PathBuf {
    std::env::var_os("CACHET_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cachet")))
}

/// Copies a directory tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() == "target" {
                continue;
            }
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The fixture directory `name` under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The pinned crates.io workload beside the project.
pub fn workload_service() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/workloads/service");
    assert!(
        p.join("Cargo.lock").is_file(),
        "the pinned workload is missing at {}: the suite runs beside ../shared",
        p.display()
    );
    p
}

/// A scratch copy of a project with its own cachet cache directory.
pub struct Project {
    /// Keeps the scratch directory alive.
    pub tmp: tempfile::TempDir,
    /// The project root.
    pub root: PathBuf,
    /// The cache directory used by the wrapper.
    pub cache: PathBuf,
}

impl Project {
    /// Copies `source` into a new scratch directory.
    pub fn copy_of(source: &Path) -> Project {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("project");
        copy_tree(source, &root);
        let cache = tmp.path().join("cache");
        Project { tmp, root, cache }
    }

    /// A cargo command in the project with a clean, predictable environment.
    pub fn cargo_command(&self, args: &[&str]) -> Command {
        self.command_for("cargo", args)
    }

    /// `program` (cargo, or a cargo subcommand's binary) in the project with the environment
    /// of [`Project::cargo_command`].
    pub fn command_for(&self, program: impl AsRef<OsStr>, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args).current_dir(&self.root);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("CACHET_")
                || k.starts_with("CARGO_BUILD_")
                || k.starts_with("CARGO_PROFILE_")
                || matches!(
                    k.as_str(),
                    "RUSTFLAGS"
                        | "CARGO_ENCODED_RUSTFLAGS"
                        | "CARGO_TARGET_DIR"
                        | "RUSTC_WRAPPER"
                        | "RUSTC"
                        | "CARGO_INCREMENTAL"
                )
            {
                cmd.env_remove(&k);
            }
        }
        cmd.env("CARGO_INCREMENTAL", "0")
            .env("CARGO_TERM_COLOR", "never");
        cmd
    }

    /// Runs cargo through cachet; panics with the output if it fails.
    pub fn cachet_cargo(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.cargo_command(args);
        cmd.env("RUSTC_WRAPPER", cachet_bin())
            .env("CACHET_DIR", &self.cache);
        cmd.envs(env.iter().map(|(k, v)| (*k, *v)));
        run_ok(cmd)
    }

    /// Runs cargo without cachet, into `target-plain`.
    pub fn plain_cargo(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.cargo_command(args);
        cmd.env("CARGO_TARGET_DIR", self.root.join("target-plain"));
        cmd.envs(env.iter().map(|(k, v)| (*k, *v)));
        run_ok(cmd)
    }

    /// Runs a `cachet` subcommand against this project's cache.
    pub fn cachet(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(cachet_bin());
        cmd.args(args).env("CACHET_DIR", &self.cache);
        cmd.output().unwrap()
    }

    /// Runs the built program `target/<profile>/<name>` and returns its stdout.
    pub fn run_program(&self, target: &str, profile: &str, name: &str) -> String {
        let exe = self.root.join(target).join(profile).join(name);
        let out = Command::new(&exe)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
        assert!(
            out.status.success(),
            "{} failed: {}",
            exe.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `cargo clean`, then `cargo build` through cachet; returns the journal records of the build.
    pub fn rebuild_after_clean(&self, env: &[(&str, &str)]) -> Vec<Record> {
        self.cachet_cargo(&["clean"], env);
        let before = self.journal().len();
        self.cachet_cargo(&["build"], env);
        self.journal().split_off(before)
    }

    /// The journal records written so far.
    pub fn journal(&self) -> Vec<Record> {
        journal::read(&self.cache)
    }

    /// The statistics so far.
    pub fn stats(&self) -> Stats {
        stats::read(&self.cache)
    }
}

/// The real rustc of the active toolchain (not the rustup proxy), for shims to call.
pub fn real_rustc() -> PathBuf {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .unwrap();
    Path::new(String::from_utf8(out.stdout).unwrap().trim()).join("bin/rustc")
}

/// Writes an executable script (a rustc shim, usually) and returns its path.
pub fn write_script(path: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_path_buf()
}

/// Runs a command and panics with its output unless it succeeds.
pub fn run_ok(mut cmd: Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The outcomes recorded for `krate` among `records`.
pub fn outcomes_for(records: &[Record], krate: &str) -> Vec<Outcome> {
    records
        .iter()
        .filter(|r| r.krate.as_deref() == Some(krate))
        .map(|r| r.outcome)
        .collect()
}

/// The crates of the `soundness` fixture cachet caches: two libraries, a proc-macro, a build
/// script and the program.
pub const FIXTURE_CRATES: [&str; 5] = [
    "core_lib",
    "dep_lib",
    "fixture_macros",
    "build_script_build",
    "app",
];

/// Records of calls that were looked up in the cache (hits and misses).
pub fn cacheable(records: &[Record]) -> Vec<&Record> {
    records.iter().filter(|r| r.pre_key.is_some()).collect()
}

/// Text of a command's stderr.
pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// True when `p` exists as a file.
pub fn is_file(p: impl AsRef<OsStr>) -> bool {
    Path::new(p.as_ref()).is_file()
}

/// A real `cachet server` process on a loopback port, killed when dropped.
pub struct ServerProcess {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT` (or https).
    pub url: String,
    /// The port.
    pub port: u16,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl ServerProcess {
    /// Starts `cachet server --listen 127.0.0.1:0 ARGS...`, reads the port it bound from its
    /// `--port-file` (no port is handed to it), and waits until it accepts connections.
    pub fn start(args: &[&str]) -> ServerProcess {
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("port");
        let mut child = Command::new(cachet_bin())
            .args(["server", "--listen", "127.0.0.1:0", "--port-file"])
            .arg(&port_file)
            .args(args)
            .env_remove("CACHET_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let port: u16 = loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("cachet server {args:?} exited before listening: {status}");
            }
            match std::fs::read_to_string(&port_file) {
                Ok(text) if text.ends_with('\n') => break text.trim().parse().unwrap(),
                _ => {}
            }
            assert!(
                std::time::Instant::now() < deadline,
                "cachet server {args:?} wrote no port file within 60 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let https = args.contains(&"--tls-cert");
        let scheme = if https { "https" } else { "http" };
        let server = ServerProcess {
            child,
            url: format!("{scheme}://127.0.0.1:{port}"),
            port,
            args: args.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
        };
        server.wait_listening();
        server
    }

    /// Starts on a given port.
    pub fn start_on(port: u16, args: &[&str]) -> ServerProcess {
        Self::start_env(port, args, &[])
    }

    /// Starts on a given port with extra environment variables (S3 credentials).
    pub fn start_env(port: u16, args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let https = args.iter().any(|a| a == "--tls-cert");
        let scheme = if https { "https" } else { "http" };
        let child = Command::new(cachet_bin())
            .arg("server")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(&args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env_remove("CACHET_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let server = ServerProcess {
            child,
            url: format!("{scheme}://127.0.0.1:{port}"),
            port,
            args,
            env,
        };
        server.wait_listening();
        server
    }

    fn wait_listening(&self) {
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!(
            "cachet server did not start listening on port {} within 5 s",
            self.port
        );
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the same server again on the same port.
    pub fn restart(mut self) -> ServerProcess {
        self.kill();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        ServerProcess::start_env(self.port, &args, &env)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
