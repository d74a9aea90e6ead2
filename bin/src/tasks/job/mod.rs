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

mod guard;
mod os;
mod spawn;
mod stop;

use spawn::{open_log, spawn_shell};
use stop::{Watchdog, end_escapees, end_group};

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
procpool::register!(ShellJob);

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
