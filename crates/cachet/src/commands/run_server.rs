//! `cachet server ARGS`: runs `cachet-server ARGS` in this process's place. Why the server is
//! an executable of its own is said in `server.rs`; its arguments have been checked by then,
//! with the same declarations `cachet-server` parses them with.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::bail;

/// The server's executable.
const SERVER_BINARY: &str = "cachet-server";

/// Replaces this process with the server, given the words after `server` on the command line.
pub fn run() -> anyhow::Result<ExitCode> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let Some(position) = argv.iter().position(|a| a == "server") else {
        bail!("run the server as `cachet server [OPTIONS]` or `{SERVER_BINARY} [OPTIONS]`");
    };
    let program = server_binary(std::env::current_exe().ok().as_deref());
    let err = Command::new(&program)
        .arg0(SERVER_BINARY)
        .args(&argv[position + 1..])
        .exec();
    bail!(
        "cannot run {}: {err}. It is installed beside `cachet` (`cargo install --path \
         crates/cachet` installs both); put it there or on PATH",
        program.display()
    )
}

/// `cachet-server` beside this executable, else the one on `PATH`.
fn server_binary(this: Option<&Path>) -> PathBuf {
    this.map(|exe| exe.with_file_name(SERVER_BINARY))
        .filter(|beside| beside.is_file())
        .unwrap_or_else(|| PathBuf::from(SERVER_BINARY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_beside_this_binary_comes_before_path() {
        let dir = tempfile::tempdir().unwrap();
        let cachet = dir.path().join("cachet");
        assert_eq!(server_binary(Some(&cachet)), PathBuf::from(SERVER_BINARY));
        std::fs::write(dir.path().join(SERVER_BINARY), "").unwrap();
        assert_eq!(server_binary(Some(&cachet)), dir.path().join(SERVER_BINARY));
        assert_eq!(server_binary(None), PathBuf::from(SERVER_BINARY));
    }
}
