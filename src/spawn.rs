//! Starting workers: re-executing the worker program and the handshake.
//!
//! Processes are created on one long-lived spawner thread, because the
//! kernel's parent-death signal fires when the *thread* that created a child
//! exits: tied to that thread, workers live exactly as long as their pool.
//!
//! `IpcOneShotServer::accept` has no timeout, so each accept runs on a helper
//! thread while the caller watches the child; a child that exits or misses the
//! deadline is killed and the accept is released by connecting to it ourselves.
//! While workers start, the pool's interrupt flag is watched too: a signal
//! ends a start-up (or a replacement) within milliseconds.
//!
//! ipc-channel puts each handshake socket in a fresh directory under the
//! system's temporary directory (`TMPDIR`), and panics on some of the errors
//! it meets there, so [`Spawner::new`] checks that location first and turns
//! an unusable one into one clear error; a panic that still escapes
//! ipc-channel becomes an error too, never a dead spawner thread.

use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ipc_channel::ipc::{IpcOneShotServer, IpcReceiver, IpcSender};

use crate::error::PoolError;
use crate::protocol::{Frame, Hello, WORKER_ARG};
use crate::signal::{self, InterruptFlag};
use crate::sys::ExitCause;

/// A worker that completed its handshake.
pub(crate) struct WorkerProcess {
    pub pid: u32,
    pub child: Child,
    pub requests: IpcSender<Frame>,
    pub replies: IpcReceiver<Frame>,
    pub tasks: Vec<String>,
}

type Started = (Child, IpcOneShotServer<Hello>, String);
type SpawnJob = (usize, mpsc::Sender<Vec<Result<Started, PoolError>>>);

