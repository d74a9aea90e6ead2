//! Ending a job: its group and its escapees stopped (SIGTERM, the grace
//! period, SIGKILL), and the watchdog that does it on a timeout.

use super::*;

/// Stops what a job's shell left running in its group, and reaps it.
pub(super) fn end_group(group: u32, grace: Duration) {
    if os::reap_group(group, Duration::ZERO) {
        return;
    }
    let _ = os::kill_group(group, libc::SIGTERM);
    let _ = os::kill_group(group, libc::SIGCONT);
    if !os::reap_group(group, grace) {
        let _ = os::kill_group(group, libc::SIGKILL);
        os::reap_group(group, Duration::from_secs(1));
    }
}

/// Stops every descendant of this worker but the guard, once a job's shell
/// and group are gone: what the job left behind in another group or session
/// (`setsid`), handed to this subreaper when its parent exited. SIGTERM and
/// SIGCONT, the grace period, then SIGKILL to whatever is left or new.
/// Only processes started since the job's shell (`since`) are looked at.
pub(super) fn end_escapees(since: u32, grace: Duration) {
    let me = std::process::id();
    let deadline = Instant::now() + grace;
    let mut termed = std::collections::HashSet::new();
    loop {
        let (left, zombies) = os::descendants(me, guard::pid(), since);
        for pid in zombies {
            let _ = waitpid(
                Pid::from_raw(pid as libc::pid_t),
                Some(WaitPidFlag::WNOHANG),
            );
        }
        if left.is_empty() {
            return;
        }
        let now = Instant::now();
        for &pid in &left {
            if now >= deadline {
                let _ = os::kill(pid, libc::SIGKILL);
            } else if termed.insert(pid) {
                let _ = os::kill(pid, libc::SIGTERM);
                let _ = os::kill(pid, libc::SIGCONT);
            }
        }
        if now >= deadline + Duration::from_secs(1) {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Stops a process group when its timeout expires, from its own thread, so
/// the worker can block in `wait` meanwhile.
pub(super) struct Watchdog {
    cancel: mpsc::Sender<()>,
    thread: thread::JoinHandle<bool>,
}

impl Watchdog {
    pub(super) fn start(group: u32, timeout: Duration, grace: Duration) -> io::Result<Self> {
        let (cancel, cancelled) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("procpool-job-timeout".into())
            .spawn(move || {
                if cancelled.recv_timeout(timeout) != Err(mpsc::RecvTimeoutError::Timeout) {
                    return false;
                }
                let _ = os::kill_group(group, libc::SIGTERM);
                let _ = os::kill_group(group, libc::SIGCONT);
                if cancelled.recv_timeout(grace) == Err(mpsc::RecvTimeoutError::Timeout) {
                    let _ = os::kill_group(group, libc::SIGKILL);
                }
                true
            })?;
        Ok(Watchdog { cancel, thread })
    }

    /// Called once the shell has exited; returns whether the timeout fired.
    pub(super) fn stop(self) -> bool {
        drop(self.cancel);
        self.thread.join().unwrap_or(false)
    }
}
