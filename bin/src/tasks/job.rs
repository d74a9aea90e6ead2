//! The `job` task: runs one line of a job file with `sh -c` inside a worker.
//!
//! Each job gets stdin from `/dev/null`, its stdout and stderr in its own
//! files, a process group of its own, and SIGINT, SIGHUP, SIGQUIT and SIGPIPE
//! back at their defaults (the worker ignores them). When its shell exits,
//! whatever it left running in its group is stopped (SIGTERM, the grace
//! period, SIGKILL), as Slurm ends a job step, so background children can
//! neither hang the runner nor outlive their job. A timeout stops the whole group the same way and
//! the worker lives on.
//!
//! The shell is started with `posix_spawn` (through nix), which the C library
//! does with `vfork`: no copy of the worker's memory, a fraction of `fork`'s
//! cost per job. That rules out a parent-death signal, which only `fork` and a
//! `pre_exec` hook could set; a guard process covers the same case, better: one
//! small process per worker is told each running job's group and stops the
//! whole group (not only the shell) when the worker's end of its pipe closes,
//! however the worker died. The worker is also a child subreaper, so a job's
//! orphaned descendants are reaped here even where PID 1 does not reap.
//!
//! A job's process may leave its group and session (`setsid sleep 300 &`).
//! Such an escapee is still this subreaper's descendant while the worker
//! lives, so when the job ends every descendant of the worker but the guard
//! is stopped too (found through `/proc`). Each job also carries a token in
//! its environment, `PROCPOOL_JOB_TOKEN`, by which the guard finds escapees
//! after the worker died and they were handed to PID 1. Only a process that
//! both leaves the session and clears its environment (`setsid env -i ...`)
//! escapes a worker killed outright; no escapee outlives a job that ends.

use std::ffi::{CStr, CString};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawn};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use procpool::ExitCause;
use procpool::{Failure, Task};

/// `Exit_Code` of a job that could not be started (its log files cannot be
/// opened, or `/bin/sh` cannot be run), as GNU `timeout` uses 126.
pub const CANNOT_START: i32 = 126;

/// The environment variable that tells a job its `Job_ID`.
pub const JOB_ID_VAR: &str = "PROCPOOL_JOB_ID";

/// The environment variable that marks every process of a running job, so
/// that the job guard finds those that left the job's process group.
pub const JOB_TOKEN_VAR: &str = "PROCPOOL_JOB_TOKEN";

/// Runs one command with `sh -c` in its own process group, output in log
/// files, background children stopped when it ends, an optional timeout.
///
/// ```
/// use procpool::Task;
/// use procpool_cli::tasks::{JobSpec, ShellJob};
/// let logs = tempfile::tempdir().unwrap();
/// let spec = JobSpec::new(7, "echo hi; exit 3", logs.path());
/// let report = ShellJob::run(spec).unwrap();
/// assert_eq!(report.exit_code, 3);
/// assert_eq!(std::fs::read_to_string(logs.path().join("7.out")).unwrap(), "hi\n");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ShellJob;

/// What [`ShellJob`] runs, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The job's `Job_ID`; it names its log files `<id>.out` and `<id>.err`.
    pub id: u64,
    /// The command for `sh -c`.
    pub command: String,
    /// The directory of the log files, which must exist; `None` discards
    /// the job's output.
    pub logs: Option<PathBuf>,
    /// Stop the job's process group after this long.
    pub timeout: Option<Duration>,
    /// Between SIGTERM and SIGKILL when a process group is stopped.
    pub grace: Duration,
    /// Run a job that exits non-zero up to this many more times.
    pub retries: u32,
    /// An abstract Unix socket name (Linux) told this job's `id` as the job
    /// starts, so that the runner knows which jobs were running when it was
    /// interrupted; best effort.
    #[serde(default)]
    pub started: Option<String>,
}

impl JobSpec {
    /// A job with no timeout, no retries and a grace period of one second.
    pub fn new(id: u64, command: impl Into<String>, logs: impl Into<PathBuf>) -> Self {
        JobSpec {
            id,
            command: command.into(),
            logs: Some(logs.into()),
            timeout: None,
            grace: Duration::from_secs(1),
            retries: 0,
            started: None,
        }
    }
}

/// Tells the runner listening on the abstract socket `name` that job `id`
/// starts; never blocks, and a lost message only makes its count inexact.
fn tell_started(name: &str, id: u64) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Ok(addr) = SocketAddr::from_abstract_name(name.as_bytes()) else {
        return;
    };
    if let Ok(socket) = UnixDatagram::unbound() {
        let _ = socket.set_nonblocking(true);
        let _ = socket.send_to_addr(id.to_string().as_bytes(), &addr);
    }
}

