//! The real `cachet server` as a child process, for the tests that need the binary (a build
//! through the wrapper, a signal, a crash, a restart on the same port).
//!
//! The server binds `127.0.0.1:0` and writes the port it got to `--port-file`, so no port is
//! handed to it. Its stderr always goes to a log file (the caller's, or one in a scratch
//! directory): a server that exits before it answers fails the start at once with its exit
//! status and the end of that log, and a test that panics while holding the server prints the
//! log's end too, so a failure shows what the server said.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::binary::cachet_bin;
use crate::wait::{log_tail, wait_for};

/// How long a server may take to start (a debug build on a loaded machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a server may take to exit once told to.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start a server: arguments, environment and where its log goes.
#[derive(Clone, Debug, Default)]
pub struct ServerBuilder {
    prefix: Vec<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    unset: Vec<String>,
    log: Option<PathBuf>,
}

fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl ServerBuilder {
    /// Sets the environment variable `key` for the server.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets each of `vars` for the server.
    pub fn envs(mut self, vars: &[(&str, &str)]) -> Self {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    /// Removes the inherited variables `vars`.
    pub fn unset(mut self, vars: &[&str]) -> Self {
        self.unset.extend(owned(vars));
        self
    }

    /// Writes the server's log (stderr; at `warn` unless the environment sets `CACHET_LOG`)
    /// to `path`, for a test that reads it.
    pub fn log(mut self, path: &Path) -> Self {
        self.log = Some(path.to_path_buf());
        self
    }

    /// Starts the server through `prefix` (e.g. `prlimit --nofile=256:256`).
    pub fn prefix(mut self, prefix: &[&str]) -> Self {
        self.prefix = owned(prefix);
        self
    }

    /// Starts the server on a port of the system's choosing and waits until it answers.
    pub fn start(self) -> ServerProcess {
        let dir = tempfile::tempdir().expect("the server's scratch directory");
        let log = self
            .log
            .clone()
            .unwrap_or_else(|| dir.path().join("server.log"));
        std::fs::File::create(&log).expect("create the server's log file");
        ServerProcess::launch(self, dir, log, 0)
    }

    fn tls(&self) -> bool {
        self.args.iter().any(|a| a == "--tls-cert")
    }
}

/// A running `cachet server` process, killed when dropped.
pub struct ServerProcess {
    /// The process (a test may signal it or wait for it).
    pub child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: SocketAddr,
    /// The port it bound.
    pub port: u16,
    base: String,
    log: PathBuf,
    spec: ServerBuilder,
    /// Holds the port file and, unless the caller chose one, the log.
    dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `cachet server ARGS...` (see [`ServerBuilder::start`]).
    pub fn start(args: &[&str]) -> ServerProcess {
        Self::builder(args).start()
    }

    /// A server with `args`, to add environment or a log file to before starting it.
    pub fn builder(args: &[&str]) -> ServerBuilder {
        ServerBuilder {
            args: owned(args),
            ..ServerBuilder::default()
        }
    }

    /// `http://127.0.0.1:PORT` (`https` when started with `--tls-cert`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The URL of `path` (which starts with `/`) on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the signal `name` (`TERM`, `HUP`) with `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} {}: {status}", self.pid());
    }

    /// Waits for the server to exit (`why`: what made it) and returns its exit status.
    pub fn wait_exit(&mut self, why: &str) -> ExitStatus {
        let mut exit = None;
        wait_for(&format!("the server to exit {why}"), EXIT_TIMEOUT, || {
            exit = self.child.try_wait().expect("wait");
            exit.is_some()
        });
        exit.expect("exited")
    }

    /// `kill -9`, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server and starts it again with the same arguments on the same port (the
    /// clients under test keep its URL). The port was this server's own a moment ago; if
    /// another process took it meanwhile, the restart fails saying so.
    pub fn restart(mut self) -> ServerProcess {
        self.kill();
        let spec = std::mem::take(&mut self.spec);
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        let log = self.log.clone();
        let port = self.port;
        drop(self);
        ServerProcess::launch(spec, dir, log, port)
    }

    fn launch(spec: ServerBuilder, dir: tempfile::TempDir, log: PathBuf, port: u16) -> Self {
        let port_file = dir.path().join("port");
        let _ = std::fs::remove_file(&port_file);
        let mut cmd = match spec.prefix.as_slice() {
            [] => Command::new(cachet_bin()),
            [program, rest @ ..] => {
                let mut c = Command::new(program);
                c.args(rest).arg(cachet_bin());
                c
            }
        };
        cmd.arg("server")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--port-file")
            .arg(&port_file)
            .args(&spec.args)
            .env_remove("CACHET_CONFIG");
        for var in &spec.unset {
            cmd.env_remove(var);
        }
        let stderr = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log)
            .expect("open the server's log file");
        let child = cmd
            .env(
                "CACHET_LOG",
                std::env::var("CACHET_TEST_SERVER_LOG").unwrap_or("warn".into()),
            )
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", cachet_bin().display()));
        let scheme = if spec.tls() { "https" } else { "http" };
        let mut server = ServerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            port,
            base: String::new(),
            log,
            spec,
            dir,
        };
        server.wait_alive("write its port file", |_| {
            std::fs::read_to_string(&port_file).is_ok_and(|t| t.ends_with('\n'))
        });
        let bound: u16 = std::fs::read_to_string(&port_file)
            .expect("port file")
            .trim()
            .parse()
            .expect("a port number in the port file");
        assert!(
            port == 0 || bound == port,
            "cachet server restarted on port {bound}, not its port {port}"
        );
        server.port = bound;
        server.addr = SocketAddr::from(([127, 0, 0, 1], bound));
        server.base = format!("{scheme}://127.0.0.1:{bound}");
        let (addr, tls) = (server.addr, server.spec.tls());
        server.wait_alive("answer /healthz", |_| {
            if tls {
                // Plain HTTP gets no answer from a TLS port: being able to connect is enough.
                TcpStream::connect(addr).is_ok()
            } else {
                healthz(addr)
            }
        });
        server
    }

    /// Waits for `cond`, failing at once with the exit status and the log if the server exits.
    fn wait_alive(&mut self, what: &str, mut cond: impl FnMut(&Self) -> bool) {
        let args = self.spec.args.clone();
        wait_for(
            &format!("cachet server {args:?} to {what}"),
            START_TIMEOUT,
            || {
                if let Ok(Some(status)) = self.child.try_wait() {
                    panic!(
                        "cachet server {args:?} exited before it could {what}: {status}\n\
                         --- the end of its log ({})\n{}",
                        self.log.display(),
                        log_tail(&self.log, 40)
                    );
                }
                cond(self)
            },
        );
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- the end of the cachet server's log ({})\n{}",
                self.log.display(),
                log_tail(&self.log, 40)
            );
        }
    }
}

/// True when `GET /healthz` on `addr` answers 200.
fn healthz(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).split_whitespace().nth(1) == Some("200")
}

/// Starts `cachet server ARGS...` on a port of its choosing and waits for /healthz.
pub fn spawn_server(args: &[&str]) -> ServerProcess {
    ServerProcess::start(args)
}

/// [`spawn_server`] with extra environment variables.
pub fn spawn_server_env(args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
    ServerProcess::builder(args).envs(env).start()
}

/// [`spawn_server_env`] without the inherited variables `unset`, and with the server's log
/// (stderr, at `warn` unless `env` sets `CACHET_LOG`) written to the file `log`.
pub fn spawn_server_logged(
    args: &[&str],
    env: &[(&str, &str)],
    unset: &[&str],
    log: &Path,
) -> ServerProcess {
    ServerProcess::builder(args)
        .envs(env)
        .unset(unset)
        .log(log)
        .start()
}

/// [`spawn_server_logged`] started through `prefix` (e.g. `prlimit --nofile=256:256`).
pub fn spawn_server_under(prefix: &[&str], args: &[&str], log: &Path) -> ServerProcess {
    ServerProcess::builder(args).prefix(prefix).log(log).start()
}
