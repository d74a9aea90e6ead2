//! Starting workers: re-executing the worker program and the handshake.
//!
//! Processes are created on one long-lived spawner thread, because the
//! kernel's parent-death signal fires when the *thread* that created a child
//! exits: tied to that thread, workers live exactly as long as their pool.
//!
//! The handshake: the worker makes an `IpcOneShotServer` (a socket in a
//! fresh private directory under `TMPDIR`) and writes its name on a pipe of
//! its own to us (its stdout is free for the program); we connect and send it the ends of two new channels; it
//! runs the pool's initializer, if it has one, and answers on the reply
//! channel with [`Ready`] (or the initializer's failure). The worker owns the socket's
//! directory, and whichever side outlives the other removes it: a worker
//! whose supervisor dies (its stdin pipe closes) removes it and exits, and
//! the supervisor removes it after a worker that died. So not even a
//! supervisor killed with SIGKILL while workers start leaves one behind.
//! Every wait has the start-up deadline and watches the pool's interrupt
//! flag: a signal ends a start-up (or a replacement) within milliseconds.
//!
//! ipc-channel panics on some of the errors it meets in `TMPDIR`, so
//! [`Spawner::new`] checks that location first and turns an unusable one into
//! one clear error.

use std::io::PipeReader;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ipc_channel::ipc::{self, IpcReceiver, IpcSender};
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::AccessFlags;

use super::pin::{Claim, Cpus};
use crate::error::PoolError;
use crate::protocol::{
    self, Carrier, Hello, InitCall, Message, NO_INIT_EXIT, NO_SOCKET, Ready, WORKER_ENV,
};
use crate::signal::InterruptFlag;
use crate::sys::ExitCause;

/// A worker that completed its handshake.
pub(crate) struct WorkerProcess {
    pub pid: u32,
    pub child: Child,
    pub requests: IpcSender<Message>,
    pub replies: IpcReceiver<Message>,
    pub tasks: Vec<String>,
    /// The CPU it is bound to, held while it lives.
    pub cpu: Option<Claim>,
}

/// A started worker, the read end of its handshake pipe, and its CPU.
type Started = (Child, PipeReader, Option<Claim>);
type SpawnJob = (usize, mpsc::Sender<Result<Started, PoolError>>);

