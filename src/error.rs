//! Error types: [`TaskError`] for one input, [`PoolError`] for the pool.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::sys::ExitCause;

/// Why one task produced no output. The pool goes on after every one of these.
///
/// ```
/// use procpool::{ExitCause, TaskError};
/// let e = TaskError::WorkerDied { pid: 4711, cause: ExitCause::Signal(9) };
/// assert_eq!(e.to_string(), "worker 4711 died: killed by signal 9 (SIGKILL)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The task returned an error.
    #[error("failed: {message}")]
    Failed {
        /// The task's own message.
        message: String,
    },
    /// The task panicked.
    #[error("panicked{}: {message}", location.as_deref().map(|l| format!(" at {l}")).unwrap_or_default())]
    Panicked {
        /// The panic message.
        message: String,
        /// `file:line:column` of the panic, when known.
        location: Option<String>,
    },
    /// The worker running the task died (signal, abort, `exit`) before answering.
    #[error("worker {pid} died: {cause}")]
    WorkerDied {
        /// The worker's process id.
        pid: u32,
        /// How it ended.
        cause: ExitCause,
    },
    /// The task ran longer than the pool's timeout; its worker was stopped.
    #[error("worker {pid} timed out after {:.3}s and was stopped", after.as_secs_f64())]
    TimedOut {
        /// The worker's process id.
        pid: u32,
        /// The timeout that expired.
        after: Duration,
    },
    /// The worker refused the chunk or sent bytes that do not decode.
    #[error("worker {pid}: {message}")]
    Protocol {
        /// The worker's process id.
        pid: u32,
        /// What was wrong.
        message: String,
    },
    /// The pool stopped while a worker that cannot be stopped alone (an MPI
    /// rank) ran the task, and it did not answer within the grace period:
    /// the task will not finish (MPI ends the job, every rank with it).
    #[error("worker {pid}: {message}")]
    Lost {
        /// The worker's process id.
        pid: u32,
        /// Which worker, where, and how long it was waited for.
        message: String,
    },
    /// The input could not be encoded to be sent; the other inputs still run.
    #[error("input cannot be encoded: {message}")]
    Encode {
        /// The codec's message.
        message: String,
    },
    /// The pool stopped (interrupted or terminated) before the task ran.
    #[error("cancelled before it ran")]
    Cancelled,
    /// [`Pool::terminate`](crate::Pool::terminate) killed its worker after
    /// the task was sent to it, before its result came.
    #[error("stopped by terminate() before it finished")]
    Terminated,
}

