//! Printing to stdout that ends quietly when the reader goes away.
//!
//! Rust ignores SIGPIPE, so `println!` panics when stdout is a closed pipe (`cachet stats |
//! head` exited 101 with a panic message). Like ripgrep, the commands write with [`outln!`] /
//! [`out!`], which return the write error instead; [`crate::cli::run`] treats a broken pipe as
//! the end of the command (exit 0, nothing on stderr), since the reader has all it asked for.

/// `println!` that returns the `io::Error` (use with `?` in a command).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// `print!` that returns the `io::Error` (use with `?` in a command).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        write!(stdout, $($arg)*).and_then(|()| stdout.flush())
    }};
}

/// True when `err` (or one of its causes) is a write to a closed pipe.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
