//! The worker's side: the handshake and the serve loop.
//!
//! A program becomes a worker when its first argument is
//! [`WORKER_ARG`](crate::protocol::WORKER_ARG); call [`serve_if_requested`]
//! first thing in `main`. The worker dies with its supervisor (parent-death
//! signal, and the request channel closing), ignores the terminal's signals
//! (SIGINT, SIGHUP, SIGQUIT) so the supervisor decides how to shut down, and
//! never prints a panic: it reports it.

use std::ffi::OsString;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ipc_channel::ipc::IpcOneShotServer;

use crate::codec::CodecError;
use crate::protocol::{self, Hello, Ready, Reply, Request, WORKER_ARG};
use crate::region::{Inbox, Outbox, Release};
use crate::sys;
use crate::task::Registry;

/// If this process was started as a procpool worker, serves tasks from
/// `registry` and exits; otherwise returns at once.
///
/// ```no_run
/// use procpool::Registry;
/// # use procpool::doctest::Square;
///
/// fn main() {
///     let registry = Registry::new().register::<Square>();
///     procpool::serve_if_requested(&registry);
///     // ... the program's own work, which may build a Pool ...
/// }
/// ```
pub fn serve_if_requested(registry: &Registry) {
    let mut args = std::env::args_os();
    args.next();
    if args.next().as_deref() != Some(WORKER_ARG.as_ref()) {
        return;
    }
    let code = match serve(registry, args.collect()) {
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

/// Work to finish when the worker exits normally (a task module's helper
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
/// one-shot server whose name goes to the supervisor on stdout, the
/// supervisor's [`Hello`], and [`Ready`] on the reply channel. Until it is
/// through, a watcher removes the server's directory and exits the process
/// if stdin closes (the supervisor gave up on us, or died).
fn handshake(registry: &Registry) -> Result<Hello, String> {
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
            println!("{}{cause}", protocol::NO_SOCKET);
            std::process::exit(2);
        }
    };
    let through = Arc::new(AtomicBool::new(false));
    watch_stdin(name.clone(), Arc::clone(&through));
    // Our stdout is the supervisor's pipe until the name is through; then it
    // is the supervisor's stderr, for whatever tasks print.
    let said = {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{name}").and_then(|()| stdout.flush())
    };
    if said.is_err() || !sys::stdout_to_stderr() {
        protocol::remove_handshake_dir(&name);
        return Err(format!("{USAGE} (stdout is not a supervisor's pipe)"));
    }
    let accepted = server.accept();
    through.store(true, Ordering::SeqCst);
    let (_, hello) = accepted.map_err(|e| format!("handshake failed: {e}"))?;
    let ready = Ready {
        pid: std::process::id(),
        tasks: registry.names().map(String::from).collect(),
    };
    let message = protocol::message(&ready).map_err(|e| e.to_string())?;
    hello
        .replies
        .send(message)
        .map_err(|e| format!("handshake failed: {e}"))?;
    Ok(hello)
}

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
        let mut fd = libc::pollfd {
            fd: libc::STDIN_FILENO,
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            // SAFETY: poll on one pollfd we own.
            let rc = unsafe { libc::poll(&mut fd, 1, -1) };
            if rc < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
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

fn serve(registry: &Registry, args: Vec<OsString>) -> Result<(), String> {
    let [parent] = args.as_slice() else {
        return Err(format!("{USAGE} (expected the supervisor's pid)"));
    };
    let parent: u32 = parent.to_str().and_then(|p| p.parse().ok()).ok_or(USAGE)?;
    if sys::parent_pid() != parent {
        return Err(format!(
            "{USAGE} (supervisor {parent} is not this process's parent)"
        ));
    }
    // From here on a panic is reported, never printed: ipc-channel's own
    // (a TMPDIR it cannot use) becomes the handshake's one-line error.
    crate::task::install_panic_hook();
    let Hello { requests, replies } = handshake(registry)?;

    // The death signal is missed if the parent is already gone: check after setting it.
    sys::set_parent_death_signal(libc::SIGKILL).map_err(|e| format!("prctl: {e}"))?;
    if sys::parent_pid() != parent {
        return Err(format!("supervisor {parent} is gone"));
    }
    // The terminal's signals go to the whole foreground group; the supervisor
    // alone decides what they mean.
    for signal in [libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
        sys::ignore_signal(signal, true);
    }
    sys::keep_freed_memory();

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
                batch,
                task,
                count,
                timed,
            } => {
                let reply = answer(registry, batch, &task, (payload, count, timed), &mut out);
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

/// Runs one batch with `registry`'s handler for `task`; the results go to
/// `out` (cleared first) and the reply header is returned. Shared by the
/// local worker and the MPI worker ranks.
pub(crate) fn answer(
    registry: &Registry,
    batch: u64,
    task: &str,
    (payload, count, timed): (&[u8], u32, bool),
    out: &mut Vec<u8>,
) -> Reply {
    out.clear();
    let Some(handler) = registry.handler(task) else {
        return Reply::Refused {
            batch,
            reason: format!("this worker program has no task {task:?}"),
        };
    };
    match handler(payload, count, timed, out) {
        Ok(started_ns) => Reply::Done {
            batch,
            started_ns,
            exit_work: has_exit_work(),
        },
        Err(e) => {
            out.clear();
            Reply::Refused {
                batch,
                reason: format!("input for {task:?} does not decode: {e}"),
            }
        }
    }
}
