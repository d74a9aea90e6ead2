//! The worker's side: the handshake and the serve loop.
//!
//! A program becomes a worker when its first argument is
//! [`WORKER_ARG`](crate::protocol::WORKER_ARG); call [`serve_if_requested`]
//! first thing in `main`. The worker dies with its supervisor (parent-death
//! signal, and the request channel closing), ignores the terminal's signals
//! (SIGINT, SIGHUP, SIGQUIT) so the supervisor decides how to shut down, and
//! never prints a panic: it reports it.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::OsString;

use ipc_channel::ipc::{self, IpcSender};

use crate::codec::CodecError;
use crate::protocol::{self, Frame, Hello, Reply, Request, WORKER_ARG, WireFailure};
use crate::sys;
use crate::task::Registry;

/// If this process was started as a procpool worker, serves tasks from
/// `registry` and exits; otherwise returns at once.
///
/// ```no_run
/// use procpool::{Registry, tasks::Square};
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

/// Registers `hook` to run once when this worker exits normally.
pub(crate) fn at_exit(hook: fn()) {
    EXIT_HOOKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(hook);
}

fn run_exit_hooks() {
    let hooks = std::mem::take(&mut *EXIT_HOOKS.lock().unwrap_or_else(|e| e.into_inner()));
    for hook in hooks {
        hook();
    }
}

/// Removes the handshake socket `name` and the private directory ipc-channel
/// made for it (`<tmp>/.tmpXXXXXX/socket`), if that is what it is.
fn remove_handshake_dir(name: &str) {
    let socket = std::path::Path::new(name);
    let Some(dir) = socket.parent() else { return };
    let made_for_it = socket.file_name().is_some_and(|f| f == "socket")
        && dir
            .file_name()
            .and_then(|d| d.to_str())
            .is_some_and(|d| d.starts_with(".tmp"));
    if made_for_it {
        let _ = std::fs::remove_file(socket);
        let _ = std::fs::remove_dir(dir);
    }
}

fn serve(registry: &Registry, args: Vec<OsString>) -> Result<(), String> {
    let usage = "worker mode is started by a procpool supervisor, not by hand";
    let [name, parent] = args.as_slice() else {
        return Err(format!(
            "{usage} (expected a handshake name and a parent pid)"
        ));
    };
    let name = name.to_str().ok_or(usage)?.to_string();
    let parent: u32 = parent.to_str().and_then(|p| p.parse().ok()).ok_or(usage)?;

    if sys::parent_pid() != parent {
        remove_handshake_dir(&name);
        return Err(format!(
            "{usage} (supervisor {parent} is not this process's parent)"
        ));
    }
    let hello = IpcSender::<Hello>::connect(name.clone());
    // The handshake socket's directory is ours to remove once we are through
    // (or the supervisor is gone): then not even a supervisor killed with
    // SIGKILL while workers start leaves it behind.
    let hello = match hello {
        Ok(hello) => hello,
        Err(e) => {
            remove_handshake_dir(&name);
            return Err(format!(
                "cannot reach the supervisor at {name}: {e} ({usage}, or the name is stale)"
            ));
        }
    };
    let (requests_tx, requests) =
        ipc::channel::<Frame>().map_err(|e| format!("cannot create a channel: {e}"))?;
    let (replies, replies_rx) =
        ipc::channel::<Frame>().map_err(|e| format!("cannot create a channel: {e}"))?;
    let sent = hello.send(Hello::Ready {
        pid: std::process::id(),
        requests: requests_tx,
        replies: replies_rx,
        tasks: registry.names().map(String::from).collect(),
    });
    drop(hello);
    remove_handshake_dir(&name);
    sent.map_err(|e| format!("handshake with {name} failed: {e}"))?;

    // The death signal is missed if the parent is already gone: check after setting it.
    sys::set_parent_death_signal(libc::SIGKILL).map_err(|e| format!("prctl: {e}"))?;
    if sys::parent_pid() != parent {
        return Err(format!(
            "{usage} (supervisor {parent} is not this process's parent)"
        ));
    }
    // The terminal's signals go to the whole foreground group; the supervisor
    // alone decides what they mean.
    for signal in [libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
        sys::ignore_signal(signal, true);
    }
    install_panic_hook();
    sys::keep_freed_memory();

    let mut out = Vec::new();
    loop {
        // A closed channel means the supervisor is gone or done with us.
        let Ok(frame) = requests.recv() else {
            return Ok(());
        };
        let (request, payload) = protocol::unframe::<Request>(&frame)
            .map_err(|e| format!("malformed request from the supervisor: {e}"))?;
        match request {
            Request::Shutdown => return Ok(()),
            Request::Run { batch, task, count } => {
                let reply = answer(registry, batch, &task, payload, count, &mut out);
                let frame = protocol::frame(&reply, &out).map_err(|e: CodecError| e.to_string())?;
                if replies.send(frame).is_err() {
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
    payload: &[u8],
    count: u32,
    out: &mut Vec<u8>,
) -> Reply {
    out.clear();
    let Some(handler) = registry.handler(task) else {
        return Reply::Refused {
            batch,
            reason: format!("this worker program has no task {task:?}"),
        };
    };
    match handler(payload, count, out) {
        Ok(()) => Reply::Done { batch },
        Err(e) => {
            out.clear();
            Reply::Refused {
                batch,
                reason: format!("input for {task:?} does not decode: {e}"),
            }
        }
    }
}

thread_local! {
    static LAST_PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Panics in tasks are reported as results, so the hook only remembers where.
pub(crate) fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        LAST_PANIC_LOCATION.with(|slot| *slot.borrow_mut() = location);
    }));
}

/// The message a panic was raised with.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Turns a caught panic into the failure sent to the supervisor.
pub(crate) fn panic_failure(payload: Box<dyn Any + Send>) -> WireFailure {
    let message = panic_message(&*payload);
    let location = LAST_PANIC_LOCATION.with(|slot| slot.borrow_mut().take());
    WireFailure::Panicked { message, location }
}
