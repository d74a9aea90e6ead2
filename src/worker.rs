//! The worker's side: the handshake and the serve loop.
//!
//! A program is a worker when its supervisor started it with
//! [`WORKER_ENV`](crate::protocol::WORKER_ENV) in its environment; [`init`],
//! first thing in `main`, then serves the program's linked tasks and exits.
//! One that builds a pool instead stops at once, with one line and
//! [`NO_INIT_EXIT`](crate::protocol::NO_INIT_EXIT): a worker never becomes a
//! supervisor by accident. The worker names its handshake socket on a pipe
//! of its own, so nothing the program prints can break the protocol. The worker dies with its supervisor (parent-death
//! signal, and the request channel closing), ignores the terminal's signals
//! (SIGINT, SIGHUP, SIGQUIT) so the supervisor decides how to shut down, and
//! never prints a panic: it reports it.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, FromRawFd, RawFd};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ipc_channel::ipc::IpcOneShotServer;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::codec::CodecError;
use crate::protocol::{self, Hello, NO_INIT_EXIT, Ready, Reply, Request, WORKER_ENV};
use crate::region::{Inbox, Outbox, Release};
use crate::registry::Registry;
use crate::sys;

/// Serves and exits if this process was started as a procpool worker;
/// otherwise returns at once. Call it first thing in `main` (or put
/// `#[procpool::main]` on `main`): a worker must run none of the program's
/// own code.
///
/// ```
/// #[procpool::task]
/// fn square(x: i64) -> i64 {
///     x * x
/// }
///
/// fn main() {
///     procpool::init();
///     let pool = procpool::Pool::new(2).unwrap();
///     assert_eq!(pool.map(square, 0..4).unwrap(), [0, 1, 4, 9]);
/// }
/// ```
pub fn init() {
    let Some(marker) = std::env::var_os(WORKER_ENV) else {
        return;
    };
    // The program's own children (a task's helpers) are no workers.
    // SAFETY: init runs first in `main`, before the program starts threads
    // that could read the environment (in a test harness, the only other
    // thread waits for this test).
    unsafe { std::env::remove_var(WORKER_ENV) };
    SERVING.store(true, Ordering::SeqCst);
    let code = match Registry::linked()
        .map_err(|e| e.to_string())
        .and_then(|registry| serve(registry, &marker))
    {
        Ok(()) => 0,
        Err(message) => {
            // A stderr that cannot be written (`2>/dev/full`) must not panic.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "procpool worker {}: {message}",
                std::process::id()
            );
            2
        }
    };
    run_exit_hooks();
    std::process::exit(code);
}

/// This process is a worker serving tasks: a pool one of its tasks builds is
/// built on purpose.
static SERVING: AtomicBool = AtomicBool::new(false);

/// Stops, with one line and [`NO_INIT_EXIT`], a process that was started as
/// a worker but builds a pool instead of serving: its `main` never called
/// [`init`]. Without this, each worker would start workers of its own.
pub(crate) fn refuse_unserved_worker() {
    if SERVING.load(Ordering::SeqCst) || std::env::var_os(WORKER_ENV).is_none() {
        return;
    }
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "procpool worker {}: this program was started as a worker but built a pool without \
         calling procpool::init() first (make it the first line of main)",
        std::process::id()
    );
    std::process::exit(NO_INIT_EXIT);
}

/// Encoded to finish when the worker exits normally (a task module's helper
/// processes to reap, say); see [`at_exit`].
static EXIT_HOOKS: std::sync::Mutex<Vec<fn()>> = std::sync::Mutex::new(Vec::new());

