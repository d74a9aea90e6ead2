//! The platform calls a job needs, through nix's safe wrappers: signals,
//! waiting, the subreaper, and finding a job's descendants through /proc.

use super::*;

/// Sends `signal` to process `pid`; one already gone is not an error.
pub(super) fn kill(pid: u32, signal: i32) -> nix::Result<()> {
    send(Pid::from_raw(pid as i32), signal)
}

/// Sends `signal` to every process of group `group`.
pub(super) fn kill_group(group: u32, signal: i32) -> nix::Result<()> {
    send(Pid::from_raw(-(group as i32)), signal)
}

/// Whether process group `group` has members.
pub(super) fn group_exists(group: u32) -> bool {
    nix::sys::signal::kill(Pid::from_raw(-(group as i32)), None).is_ok()
}

fn send(target: Pid, signal: i32) -> nix::Result<()> {
    let signal = Signal::try_from(signal)?;
    match nix::sys::signal::kill(target, signal) {
        Err(nix::Error::ESRCH) => Ok(()),
        other => other,
    }
}

/// Makes this process the reaper of its orphaned descendants, so a job's
/// background children come back here to be reaped once its shell exits.
pub(super) fn become_subreaper() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let _ = nix::sys::prctl::set_child_subreaper(true);
    });
}

/// Waits for the child `pid` to end.
pub(super) fn wait(pid: Pid) -> nix::Result<ExitCause> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(ExitCause::Status(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                return Ok(ExitCause::Signal(signal as i32));
            }
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The live descendants of `root` (but `skip` and its own), and the
/// zombies among `root`'s children, among the processes started since
/// `since`: those with pids from `since` to the last pid handed out,
/// wrapping around past `pid_max`.
pub(super) fn descendants(root: u32, skip: Option<u32>, since: u32) -> (Vec<u32>, Vec<u32>) {
    let last: Option<u32> = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let recent = |pid: u32| match last {
        Some(last) if last >= since => (since..=last).contains(&pid),
        Some(last) => pid >= since || pid <= last,
        None => true,
    };
    // A short window (a quick job) is probed pid by pid, cheaper than
    // listing every process of the machine.
    let candidates: Vec<u32> = match last {
        Some(last) if last >= since && last - since < 512 => (since..=last).collect(),
        _ => match std::fs::read_dir("/proc") {
            Ok(entries) => entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|&pid| recent(pid))
                .collect(),
            Err(_) => return (Vec::new(), Vec::new()),
        },
    };
    // (pid, parent, zombie) of each recent process.
    let mut procs: Vec<(u32, u32, bool)> = candidates
        .into_iter()
        .filter(|&pid| Some(pid) != skip)
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
            let state = fields.next()?;
            let parent = fields.next()?.parse().ok()?;
            Some((pid, parent, state == "Z"))
        })
        .collect();
    let mut family = vec![root];
    let (mut live, mut zombies) = (Vec::new(), Vec::new());
    // Parents may have larger pids than their children (pids wrap), so
    // repeat until no process joins the family.
    loop {
        let before = family.len();
        procs.retain(|&(pid, parent, zombie)| {
            if !family.contains(&parent) {
                return true;
            }
            if zombie {
                if parent == root {
                    zombies.push(pid);
                }
            } else {
                live.push(pid);
                family.push(pid);
            }
            false
        });
        if family.len() == before {
            return (live, zombies);
        }
    }
}

/// Reaps the group's members that are this process's children until none
/// is left or `within` has passed; returns whether the group is gone.
pub(super) fn reap_group(group: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let members = Pid::from_raw(-(group as libc::pid_t));
    loop {
        while let Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) =
            waitpid(members, Some(WaitPidFlag::WNOHANG))
        {}
        if !os::group_exists(group) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(2));
    }
}