/// Owns the spawner thread; dropping it ends the thread.
pub(crate) struct Spawner {
    program: PathBuf,
    startup_timeout: Duration,
    interrupt: Option<InterruptFlag>,
    /// The initializer each worker runs in its handshake.
    initializer: Option<InitCall>,
    jobs: Option<mpsc::Sender<SpawnJob>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Spawner {
    /// `cpus`: the CPUs workers are bound to, one each, if any.
    pub fn new(
        program: PathBuf,
        startup_timeout: Duration,
        interrupt: Option<InterruptFlag>,
        initializer: Option<InitCall>,
        cpus: Option<Cpus>,
    ) -> Result<Self, PoolError> {
        // A worker whose program never called init stops here, before it
        // starts workers of its own.
        crate::worker::refuse_unserved_worker();
        // Two tasks of one name are an error here, not in every worker.
        crate::registry::Registry::linked()?;
        check_handshake_dir()?;
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        // A test harness with `test_support!()` is its own worker program,
        // run with just its worker test.
        let harness = std::env::current_exe().is_ok_and(|me| me == program);
        let args = harness.then(crate::registry::test_worker_args).flatten();
        let thread_program = program.clone();
        let thread_interrupt = interrupt.clone();
        // Each worker is handed over as soon as it runs, so the handshakes
        // of the first overlap the starts of the next; after a signal no
        // more are started.
        let thread = thread::Builder::new()
            .name("procpool-spawner".into())
            .spawn(move || {
                for (count, reply) in rx {
                    for _ in 0..count {
                        let signal = thread_interrupt.as_ref().and_then(InterruptFlag::received);
                        let started = match signal {
                            Some(signal) => Err(PoolError::Interrupted { signal }),
                            None => {
                                let cpu = cpus.as_ref().map(Cpus::claim);
                                start(&thread_program, args.as_deref(), cpu)
                            }
                        };
                        if reply.send(started).is_err() {
                            break;
                        }
                    }
                }
            })
            .map_err(|e| PoolError::os("cannot start the spawner thread", e))?;
        Ok(Spawner {
            program,
            startup_timeout,
            interrupt,
            initializer,
            jobs: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Starts `count` workers at once and waits for all their handshakes.
    /// Every worker that did start is returned or killed, never left behind.
    pub fn spawn(&self, count: usize) -> Vec<Result<WorkerProcess, PoolError>> {
        let (tx, rx) = mpsc::channel();
        // Without a spawner `tx` is dropped here, and `recv` fails at once.
        let _ = self.jobs.as_ref().map(|jobs| jobs.send((count, tx)));
        let gone = || PoolError::os("spawner thread", std::io::Error::other("it has stopped"));
        let deadline = Instant::now() + self.startup_timeout;
        let mut results = Vec::with_capacity(count);
        let mut stopped = Vec::new();
        for _ in 0..count {
            // A spawner that stopped hands over nothing more.
            let mut handshake = match rx.recv().unwrap_or_else(|_| Err(gone())) {
                Ok(child) => Handshake::new(child),
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            };
            // After a signal the rest are told to stop together, and
            // waited for together.
            if let Some(signal) = self.interrupt.as_ref().and_then(InterruptFlag::received) {
                handshake.stop();
                stopped.push(handshake);
                results.push(Err(PoolError::Interrupted { signal }));
                continue;
            }
            results.push(handshake.finish(self, deadline));
        }
        let until = Instant::now() + STOP_GRACE;
        for handshake in stopped {
            handshake.reap(until);
        }
        results
    }
}

impl Drop for Spawner {
    /// Closes the thread's queue: it ends by itself, holding nothing. It is
    /// not waited for, since waking and joining a thread would double an idle
    /// pool's teardown; no start is under way when the pool drops (starts
    /// are answered before `spawn` returns).
    fn drop(&mut self) {
        self.jobs.take();
        self.thread.take();
    }
}

/// Checks, once per pool, that the workers can make their handshake
/// sockets where ipc-channel puts them (`TMPDIR/.tmpXXXXXX/socket`): the
/// directory exists, we may create in it, and the path fits a socket
/// address. Nothing is created that a kill could leave behind: the test file
/// is unnamed (`O_TMPFILE`). A worker that still cannot make its socket (a
/// full disk) says why on its pipe, and that is the pool's error.
fn check_handshake_dir() -> Result<(), PoolError> {
    let base = std::env::temp_dir();
    let fail = |cause: std::io::Error| PoolError::HandshakeDir {
        dir: base.clone(),
        cause,
    };
    let meta = std::fs::metadata(&base).map_err(fail)?;
    if !meta.is_dir() {
        return Err(fail(std::io::Error::from_raw_os_error(libc::ENOTDIR)));
    }
    // sun_path holds 108 bytes with its terminating NUL; ipc-channel would
    // silently cut a longer path and bind somewhere else.
    if base.join(".tmpXXXXXX/socket").as_os_str().len() >= 108 {
        return Err(fail(std::io::Error::other(
            "the path is too long for a socket (over 100 bytes)",
        )));
    }
    let unnamed = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(&base);
    match unnamed {
        Ok(_) => Ok(()),
        // No O_TMPFILE on this file system: ask for permission instead.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR)) => {
            nix::unistd::access(&base, AccessFlags::W_OK | AccessFlags::X_OK)
                .map_err(|errno| fail(errno.into()))
        }
        Err(e) => Err(fail(e)),
    }
}

/// Runs on the spawner thread: starts a worker with its stdin piped from
/// us, a pipe of its own for the handshake, and its stdout and stderr on
/// our stderr (what tasks print never mixes with the program's output). The
/// parent-death signal is armed before the program runs, so even one that
/// never reaches the handshake dies with us. `harness`: the arguments that
/// make a test harness run its worker test; its stdout, where the harness
/// reports, goes nowhere (the worker moves its own to stderr).
fn start(
    program: &Path,
    harness: Option<&[String]>,
    cpu: Option<Claim>,
) -> Result<Started, PoolError> {
    let failed = |source| PoolError::Spawn {
        program: program.to_path_buf(),
        source,
    };
    let (reader, writer) = std::io::pipe().map_err(failed)?;
    let fd = writer.as_raw_fd();
    let parent = std::process::id();
    let bind = cpu.as_ref().map(Claim::set);
    let mut command = Command::new(program);
    // A process group of its own: what its tasks start goes with it.
    command
        .env(WORKER_ENV, format!("{parent}:{fd}"))
        .stdin(Stdio::piped())
        .process_group(0);
    match harness {
        Some(args) => command.args(args).stdout(Stdio::null()),
        None => {
            let stderr = std::io::stderr().as_fd().try_clone_to_owned();
            command.stdout(stderr.map_err(failed)?)
        }
    };
    // SAFETY: the closure runs in the child between fork and exec, and
    // makes only async-signal-safe system calls on plain integers.
    unsafe {
        command.pre_exec(move || {
            // The handshake pipe survives exec; nothing else of ours does.
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1
                || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1
            {
                return Err(std::io::Error::last_os_error());
            }
            // The signal is missed if the supervisor is already gone.
            if libc::getppid() as u32 != parent {
                libc::_exit(2);
            }
            // A CPU that cannot be had (the set changed since) leaves the
            // worker where the kernel puts it.
            if let Some(set) = &bind {
                let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), set);
            }
            Ok(())
        })
    };
    let child = command.spawn().map_err(failed)?;
    drop(writer);
    Ok((child, reader, cpu))
}

/// A handshake under way, in its steps.
struct Handshake {
    child: Child,
    /// The worker's handshake pipe, until it has given its socket's name.
    pipe: Option<PipeReader>,
    said: Vec<u8>,
    /// The worker's socket, once named.
    name: Option<String>,
    /// Our channels, once sent, waiting for [`Ready`].
    sent: Option<(IpcSender<Message>, IpcReceiver<Message>)>,
    cpu: Option<Claim>,
}

/// How long one look at a starting worker waits.
const POLL: Duration = Duration::from_millis(5);
/// How long a stopped worker gets to remove its socket and exit.
const STOP_GRACE: Duration = Duration::from_millis(100);

impl Handshake {
    fn new((child, pipe, cpu): Started) -> Self {
        set_nonblocking(&pipe);
        Handshake {
            child,
            pipe: Some(pipe),
            said: Vec::new(),
            name: None,
            sent: None,
            cpu,
        }
    }

