//! What every storage peer shares: starting it with its log in a file, waiting until it says
//! it is ready, and killing it. A leaf below `redis` and `s3`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::Bind;
use crate::wait::log_tail;

pub(super) fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Starts `cmd` with its stdout and stderr in the file `log` (made anew) and waits until the
/// log contains `ready`. If the child exits first: [`Bind::Taken`] when its log contains one
/// of `taken` (the port was in use), else the test fails with the exit status and the log.
pub(super) fn start_logged(
    what: &str,
    mut cmd: Command,
    log: &Path,
    ready: impl Fn(&str) -> bool,
    taken: &[&str],
) -> Bind<Child> {
    let out =
        std::fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    let err = out.try_clone().expect("log file handle");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pause = Duration::from_millis(10);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if ready(&text) {
            return Bind::Bound(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if taken.iter().any(|t| text.contains(t)) {
                return Bind::Taken;
            }
            panic!(
                "{what} exited before it listened: {status}\n--- the end of its log ({})\n{}",
                log.display(),
                log_tail(log, 40)
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not say it listens within 60 s\n--- the end of its log ({})\n{}",
                log.display(),
                log_tail(log, 40)
            );
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
