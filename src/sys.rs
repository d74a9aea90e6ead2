//! Platform calls in one place: parent-death signals, signal dispositions,
//! sending signals, process groups, and decoding how a process ended.

use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use nix::errno::Errno;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{SigHandler, Signal};
use nix::unistd::Pid;

/// How a process ended.
///
/// ```
/// use procpool::ExitCause;
/// assert_eq!(ExitCause::Signal(11).to_string(), "killed by signal 11 (SIGSEGV)");
/// assert_eq!(ExitCause::Status(0).to_string(), "exited with status 0");
/// assert_eq!(ExitCause::Signal(9).shell_code(), 137);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExitCause {
    /// It exited with this status.
    Status(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl ExitCause {
    /// Decodes a standard library exit status.
    pub fn from_status(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => ExitCause::Status(code),
            (None, Some(signal)) => ExitCause::Signal(signal),
            (None, None) => ExitCause::Status(-1),
        }
    }

    /// The code a shell would report: the status, or 128 plus the signal.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitCause::Status(code) => code,
            ExitCause::Signal(signal) => 128 + signal,
        }
    }
}

impl fmt::Display for ExitCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitCause::Status(code) => write!(f, "exited with status {code}"),
            ExitCause::Signal(signal) => write!(f, "killed by {}", signal_name(signal)),
        }
    }
}

/// `"signal 9 (SIGKILL)"` for the common signals, `"signal N"` otherwise.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        _ => return format!("signal {signal}"),
    };
    format!("signal {signal} ({name})")
}

/// Sends `signal` to process `pid`; a process that is already gone is not an error.
#[cfg_attr(
    not(feature = "test-support"),
    allow(dead_code, reason = "the tests' own signals; the pool signals groups")
)]
pub fn kill(pid: u32, signal: i32) -> io::Result<()> {
    let signal = Signal::try_from(signal).map_err(io::Error::from)?;
    match nix::sys::signal::kill(Pid::from_raw(pid as i32), signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Sends `signal` to the process group of worker `pid` (a group of its
/// own, which holds what its tasks started, forked or spawned, unless they
/// left it). Call it while the worker is not yet reaped, so the group's
/// number cannot be another's.
pub(crate) fn kill_group(pid: u32, signal: i32) {
    if let Ok(signal) = Signal::try_from(signal) {
        let _ = nix::sys::signal::killpg(Pid::from_raw(pid as i32), signal);
    }
}

/// Whether our child `pid` has exited, leaving it to be reaped (so that
/// its group can still be killed by number first).
pub(crate) fn has_exited(pid: u32) -> bool {
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(Pid::from_raw(pid as i32)), flags) {
        Ok(WaitStatus::StillAlive) => false,
        Ok(_) => true,
        // Reaped already, or not ours: nothing is left to wait for.
        Err(_) => true,
    }
}

/// Waits until our child `pid` has exited, or `until` passes; whether it
/// exited. It is left to be reaped, so its group can still be killed by
/// number. Waits on the process itself (a pidfd), not a clock; where the
/// kernel has no pidfd (before 5.3), it looks every millisecond.
pub(crate) fn wait_exited(pid: u32, until: std::time::Instant) -> bool {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes a PID and flags and returns a new descriptor
    // (or -1), which the OwnedFd then owns alone.
    let pidfd = unsafe {
        match libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) {
            -1 => None,
            fd => Some(OwnedFd::from_raw_fd(fd as i32)),
        }
    };
    loop {
        if has_exited(pid) {
            return true;
        }
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        match &pidfd {
            Some(fd) => {
                use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
                use std::os::fd::AsFd;
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                let wait = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
                let _ = poll(&mut fds, wait);
            }
            None => std::thread::sleep(left.min(std::time::Duration::from_millis(1))),
        }
    }
}

/// The worker's channel descriptors, closed in any child a task forks.
static CHANNEL_FDS: [std::sync::atomic::AtomicI32; 8] =
    [const { std::sync::atomic::AtomicI32::new(-1) }; 8];
/// Set in a child that a task forked: it is no worker.
static FORKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The sockets this process has open.
pub(crate) fn socket_fds() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            let fd = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            target.to_str()?.starts_with("socket:").then_some(fd)
        })
        .collect()
}

/// Makes a child forked by a task (with `fork()`, which runs the handlers
/// this registers) let go of `fds`, the worker's channels, at once, so the
/// supervisor sees the worker's end when the worker ends, whatever the child
/// does; and marks it, so that it never answers as the worker
/// ([`forked`]).
pub(crate) fn guard_channels_from_forks(fds: &[i32]) {
    for (slot, &fd) in CHANNEL_FDS.iter().zip(fds) {
        slot.store(fd, std::sync::atomic::Ordering::Relaxed);
    }
    extern "C" fn in_child() {
        FORKED.store(true, std::sync::atomic::Ordering::Relaxed);
        for slot in &CHANNEL_FDS {
            let fd = slot.load(std::sync::atomic::Ordering::Relaxed);
            if fd >= 0 {
                // SAFETY: close is async-signal-safe, and these descriptors
                // are the worker's channels, which this child must not use.
                unsafe { libc::close(fd) };
            }
        }
    }
    // SAFETY: the handler is async-signal-safe (atomic stores and close),
    // as a handler that runs in a child after fork must be.
    unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
}