    fn finish(mut self, spawner: &Spawner, deadline: Instant) -> Result<WorkerProcess, PoolError> {
        let (program, interrupt) = (spawner.program(), spawner.interrupt.as_ref());
        let pid = self.child.id();
        let fail = |reason: String| PoolError::Handshake {
            pid,
            program: program.to_path_buf(),
            reason,
        };
        loop {
            match self.step(spawner.initializer.as_ref()) {
                Ok(Some(Ready {
                    pid: from,
                    init_error: Some(message),
                    ..
                })) if from == pid => {
                    self.abort();
                    let name = spawner.initializer.as_ref().map(|i| i.name.clone());
                    return Err(PoolError::Initializer {
                        name: name.unwrap_or_default(),
                        pid: Some(pid),
                        message,
                    });
                }
                Ok(Some(ready)) if ready.pid == pid => {
                    // A task both programs know must mean the same types.
                    let checked = crate::registry::Registry::linked()
                        .and_then(|ours| ours.check(&ready.tasks, program));
                    if let Err(e) = checked {
                        self.abort();
                        return Err(e);
                    }
                    let (requests, replies) = self.sent.take().expect("ready after sending");
                    // The worker no longer watches its stdin.
                    drop(self.child.stdin.take());
                    return Ok(WorkerProcess {
                        pid,
                        child: self.child,
                        requests,
                        replies,
                        tasks: ready.tasks.into_iter().map(|task| task.name).collect(),
                        cpu: self.cpu.take(),
                    });
                }
                Ok(Some(ready)) => {
                    self.abort();
                    return Err(fail(format!(
                        "handshake came from process {}, not {pid}",
                        ready.pid
                    )));
                }
                Ok(None) => {}
                Err(reason) if reason.starts_with(NO_SOCKET) => {
                    self.abort();
                    return Err(PoolError::HandshakeDir {
                        dir: std::env::temp_dir(),
                        cause: std::io::Error::other(&reason[NO_SOCKET.len()..]),
                    });
                }
                Err(reason) => {
                    // A worker that closed its pipe by exiting is reaped a
                    // moment after: its exit says more than the closed pipe.
                    let until = Instant::now() + Duration::from_millis(100);
                    crate::sys::wait_exited(self.child.id(), until);
                    let reason = match self.child.try_wait() {
                        Ok(Some(status)) if status.code() == Some(NO_INIT_EXIT) => {
                            "it built a pool of its own instead of serving: its main never \
                             called procpool::init()"
                                .to_string()
                        }
                        Ok(Some(status)) => format!(
                            "{} before the handshake (does its main begin with procpool::init()?)",
                            ExitCause::from_status(status)
                        ),
                        _ => reason,
                    };
                    self.abort();
                    return Err(fail(reason));
                }
            }
            if let Some(signal) = interrupt.and_then(InterruptFlag::received) {
                self.abort();
                return Err(PoolError::Interrupted { signal });
            }
            if Instant::now() >= deadline {
                self.abort();
                return Err(fail(
                    "no handshake before the start-up deadline".to_string(),
                ));
            }
        }
    }

