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
    let Some(args) = server_args(&argv) else {
        bail!("run the server as `cachet server [OPTIONS]` or `{SERVER_BINARY} [OPTIONS]`");
    };
    let program = server_binary(std::env::current_exe().ok().as_deref());
    let err = Command::new(&program).arg0(SERVER_BINARY).args(args).exec();
    bail!(
        "cannot run {}: {err}. It is installed beside `cachet` (`cargo install --path \
         crates/cachet` installs both); put it there or on PATH",
        program.display()
    )
}

/// The words after the `server` subcommand, looked for after the program's own name (which may
/// itself be `server`, e.g. a link of that name).
fn server_args(argv: &[OsString]) -> Option<&[OsString]> {
    let position = argv.iter().skip(1).position(|a| a == "server")? + 1;
    Some(&argv[position + 1..])
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
    fn the_arguments_are_the_words_after_the_subcommand_not_after_the_program_name() {
        let argv = |words: &[&str]| words.iter().map(OsString::from).collect::<Vec<_>>();
        let words = argv(&["server", "server", "--dir", "server"]);
        assert_eq!(server_args(&words), Some(&words[2..]));
        let words = argv(&["/usr/bin/cachet", "server"]);
        assert_eq!(server_args(&words), Some(&words[2..]));
        assert_eq!(server_args(&argv(&["server", "stats"])), None);
    }

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