/// Whether this process is a child that a task forked from its worker.
pub(crate) fn forked() -> bool {
    FORKED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Asks the kernel to send `signal` to this process when the thread that
/// created it exits. Call it first thing in a child process.
pub fn set_parent_death_signal(signal: i32) -> io::Result<()> {
    let signal = Signal::try_from(signal).map_err(io::Error::from)?;
    nix::sys::prctl::set_pdeathsig(signal).map_err(io::Error::from)
}

/// Disarms the parent-death signal: a starting worker that owns a socket
/// directory must live to remove it (its stdin tells it the parent is gone).
pub(crate) fn clear_parent_death_signal() -> io::Result<()> {
    nix::sys::prctl::set_pdeathsig(None).map_err(io::Error::from)
}

/// The parent process id of this process.
pub fn parent_pid() -> u32 {
    nix::unistd::getppid().as_raw() as u32
}

/// Nanoseconds on `CLOCK_MONOTONIC`, the clock every process of this
/// machine shares (and the one `std::time::Instant` reads on Linux), so a
/// worker's timestamps and its supervisor's can be compared.
///
/// ```
/// let a = procpool::sys::monotonic_ns();
/// let b = procpool::sys::monotonic_ns();
/// assert!(a > 0 && b >= a);
/// ```
pub fn monotonic_ns() -> u64 {
    // CLOCK_MONOTONIC always exists on Linux.
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC exists");
    (ts.tv_sec() as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec() as u64)
}

/// A point in time as both an [`Instant`](std::time::Instant) and
/// A clock for timing one task, faster to read than [`monotonic_ns`] (about
/// 10 ns against 24 here): the CPU's time-stamp counter where the kernel
/// itself keeps time with it (x86-64 with the `tsc` clocksource, so it is
/// steady and the same on every CPU), else [`monotonic_ns`]. Its unit is
/// unknown: only differences, scaled against [`monotonic_ns`] over the same
/// span, mean anything.
pub(crate) fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if tsc_is_the_clock() {
        // SAFETY: RDTSC exists on every x86-64 CPU and only reads a counter.
        #[allow(unused_unsafe)]
        return unsafe { core::arch::x86_64::_rdtsc() };
    }
    monotonic_ns()
}

/// Whether the kernel keeps time with the time-stamp counter (read once).
#[cfg(target_arch = "x86_64")]
fn tsc_is_the_clock() -> bool {
    static TSC: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TSC.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|source| source.trim() == "tsc")
    })
}

/// [`monotonic_ns`], read back to back: the zero of a pool's clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Epoch {
    pub instant: std::time::Instant,
    pub ns: u64,
}

impl Default for Epoch {
    fn default() -> Epoch {
        Epoch::now()
    }
}

impl Epoch {
    pub fn now() -> Epoch {
        Epoch {
            instant: std::time::Instant::now(),
            ns: monotonic_ns(),
        }
    }

    /// `ns` (on [`monotonic_ns`]'s clock) as an offset from this epoch;
    /// zero for a time before it.
    pub fn offset_ns(&self, ns: u64) -> std::time::Duration {
        std::time::Duration::from_nanos(ns.saturating_sub(self.ns))
    }

    /// `instant` as an offset from this epoch; zero for a time before it.
    pub fn offset(&self, instant: std::time::Instant) -> std::time::Duration {
        instant.saturating_duration_since(self.instant)
    }
}

/// Sets the disposition of `signal` to ignored (`true`) or default (`false`).
pub fn ignore_signal(signal: i32, ignore: bool) {
    let Ok(signal) = Signal::try_from(signal) else {
        return;
    };
    let handler = if ignore {
        SigHandler::SigIgn
    } else {
        SigHandler::SigDfl
    };
    // SAFETY: SIG_IGN and SIG_DFL are dispositions, not handler code, so
    // nothing can run in signal context.
    let _ = unsafe { nix::sys::signal::signal(signal, handler) };
}

/// Keeps freed heap memory (up to 64 MiB) instead of returning it to the
/// kernel after every large free. ipc-channel allocates a buffer of about
/// 200 KiB per received message; by default glibc gives it back after each
/// message and faults it in again for the next, which doubles the cost of a
/// round trip. Blocks of any size come from the heap (glibc's own ceiling
/// for its `mmap` threshold is 32 MiB, below a million outcomes' 48 MB), so
/// a second `map` reuses the pages of the first instead of faulting in
/// fresh zeroed ones; the heap's top is still given back beyond 64 MiB.
/// Process-wide, and done once.
pub fn keep_freed_memory() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: mallopt only changes glibc's allocator thresholds.
        unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        }
    });
}

/// Makes sure this process may hold `needed` open files, raising the soft
/// limit (`ulimit -n`) up to the hard one if it is lower, as Go's runtime
/// and most servers do. Returns the limit in force when it stays too low.
pub(crate) fn ensure_open_files(needed: u64) -> Result<(), u64> {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return Ok(());
    };
    if soft >= needed {
        return Ok(());
    }
    let raised = needed.min(hard);
    if setrlimit(Resource::RLIMIT_NOFILE, raised, hard).is_ok() && raised >= needed {
        return Ok(());
    }
    Err(soft.max(raised))
}

/// Makes this process's standard output a copy of its standard error, so
/// nothing printed can reach the descriptor the protocol started on;
/// whether it worked.
pub(crate) fn stdout_to_stderr() -> bool {
    nix::unistd::dup2_stdout(io::stderr()).is_ok()
}

/// Whether this process's standard input is a pipe.
pub(crate) fn stdin_is_pipe() -> bool {
    nix::sys::stat::fstat(io::stdin()).is_ok_and(|stat| {
        nix::sys::stat::SFlag::from_bits_truncate(stat.st_mode) & nix::sys::stat::SFlag::S_IFMT
            == nix::sys::stat::SFlag::S_IFIFO
    })
}

/// The soft limit on this process's address space (`ulimit -v`) in bytes,
/// if there is one.
pub(crate) fn address_space_limit() -> Option<u64> {
    let (soft, _) = getrlimit(Resource::RLIMIT_AS).ok()?;
    (soft != nix::sys::resource::RLIM_INFINITY).then_some(soft)
}