    /// One step of the handshake, waiting at most [`POLL`]: `Ok(None)` while
    /// it goes on, the worker's [`Ready`] at the end.
    fn step(&mut self, initializer: Option<&InitCall>) -> Result<Option<Ready>, String> {
        if let Some((_, replies)) = &self.sent {
            return match replies.try_recv_timeout(POLL) {
                // Ready is small: it comes inline, or it is wrong.
                Ok(Message {
                    bytes: Carrier::Inline(bytes),
                    ..
                }) => protocol::unframe::<Ready>(&bytes)
                    .map(|(ready, _)| Some(ready))
                    .map_err(|e| format!("malformed handshake: {e}")),
                Ok(_) => Err("malformed handshake: not an inline message".to_string()),
                Err(ipc_channel::TryRecvError::Empty) => Ok(None),
                Err(e) => Err(format!("the handshake failed: {e}")),
            };
        }
        if let Some(name) = self.read_name()? {
            let hello = IpcSender::<Hello>::connect(name.clone())
                .map_err(|e| format!("cannot reach its socket {name}: {e}"))?;
            let (requests, requests_rx) =
                ipc::channel::<Message>().map_err(|e| format!("cannot create a channel: {e}"))?;
            let (replies_tx, replies) =
                ipc::channel::<Message>().map_err(|e| format!("cannot create a channel: {e}"))?;
            hello
                .send(Hello {
                    requests: requests_rx,
                    replies: replies_tx,
                    initializer: initializer.cloned(),
                })
                .map_err(|e| format!("the handshake failed: {e}"))?;
            self.sent = Some((requests, replies));
            return Ok(None);
        }
        if let Ok(Some(_)) = self.child.try_wait() {
            return Err("it exited before the handshake".to_string());
        }
        // Wait for the name (or the pipe's end) to arrive, not a fixed
        // time: a worker is usually up within a millisecond or two.
        match &self.pipe {
            Some(pipe) => {
                let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
                let _ = poll(
                    &mut fds,
                    PollTimeout::try_from(POLL).unwrap_or(PollTimeout::MAX),
                );
            }
            // The pipe ended without a name: the worker is on its way out.
            None => {
                crate::sys::wait_exited(self.child.id(), Instant::now() + POLL);
            }
        }
        Ok(None)
    }

    /// The socket name the worker writes on its pipe, once a whole line is in.
    fn read_name(&mut self) -> Result<Option<String>, String> {
        let Some(pipe) = self.pipe.as_mut() else {
            return Ok(None);
        };
        let mut buffer = [0u8; 512];
        let end = loop {
            if let Some(end) = self.said.iter().position(|&b| b == b'\n') {
                break end;
            }
            if self.said.len() > 4096 {
                return Err("it wrote something else than a handshake on its pipe".to_string());
            }
            match pipe.read(&mut buffer) {
                Ok(0) => return Err("it closed its handshake pipe".to_string()),
                Ok(n) => self.said.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("cannot read its handshake pipe: {e}")),
            }
        };
        let name = String::from_utf8(self.said[..end].to_vec())
            .map_err(|_| "it wrote something else than a handshake on its pipe".to_string())?;
        if let Some(why) = name.strip_prefix(NO_SOCKET) {
            self.pipe = None;
            return Err(format!("{NO_SOCKET}{why}"));
        }
        self.pipe = None;
        self.name = Some(name.clone());
        Ok(Some(name))
    }

    /// Stops a worker that will not complete the handshake: see
    /// [`stop`](Self::stop) and [`reap`](Self::reap).
    fn abort(&mut self) {
        self.stop();
        self.reap_by(Instant::now() + STOP_GRACE);
    }

    /// Closes the worker's stdin, which tells a worker still starting to
    /// remove its socket and exit.
    fn stop(&mut self) {
        drop(self.child.stdin.take());
    }

    /// Waits until `until` for a stopped worker to exit, then kills it;
    /// whatever it made is removed.
    fn reap(mut self, until: Instant) {
        self.reap_by(until);
    }

    fn reap_by(&mut self, until: Instant) {
        crate::sys::wait_exited(self.child.id(), until);
        crate::sys::kill_group(self.child.id(), libc::SIGKILL);
        let _ = self.child.wait();
        // A name written before it died may still be in the pipe.
        let _ = self.read_name();
        if let Some(name) = &self.name {
            protocol::remove_handshake_dir(name);
        }
    }
}

/// Makes reads from the pipe return at once when it is empty.
fn set_nonblocking(pipe: &impl AsFd) {
    if let Ok(flags) = fcntl(pipe.as_fd(), FcntlArg::F_GETFL) {
        let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
        let _ = fcntl(pipe.as_fd(), FcntlArg::F_SETFL(flags));
    }
}