/// How a job went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobReport {
    /// The shell's exit status, 128 + N if signal N killed it, or
    /// [`CANNOT_START`].
    pub exit_code: i32,
    /// The host it ran on.
    pub hostname: String,
    /// When the first attempt started.
    pub started: SystemTime,
    /// When the last attempt ended.
    pub ended: SystemTime,
    /// From start to end, by the monotonic clock.
    pub elapsed: Duration,
    /// How many times it ran.
    pub attempts: u32,
    /// Whether the last attempt was stopped by the timeout.
    pub timed_out: bool,
    /// Why it could not be started, when it could not.
    pub error: Option<String>,
}

impl Task for ShellJob {
    const NAME: &'static str = "job";
    type Input = JobSpec;
    type Output = JobReport;

    fn run(spec: JobSpec) -> Result<JobReport, Failure> {
        if let Some(name) = &spec.started {
            tell_started(name, spec.id);
        }
        let started = SystemTime::now();
        let clock = Instant::now();
        let mut attempts = 0;
        let mut previous = None;
        let (exit_code, timed_out, error) = loop {
            attempts += 1;
            match run_once(&spec, attempts, previous) {
                Err(error) => break (CANNOT_START, false, Some(error)),
                Ok((code, _)) if code != 0 && attempts <= spec.retries => previous = Some(code),
                Ok((code, timed_out)) => break (code, timed_out, None),
            }
        };
        Ok(JobReport {
            exit_code,
            hostname: hostname().to_string(),
            started,
            ended: SystemTime::now(),
            elapsed: clock.elapsed(),
            attempts,
            timed_out,
            error,
        })
    }
}

/// This machine's name, as `uname -n` gives it.
pub fn hostname() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "localhost".to_string())
    })
}

/// The path of a job's log file: `<logs>/<id>.<stream>`.
pub fn log_path(logs: &Path, id: u64, stream: &str) -> PathBuf {
    logs.join(format!("{id}.{stream}"))
}

/// Runs one attempt; returns the shell-style exit code and whether the
/// timeout stopped it, or why it could not start.
fn run_once(spec: &JobSpec, attempt: u32, previous: Option<i32>) -> Result<(i32, bool), String> {
    let logs = match &spec.logs {
        Some(dir) => Some((
            open_log(dir, spec.id, "out", attempt)?,
            open_log(dir, spec.id, "err", attempt)?,
        )),
        None => None,
    };
    if let (Some((_, err)), Some(code)) = (&logs, previous) {
        // Later attempts append, so the output of every attempt is kept.
        let _ = writeln!(
            &*err,
            "procpool: attempt {attempt} of {} (the last exited with {code})",
            spec.retries + 1
        );
    }
    os::become_subreaper();
    // The guard is running before the job starts, and told its group at once.
    guard::start(spec.grace);
    let token = guard::next_token();
    let pid = spawn_shell(spec, &token, logs.as_ref().map(|(out, err)| (out, err)))?;
    let group = pid.as_raw() as u32;
    guard::watch(group, &token);
    drop(logs);
    let watchdog = match spec.timeout.map(|t| Watchdog::start(group, t, spec.grace)) {
        Some(Err(e)) => {
            let _ = os::kill_group(group, libc::SIGKILL);
            let _ = os::wait(pid);
            end_group(group, spec.grace);
            end_escapees(group, spec.grace);
            guard::watch(0, "");
            return Err(format!("cannot start the timeout's thread: {e}"));
        }
        Some(Ok(w)) => Some(w),
        None => None,
    };
    let ended = os::wait(pid);
    let timed_out = watchdog.is_some_and(Watchdog::stop);
    end_group(group, spec.grace);
    end_escapees(group, spec.grace);
    guard::watch(0, "");
    let cause = ended.map_err(|e| format!("cannot wait for /bin/sh: {e}"))?;
    Ok((cause.shell_code(), timed_out))
}