/// Registers `hook` to run once when this worker process exits normally
/// (its supervisor closed the pool), for work a task leaves behind: helper
/// processes to reap, files to flush. A worker with hooks is given time to
/// run them instead of being killed at teardown.
///
/// ```
/// fn reap_helpers() { /* wait for the processes a task started */ }
/// // Inside a task, the first time it starts a helper:
/// procpool::at_exit(reap_helpers);
/// ```
pub fn at_exit(hook: fn()) {
    EXIT_HOOKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(hook);
    HAS_EXIT_WORK.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether hooks wait for this worker's exit: read with every reply, so a
/// flag rather than the hooks' lock.
static HAS_EXIT_WORK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn has_exit_work() -> bool {
    HAS_EXIT_WORK.load(std::sync::atomic::Ordering::Relaxed)
}

fn run_exit_hooks() {
    let hooks = std::mem::take(&mut *EXIT_HOOKS.lock().unwrap_or_else(|e| e.into_inner()));
    for hook in hooks {
        hook();
    }
}

const USAGE: &str = "worker mode is started by a procpool supervisor, not by hand";

/// The worker's side of the handshake (see the supervisor's side in `backend/spawn.rs`): a
/// one-shot server whose name goes to the supervisor on `fd`, and the
/// supervisor's [`Hello`] ([`answer_ready`] ends it). Until it is
/// through, a watcher removes the server's directory and exits the process
/// if stdin closes (the supervisor gave up on us, or died).
fn handshake(fd: RawFd) -> Result<Hello, String> {
    // SAFETY: the supervisor gave us this descriptor for the handshake
    // alone (checked to be 1 or above 2 by `serve`); nothing else uses it.
    let mut pipe = unsafe { File::from_raw_fd(fd) };
    // ipc-channel panics on some errors in TMPDIR: a panic is an error too.
    // ipc-channel panics on some errors (it loses their cause): then a
    // directory of our own, made and removed, says what is wrong.
    let server = std::panic::catch_unwind(IpcOneShotServer::<Hello>::new)
        .unwrap_or_else(|_| Err(why_no_directory()));
    let (server, name) = match server {
        Ok(server) => server,
        Err(e) => {
            // The supervisor reports it, as its own error, in one line.
            let e = e.to_string();
            let cause = e.split(" at path ").next().unwrap_or(&e);
            use std::io::Write as _;
            let _ = writeln!(pipe, "{}{cause}", protocol::NO_SOCKET);
            std::process::exit(2);
        }
    };
    let through = Arc::new(AtomicBool::new(false));
    watch_stdin(name.clone(), Arc::clone(&through));
    let said = {
        use std::io::Write as _;
        writeln!(pipe, "{name}").and_then(|()| pipe.flush())
    };
    // Whatever tasks print goes to stderr: stdout is the supervisor's
    // stderr already, or nowhere (a test harness's), or was the handshake's
    // (fd 1, started by hand).
    if fd == libc::STDOUT_FILENO {
        std::mem::forget(pipe);
    } else {
        drop(pipe);
    }
    let stdout_moved = sys::stdout_to_stderr();
    if said.is_err() || !stdout_moved {
        protocol::remove_handshake_dir(&name);
        return Err(format!(
            "{USAGE} (descriptor {fd} is not a supervisor's pipe)"
        ));
    }
    let accepted = server.accept();
    through.store(true, Ordering::SeqCst);
    let (_, hello) = accepted.map_err(|e| format!("handshake failed: {e}"))?;
    Ok(hello)
}

/// The handshake's last step, once the worker dies with its supervisor:
/// runs the pool's initializer, if it has one, and answers [`Ready`]. A
/// worker whose initializer failed says why in its answer, then exits.
fn answer_ready(registry: &Registry, hello: &Hello) -> Result<(), String> {
    let init_error = hello
        .initializer
        .as_ref()
        .and_then(|call| crate::registry::initialize(call).err());
    let failed = init_error.is_some();
    let ready = Ready {
        pid: std::process::id(),
        tasks: registry.signatures(),
        init_error,
    };
    let message = protocol::message(&ready).map_err(|e| e.to_string())?;
    hello
        .replies
        .send(message)
        .map_err(|e| format!("handshake failed: {e}"))?;
    if failed {
        // The supervisor reports it; this worker has nothing to serve.
        run_exit_hooks();
        std::process::exit(INIT_FAILED_EXIT);
    }
    Ok(())
}

/// The exit status of a worker whose initializer failed (its supervisor
/// has the message).
const INIT_FAILED_EXIT: i32 = 3;

/// Why no directory can be made in the temporary directory, found by
/// making (and removing) one.
fn why_no_directory() -> std::io::Error {
    let probe = std::env::temp_dir().join(format!(".procpool-{}", std::process::id()));
    match std::fs::create_dir(&probe) {
        Ok(()) => {
            let _ = std::fs::remove_dir(&probe);
            std::io::Error::other("ipc-channel cannot make a socket there")
        }
        Err(e) => e,
    }
}

/// Until `through` is set: when stdin closes, removes the handshake socket
/// `name` and exits.
fn watch_stdin(name: String, through: Arc<AtomicBool>) {
    let watch = move || {
        let stdin = std::io::stdin();
        loop {
            let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::NONE) == Err(nix::errno::Errno::EINTR) {
                continue;
            }
            if through.load(Ordering::SeqCst) {
                return;
            }
            protocol::remove_handshake_dir(&name);
            // A supervisor that closes our pipe has given up on us and
            // needs no message; anyone else does.
            if !sys::stdin_is_pipe() {
                let line = format!(
                    "procpool worker {}: no supervisor completed the handshake ({USAGE})\n",
                    std::process::id()
                );
                use std::io::Write as _;
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            // SAFETY: _exit ends the process at once; nothing is shared yet.
            unsafe { libc::_exit(2) };
        }
    };
    let _ = std::thread::Builder::new()
        .name("procpool-handshake".into())
        .spawn(watch);
}

fn serve(registry: &Registry, marker: &OsStr) -> Result<(), String> {
    let bad = || format!("{USAGE} ({WORKER_ENV} is not SUPERVISOR-PID:FD)");
    let (parent, fd) = marker
        .to_str()
        .and_then(|m| m.split_once(':'))
        .ok_or_else(bad)?;
    let parent: u32 = parent.parse().map_err(|_| bad())?;
    let fd: RawFd = fd.parse().map_err(|_| bad())?;
    if fd != libc::STDOUT_FILENO && fd <= libc::STDERR_FILENO {
        return Err(bad());
    }
    if sys::parent_pid() != parent {
        return Err(format!(
            "{USAGE} (supervisor {parent} is not this process's parent)"
        ));
    }
    // From here on a panic is reported, never printed: ipc-channel's own
    // (a TMPDIR it cannot use) becomes the handshake's one-line error.
    crate::task::install_panic_hook();
    // The supervisor armed the death signal (SIGKILL) before we ran, so a
    // program that never gets here dies with it. The handshake makes a
    // socket directory that a killed worker would leave behind: while it is
    // under way, the closing of stdin says the supervisor is gone instead.
    sys::clear_parent_death_signal().map_err(|e| format!("prctl: {e}"))?;
    if sys::parent_pid() != parent {
        return Err(format!("supervisor {parent} is gone"));
    }
    let before = sys::socket_fds();
    let hello = handshake(fd)?;
    let channels: Vec<i32> = sys::socket_fds()
        .into_iter()
        .filter(|fd| !before.contains(fd))
        .collect();
    sys::guard_channels_from_forks(&channels);

    // The death signal is missed if the parent is already gone: check
    // after setting it.
    sys::set_parent_death_signal(libc::SIGKILL).map_err(|e| format!("prctl: {e}"))?;
    if sys::parent_pid() != parent {
        return Err(format!("supervisor {parent} is gone"));
    }
    // The terminal's signals go to the whole foreground group; the supervisor
    // alone decides what they mean (during the initializer too).
    for signal in [libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
        sys::ignore_signal(signal, true);
    }
    sys::keep_freed_memory();
    answer_ready(registry, &hello)?;
    let Hello {
        requests, replies, ..
    } = hello;

    // Requests are read where the supervisor wrote them (only their bounds
    // are checked: the supervisor is trusted); replies are written into our
    // region, whose space the supervisor frees with each request.
    let mut inbox = Inbox::new(false);
    let mut outbox = Outbox::new(Release::Reported);
    let mut out = Vec::new();
    loop {
        // A closed channel means the supervisor is gone or done with us.
        let Ok(message) = requests.recv() else {
            return Ok(());
        };
        outbox.free_to(message.freed);
        let malformed =
            |e: &dyn std::fmt::Display| format!("malformed request from the supervisor: {e}");
        let frame = inbox.open(message).map_err(|e| malformed(&e))?;
        let (request, payload) = protocol::unframe::<Request>(&frame).map_err(|e| malformed(&e))?;
        match request {
            Request::Shutdown => return Ok(()),
            Request::Run {
                chunk,
                task,
                count,
                timed,
            } => {
                let reply = answer(registry, chunk, &task, (payload, count, timed), &mut out);
                let (message, _) = outbox
                    .pack(&reply, &out)
                    .map_err(|e: CodecError| e.to_string())?;
                if replies.send(message).is_err() {
                    return Ok(());
                }
            }
        }
    }
}

/// Runs one chunk with `registry`'s handler for `task`; the results go to
/// `out` (cleared first) and the reply header is returned. Shared by the
/// local worker and the MPI worker ranks.
pub(crate) fn answer(
    registry: &Registry,
    chunk: u64,
    task: &str,
    (payload, count, timed): (&[u8], u32, bool),
    out: &mut Vec<u8>,
) -> Reply {
    out.clear();
    let Some(handler) = registry.handler(task) else {
        return Reply::Refused {
            chunk,
            reason: format!("this worker program has no task {task:?}"),
        };
    };
    match handler(payload, count, timed, out) {
        Ok(started_ns) => Reply::Done {
            chunk,
            started_ns,
            exit_work: has_exit_work(),
        },
        Err(e) => {
            out.clear();
            Reply::Refused {
                chunk,
                reason: format!("input for {task:?} does not decode: {e}"),
            }
        }
    }
}
