//! Running rustc on a miss, passing its output through as it arrives while recording it.
//!
//! Output is forwarded chunk by chunk, not at exit: cargo starts dependent crates as soon as
//! it reads the `.rmeta` artifact notification (pipelining), which rustc prints long before it
//! finishes code generation. stderr is forwarded line by line with the path remapping taken
//! back out of file names (see `messages.rs`), and recorded as rustc wrote it.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::time::Instant;

use crate::messages::{LineRewriter, Unmap};

/// A finished rustc run.
pub struct Compiled {
    /// How rustc exited.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
    /// Wall time in milliseconds.
    pub millis: u64,
}

fn pump(mut from: impl Read, mut to: impl Write, unmap: Option<&Unmap>) -> io::Result<Vec<u8>> {
    let mut recorded = Vec::new();
    let mut lines = unmap.map(LineRewriter::new);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        recorded.extend_from_slice(&buf[..n]);
        let shown = match &mut lines {
            Some(lines) => std::borrow::Cow::Owned(lines.push(&buf[..n])),
            None => std::borrow::Cow::Borrowed(&buf[..n]),
        };
        // If cargo stopped reading, keep draining rustc so it is not blocked.
        if !shown.is_empty() {
            let _ = to.write_all(&shown).and_then(|()| to.flush());
        }
    }
    if let Some(lines) = &mut lines {
        let _ = to.write_all(&lines.finish()).and_then(|()| to.flush());
    }
    Ok(recorded)
}

/// Runs `rustc args` in the current directory, streaming and recording its output; file names
/// in what is shown of stderr are mapped back with `unmap`.
pub fn run(rustc: &Path, args: &[OsString], unmap: &Unmap) -> io::Result<Compiled> {
    start(rustc, args, unmap)?.finish()
}

/// A rustc run that has started: its stdout is already being forwarded on a thread; stderr is
/// forwarded by [`Running::finish`], which the caller calls once it has started whatever it
/// does alongside (work started before the spawn would compete with it for the CPU).
pub struct Running<'a> {
    child: Child,
    stderr: ChildStderr,
    stdout_pump: std::thread::JoinHandle<io::Result<Vec<u8>>>,
    unmap: &'a Unmap,
    started: Instant,
}

/// Starts `rustc args` in the current directory (see [`run`]).
pub fn start<'a>(rustc: &Path, args: &[OsString], unmap: &'a Unmap) -> io::Result<Running<'a>> {
    let started = Instant::now();
    let mut child = Command::new(rustc)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout pipe"))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| io::Error::other("no stderr pipe"))?;
    let stdout_pump = std::thread::spawn(move || pump(stdout, io::stdout(), None));
    Ok(Running {
        child,
        stderr,
        stdout_pump,
        unmap,
        started,
    })
}

impl Running<'_> {
    /// Forwards stderr until rustc closes it, then waits for rustc to exit.
    pub fn finish(mut self) -> io::Result<Compiled> {
        let err_result = pump(self.stderr, io::stderr(), Some(self.unmap));
        let out_result = self
            .stdout_pump
            .join()
            .map_err(|_| io::Error::other("stdout reader panicked"))?;
        let status = self.child.wait()?;
        Ok(Compiled {
            status,
            stdout: out_result?,
            stderr: err_result?,
            millis: self.started.elapsed().as_millis() as u64,
        })
    }
}