/// Starts `/bin/sh -c COMMAND` in a new process group with stdin from
/// `/dev/null`, the given stdout and stderr (else `/dev/null`), an empty
/// signal mask, SIGINT, SIGHUP, SIGQUIT and SIGPIPE at their defaults, and `PROCPOOL_JOB_ID`
/// and `PROCPOOL_JOB_TOKEN` in its environment.
fn spawn_shell(spec: &JobSpec, token: &str, logs: Option<(&File, &File)>) -> Result<Pid, String> {
    let command = CString::new(spec.command.as_str())
        .map_err(|_| "the command holds a NUL byte".to_string())?;
    let fail = |e: nix::Error| format!("cannot run /bin/sh: {}", e.desc());
    let null = dev_null().map_err(|e| format!("cannot open /dev/null: {e}"))?;
    let (out, err) = logs.unwrap_or((null, null));
    let mut actions = PosixSpawnFileActions::init().map_err(fail)?;
    actions.add_dup2(null.as_raw_fd(), 0).map_err(fail)?;
    actions.add_dup2(out.as_raw_fd(), 1).map_err(fail)?;
    actions.add_dup2(err.as_raw_fd(), 2).map_err(fail)?;
    let mut attr = PosixSpawnAttr::init().map_err(fail)?;
    attr.set_flags(
        PosixSpawnFlags::POSIX_SPAWN_SETPGROUP
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK,
    )
    .map_err(fail)?;
    attr.set_pgroup(Pid::from_raw(0)).map_err(fail)?;
    // Only what procpool itself ignores: a job keeps what its user ignored
    // (under nohup, SIGHUP stays ignored).
    let mut defaults = SigSet::empty();
    // The worker ignores the terminal's signals; a job gets them back.
    for signal in [
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGPIPE,
    ] {
        defaults.add(signal);
    }
    attr.set_sigdefault(&defaults).map_err(fail)?;
    attr.set_sigmask(&SigSet::empty()).map_err(fail)?;
    let job_id = CString::new(format!("{JOB_ID_VAR}={}", spec.id)).expect("no NUL in a number");
    let token = CString::new(format!("{JOB_TOKEN_VAR}={token}")).expect("no NUL in a token");
    let mut env: Vec<&CStr> = base_environment().iter().map(CString::as_c_str).collect();
    env.push(&job_id);
    env.push(&token);
    let args = [c"/bin/sh", c"-c", command.as_c_str()];
    posix_spawn(c"/bin/sh", &actions, &attr, &args, &env).map_err(fail)
}

/// `/dev/null` for reading and writing, opened once per worker.
fn dev_null() -> io::Result<&'static File> {
    static NULL: OnceLock<File> = OnceLock::new();
    if let Some(file) = NULL.get() {
        return Ok(file);
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    Ok(NULL.get_or_init(|| file))
}

/// The worker's environment as `NAME=value` strings, without `PROCPOOL_JOB_ID`.
fn base_environment() -> &'static [CString] {
    static ENV: OnceLock<Vec<CString>> = OnceLock::new();
    ENV.get_or_init(|| {
        std::env::vars_os()
            .filter(|(name, _)| name != JOB_ID_VAR && name != JOB_TOKEN_VAR)
            .filter_map(|(name, value)| {
                let mut entry = name.as_bytes().to_vec();
                entry.push(b'=');
                entry.extend_from_slice(value.as_bytes());
                CString::new(entry).ok()
            })
            .collect()
    })
}

fn open_log(dir: &Path, id: u64, stream: &str, attempt: u32) -> Result<File, String> {
    let path = log_path(dir, id, stream);
    let mut options = OpenOptions::new();
    if attempt == 1 {
        options.write(true).create(true).truncate(true);
    } else {
        options.append(true).create(true);
    }
    options
        .open(&path)
        .map_err(|e| format!("cannot open log file {}: {e}", path.display()))
}

/// Stops what a job's shell left running in its group, and reaps it.
fn end_group(group: u32, grace: Duration) {
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
fn end_escapees(since: u32, grace: Duration) {
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
struct Watchdog {
    cancel: mpsc::Sender<()>,
    thread: thread::JoinHandle<bool>,
}

impl Watchdog {
    fn start(group: u32, timeout: Duration, grace: Duration) -> io::Result<Self> {
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
    fn stop(self) -> bool {
        drop(self.cancel);
        self.thread.join().unwrap_or(false)
    }
}

/// One process per worker that stops the running job's group if the worker
/// dies. It reads group ids, one a line (`0` between jobs), and when the
/// pipe closes stops the last one: SIGTERM, the grace period, SIGKILL.
mod guard {
    use super::*;

    /// Reads `GROUP TOKEN` lines; on end of input stops the last group and
    /// every process whose environment holds the last token (the job's
    /// escapees, handed to PID 1 with the worker's death).
    const SCRIPT: &str = r#"trap '' INT TERM HUP
g=0 t=
while read -r line tok; do g=$line; t=$tok; done
[ "$g" -gt 0 ] 2>/dev/null || exit 0
escaped() {
  for f in $(grep -laF "PROCPOOL_JOB_TOKEN=$t" /proc/[0-9]*/environ 2>/dev/null); do
    f=${f#/proc/}; echo "${f%/environ}"
  done
}
stop() { kill -$1 -$g 2>/dev/null; for p in $(escaped); do kill -$1 "$p" 2>/dev/null; done; }
alive() { kill -0 -$g 2>/dev/null || [ -n "$(escaped)" ]; }
stop TERM
stop CONT
n=$1
while [ "$n" -gt 0 ] && alive; do sleep 0.05; n=$((n-1)); done
stop KILL
exit 0"#;

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
}

/// The platform calls this task needs, through nix's safe wrappers.
mod os {
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
}
