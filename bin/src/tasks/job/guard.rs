//! The job guard: one small shell process per worker that stops the
//! running job's process group, and the job's escapees, if the worker dies.

use super::*;

/// Reads `GROUP TOKEN` lines; on end of input stops the last group and
/// every process whose environment holds the last token (the job's
/// escapees, handed to PID 1 with the worker's death).
const SCRIPT: &str = include_str!("guard.sh");

/// Jobs started by this worker so far, for their tokens.
static JOBS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A token no other job of this machine carries now: the worker's pid
/// and its job count, ended by `.` so that no token is a prefix of another.
pub(super) fn next_token() -> String {
    let n = JOBS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}.", std::process::id())
}

/// The guard's pid, if it runs.
pub(super) fn pid() -> Option<u32> {
    GUARD
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(std::process::Child::id)
}

static PIPE: Mutex<Option<ChildStdin>> = Mutex::new(None);
/// The guard itself, reaped when the worker exits normally.
static GUARD: Mutex<Option<std::process::Child>> = Mutex::new(None);

/// Starts this worker's guard unless it runs.
pub(super) fn start(grace: Duration) {
    let mut pipe = PIPE.lock().unwrap_or_else(|e| e.into_inner());
    if pipe.is_none() {
        *pipe = spawn(grace);
        if pipe.is_some() {
            procpool::at_exit(stop);
        }
    }
}

/// On a normal exit of the worker: closes the pipe (the guard, told no
/// group, exits at once) and reaps the guard, so it is not left to a
/// PID 1 that may never reap it.
fn stop() {
    PIPE.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(mut guard) = GUARD.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = guard.wait();
    }
}

/// Tells the guard which group runs now (0: none), and its job's token.
pub(super) fn watch(group: u32, token: &str) {
    let mut pipe = PIPE.lock().unwrap_or_else(|e| e.into_inner());
    let written = pipe
        .as_mut()
        .map(|p| writeln!(p, "{group} {token}").and_then(|()| p.flush()));
    if let Some(Err(_)) = written {
        // The guard is gone (it cannot be restarted mid-job); the job still
        // ends with its timeout and the group clean-up after its shell.
        *pipe = None;
    }
}

fn spawn(grace: Duration) -> Option<ChildStdin> {
    let steps = grace.as_millis().div_ceil(50).max(1);
    // In a process group of its own, inheriting the worker's ignored
    // SIGINT and ignoring SIGTERM and SIGHUP itself, it outlives whatever
    // signal kills the worker or the worker's whole group.
    Command::new("/bin/sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("procpool-job-guard")
        .arg(steps.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .ok()
        .and_then(|mut child| {
            let stdin = child.stdin.take();
            *GUARD.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
            stdin
        })
}