/// Why the pool itself could not go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The worker program could not be started.
    #[error("cannot start worker program {}", program.display())]
    Spawn {
        /// The program that was executed.
        program: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A worker started but did not complete the handshake.
    #[error("worker {pid} ({}) did not start: {reason}", program.display())]
    Handshake {
        /// The worker's process id.
        pid: u32,
        /// The program that was executed.
        program: PathBuf,
        /// What happened instead.
        reason: String,
    },
    /// Handshake sockets cannot be made in the temporary directory (`TMPDIR`).
    #[error("cannot make a handshake socket in {} (the temporary directory; set TMPDIR to a writable local directory): {cause}", dir.display())]
    HandshakeDir {
        /// The temporary directory.
        dir: PathBuf,
        /// Why not.
        cause: std::io::Error,
    },
    /// A resource limit is too low for the pool asked for.
    #[error(
        "{what} need about {needed} {name}, but the limit is {limit}; raise it or use fewer processes"
    )]
    Limit {
        /// What needs the resource.
        what: String,
        /// About how much of it.
        needed: u64,
        /// The limit in force.
        limit: u64,
        /// The resource.
        name: &'static str,
    },
    /// The pool's initializer failed in a worker: at `build()`, or in a
    /// replacement, which stops the pool (it would fail in every one).
    #[error("initializer {name} failed{}: {message}", pid.map(|p| format!(" in worker {p}")).unwrap_or_default())]
    Initializer {
        /// The initializer's name.
        name: String,
        /// The worker's process id; `None` when its arguments could not be
        /// encoded, before any worker started.
        pid: Option<u32>,
        /// Its message, or its panic's.
        message: String,
    },
    /// Replacement workers kept dying before they could take work.
    #[error("workers keep dying at start ({attempts} in a row); last: {last}")]
    WorkersKeepDying {
        /// How many starts failed in a row.
        attempts: u32,
        /// The last failure.
        last: Box<PoolError>,
    },
    /// The worker program does not know the task.
    #[error("worker program {} has no task {name:?} (it knows: {})", program.display(), known.join(", "))]
    UnknownTask {
        /// The task that was asked for.
        name: String,
        /// The worker program.
        program: PathBuf,
        /// The tasks it does know.
        known: Vec<String>,
    },
    /// The worker program has a task of this name with other input or
    /// output types (a stale worker program, or two tasks of one name):
    /// found in the handshake, before any input is sent.
    #[error("task {name:?} has types {here} here but {there} in worker program {}", program.display())]
    TaskTypes {
        /// The task's name.
        name: String,
        /// Its types in this program.
        here: String,
        /// Its types in the worker program.
        there: String,
        /// The worker program.
        program: PathBuf,
    },
    /// Two tasks of this program have one name, so a worker could not tell
    /// which one is meant (give one a `name = "..."` of its own).
    ///
    /// ```standalone_crate
    /// #[procpool::task(name = "twin")]
    /// fn first(x: i64) -> i64 { x }
    /// #[procpool::task(name = "twin")]
    /// fn second(x: u8) -> u8 { x }
    ///
    /// procpool::init();
    /// let error = procpool::Pool::new(1).unwrap_err().to_string();
    /// // The linker decides which of the two comes first.
    /// let one_way = "two tasks are named \"twin\": one takes i64 -> i64, the other u8 -> u8";
    /// let other_way = "two tasks are named \"twin\": one takes u8 -> u8, the other i64 -> i64";
    /// assert!(error == one_way || error == other_way, "{error}");
    /// ```
    #[error("two tasks are named {name:?}: one takes {first}, the other {second}")]
    DuplicateTask {
        /// The name.
        name: String,
        /// The types of the first.
        first: String,
        /// The types of the second.
        second: String,
    },
    /// The pool was interrupted by a signal; no new work was started.
    #[error("interrupted by {}", crate::sys::signal_name(*signal))]
    Interrupted {
        /// The signal number (SIGINT 2, SIGTERM 15).
        signal: i32,
    },
    /// A builder setting of 0 where at least 1 is needed (`processes`,
    /// `chunksize`, `window`, `max_tasks_per_child`), as Python's
    /// `Pool(0)` raises `ValueError`.
    #[error("{setting} must be at least 1, not 0")]
    Zero {
        /// The setting, as the builder's method names it.
        setting: &'static str,
    },
    /// The pool was closed or terminated; it takes no new work.
    #[error("the pool is closed")]
    Closed,
    /// A task failed, where the call returns values only
    /// ([`Pool::map`](crate::Pool::map), [`Pool::apply`](crate::Pool::apply)).
    #[error("task {index} {error}")]
    Task {
        /// The input's position.
        index: u64,
        /// Why it failed.
        error: TaskError,
    },
    /// The pool is used in a child process forked after it was built: its
    /// supervisor thread and workers are the parent's.
    #[error(
        "this pool was built by process {owner}; process {pid}, forked from it, cannot use it (build a pool of its own)"
    )]
    Forked {
        /// The process that built the pool.
        owner: u32,
        /// This process.
        pid: u32,
    },
    /// `join` was called before `close`.
    #[error("join() waits for a closed pool: call close() first")]
    NotClosed,
    /// A backend other than local processes (MPI) could not start or go on.
    #[error("{backend} backend: {message}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// What went wrong, in one line.
        message: String,
    },
    /// An operating-system call failed.
    #[error("{what}")]
    Os {
        /// What was being done.
        what: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl PoolError {
    /// The same error again, for each of several calls it ends (the
    /// operating system's errors keep their kind and message).
    pub(crate) fn duplicate(&self) -> PoolError {
        let io = |e: &std::io::Error| std::io::Error::new(e.kind(), e.to_string());
        match self {
            PoolError::Spawn { program, source } => PoolError::Spawn {
                program: program.clone(),
                source: io(source),
            },
            PoolError::Handshake {
                pid,
                program,
                reason,
            } => PoolError::Handshake {
                pid: *pid,
                program: program.clone(),
                reason: reason.clone(),
            },
            PoolError::HandshakeDir { dir, cause } => PoolError::HandshakeDir {
                dir: dir.clone(),
                cause: io(cause),
            },
            PoolError::Limit {
                what,
                needed,
                limit,
                name,
            } => PoolError::Limit {
                what: what.clone(),
                needed: *needed,
                limit: *limit,
                name,
            },
            PoolError::Initializer { name, pid, message } => PoolError::Initializer {
                name: name.clone(),
                pid: *pid,
                message: message.clone(),
            },
            PoolError::WorkersKeepDying { attempts, last } => PoolError::WorkersKeepDying {
                attempts: *attempts,
                last: Box::new(last.duplicate()),
            },
            PoolError::UnknownTask {
                name,
                program,
                known,
            } => PoolError::UnknownTask {
                name: name.clone(),
                program: program.clone(),
                known: known.clone(),
            },
            PoolError::TaskTypes {
                name,
                here,
                there,
                program,
            } => PoolError::TaskTypes {
                name: name.clone(),
                here: here.clone(),
                there: there.clone(),
                program: program.clone(),
            },
            PoolError::DuplicateTask {
                name,
                first,
                second,
            } => PoolError::DuplicateTask {
                name: name.clone(),
                first: first.clone(),
                second: second.clone(),
            },
            PoolError::Interrupted { signal } => PoolError::Interrupted { signal: *signal },
            PoolError::Zero { setting } => PoolError::Zero { setting },
            PoolError::Closed => PoolError::Closed,
            PoolError::Task { index, error } => PoolError::Task {
                index: *index,
                error: error.clone(),
            },
            PoolError::NotClosed => PoolError::NotClosed,
            PoolError::Forked { owner, pid } => PoolError::Forked {
                owner: *owner,
                pid: *pid,
            },
            PoolError::Backend { backend, message } => PoolError::Backend {
                backend,
                message: message.clone(),
            },
            PoolError::Os { what, source } => PoolError::Os {
                what: what.clone(),
                source: io(source),
            },
        }
    }

    pub(crate) fn os(what: impl fmt::Display, source: std::io::Error) -> Self {
        PoolError::Os {
            what: what.to_string(),
            source,
        }
    }
}

/// Why a `map` ended early, with what it had finished: the outputs (or
/// outcomes) before the error, in input order. Converts into its
/// [`PoolError`] with `?`.
///
/// ```
/// # use procpool::doctest::Square;
/// # let pool = procpool::doctest::pool(2);
/// let stopped = pool.map(Square, [2, 3, i64::MAX, 4]).unwrap_err();
/// assert_eq!(stopped.finished, [4, 9]);
/// assert!(matches!(stopped.error, procpool::PoolError::Task { index: 2, .. }));
/// ```
pub struct MapError<T> {
    /// What finished before the error, in input order: for
    /// [`map`](crate::Pool::map) the outputs of the inputs before the first
    /// that has none; for [`map_outcomes`](crate::Pool::map_outcomes) every
    /// outcome that came back (gaps are the inputs that did not).
    pub finished: Vec<T>,
    /// What ended the map.
    pub error: PoolError,
}

impl<T> fmt::Display for MapError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

// The error itself, said once: its cause is the pool error's cause.
impl<T> std::error::Error for MapError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

impl<T> fmt::Debug for MapError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapError")
            .field("finished", &self.finished.len())
            .field("error", &self.error)
            .finish()
    }
}

impl<T> From<MapError<T>> for PoolError {
    fn from(stopped: MapError<T>) -> Self {
        stopped.error
    }
}