/// Owns the spawner thread; dropping it ends the thread.
pub(crate) struct Spawner {
    program: PathBuf,
    startup_timeout: Duration,
    interrupt: Option<InterruptFlag>,
    jobs: Option<mpsc::Sender<SpawnJob>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Spawner {
    pub fn new(
        program: PathBuf,
        startup_timeout: Duration,
        interrupt: Option<InterruptFlag>,
    ) -> Result<Self, PoolError> {
        check_handshake_dir()?;
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        let thread_program = program.clone();
        let thread = thread::Builder::new()
            .name("procpool-spawner".into())
            .spawn(move || {
                for (count, reply) in rx {
                    let started = (0..count).map(|_| start(&thread_program)).collect();
                    let _ = reply.send(started);
                }
            })
            .map_err(|e| PoolError::os("cannot start the spawner thread", e))?;
        Ok(Spawner {
            program,
            startup_timeout,
            interrupt,
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
        let sent = self.jobs.as_ref().map(|jobs| jobs.send((count, tx)));
        let started = match (sent, rx.recv()) {
            (Some(Ok(())), Ok(started)) => started,
            _ => {
                let gone =
                    || PoolError::os("spawner thread", std::io::Error::other("it has stopped"));
                return (0..count).map(|_| Err(gone())).collect();
            }
        };
        let deadline = Instant::now() + self.startup_timeout;
        let waits: Vec<_> = started
            .into_iter()
            .map(|s| s.and_then(|(child, server, name)| Handshake::begin(child, server, name)))
            .collect();
        waits
            .into_iter()
            .map(|w| w.and_then(|h| h.finish(&self.program, deadline, self.interrupt.as_ref())))
            .collect()
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Checks, once per pool, that handshake sockets can be made where
/// ipc-channel will make them: a fresh directory in the temporary directory,
/// a socket bound in it, and a path short enough for a socket address.
fn check_handshake_dir() -> Result<(), PoolError> {
    let base = std::env::temp_dir();
    let fail = |cause: std::io::Error| PoolError::HandshakeDir {
        dir: base.clone(),
        cause,
    };
    let dir = tempfile::Builder::new()
        .tempdir_in(&base)
        .map_err(|e| fail(std::io::Error::new(e.kind(), strip_path(&e))))?;
    let socket = dir.path().join("socket");
    // sun_path holds 108 bytes with its terminating NUL; ipc-channel would
    // silently cut a longer path and bind somewhere else.
    if socket.as_os_str().len() >= 108 {
        return Err(fail(std::io::Error::other(
            "the path is too long for a socket (over 100 bytes)",
        )));
    }
    std::os::unix::net::UnixListener::bind(&socket).map_err(fail)?;
    Ok(())
}

/// An error's text without the path tempfile adds to it (ours names it).
fn strip_path(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.split_once(" at path ") {
        Some((cause, _)) => cause.to_string(),
        None => text,
    }
}

/// Runs on the spawner thread: creates the server and the child process.
/// A panic inside ipc-channel (it asserts on some I/O errors) is an error.
fn start(program: &Path) -> Result<Started, PoolError> {
    let server = std::panic::catch_unwind(IpcOneShotServer::<Hello>::new).unwrap_or_else(|panic| {
        Err(std::io::Error::other(format!(
            "ipc-channel failed: {}",
            crate::worker::panic_message(&*panic)
        )))
    });
    let (server, name) = server.map_err(|cause| PoolError::HandshakeDir {
        dir: std::env::temp_dir(),
        cause,
    })?;
    // The socket sits in a fresh 0700 directory; make the socket itself private too.
    let _ = std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600));
    let stdout = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    let child = Command::new(program)
        .arg(WORKER_ARG)
        .arg(&name)
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(stdout)
        .spawn()
        .map_err(|source| PoolError::Spawn {
            program: program.to_path_buf(),
            source,
        })?;
    Ok((child, server, name))
}

/// A handshake under way: the accept runs on its own thread.
struct Handshake {
    child: Child,
    name: String,
    accepted: mpsc::Receiver<Result<Hello, String>>,
}

impl Handshake {
    fn begin(
        mut child: Child,
        server: IpcOneShotServer<Hello>,
        name: String,
    ) -> Result<Self, PoolError> {
        let (tx, rx) = mpsc::channel();
        let accept = move || {
            let result = server
                .accept()
                .map(|(_, hello)| hello)
                .map_err(|e| e.to_string());
            let _ = tx.send(result);
        };
        if let Err(e) = thread::Builder::new()
            .name("procpool-handshake".into())
            .spawn(accept)
        {
            let _ = child.kill();
            let _ = child.wait();
            return Err(PoolError::os("cannot start a handshake thread", e));
        }
        Ok(Handshake {
            child,
            name,
            accepted: rx,
        })
    }

    fn finish(
        mut self,
        program: &Path,
        deadline: Instant,
        interrupt: Option<&InterruptFlag>,
    ) -> Result<WorkerProcess, PoolError> {
        let pid = self.child.id();
        let fail = |reason: String| PoolError::Handshake {
            pid,
            program: program.to_path_buf(),
            reason,
        };
        loop {
            match self.accepted.recv_timeout(Duration::from_millis(5)) {
                Ok(Ok(Hello::Ready {
                    pid: their_pid,
                    requests,
                    replies,
                    tasks,
                })) if their_pid == pid => {
                    return Ok(WorkerProcess {
                        pid,
                        child: self.child,
                        requests,
                        replies,
                        tasks,
                    });
                }
                Ok(Ok(Hello::Ready { pid: their_pid, .. })) => {
                    self.abort();
                    return Err(fail(format!(
                        "handshake came from process {their_pid}, not {pid}"
                    )));
                }
                Ok(Ok(Hello::Cancel)) | Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let reason = match self.child.try_wait() {
                        Ok(Some(status)) => {
                            format!("{} before the handshake", ExitCause::from_status(status))
                        }
                        _ => "the handshake failed".to_string(),
                    };
                    self.abort();
                    return Err(fail(reason));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.release_accept();
                return Err(fail(format!(
                    "{} before the handshake (is it a procpool worker program?)",
                    ExitCause::from_status(status)
                )));
            }
            if let Some(signal) = interrupt.and_then(signal::received) {
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

    /// Connects to our own server so its accept thread ends.
    fn release_accept(&self) {
        if let Ok(tx) = IpcSender::<Hello>::connect(self.name.clone()) {
            let _ = tx.send(Hello::Cancel);
        }
    }

    fn abort(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.release_accept();
    }
}
