//! Where a pool's workers run: processes this program starts on this machine
//! (`local.rs`, which starts them with `spawn.rs`), or the other ranks of an
//! MPI job (`mpi.rs`, feature `mpi`). Both are transports under one policy,
//! `scheduler.rs`.
//!
//! [`Pool`](crate::Pool) talks to either through one internal enum that
//! forwards the few calls the typed API needs: calls, chunks of encoded
//! inputs in, deliveries of encoded results out. Both take the same
//! [`Config`], keep their calls in the same [`Book`](book::Book), and use the
//! same codec, frames and linked task handlers (`src/registry.rs`), so a task
//! gives the same result wherever it runs.

pub(crate) mod book;
mod local;
#[cfg(feature = "mpi")]
pub(crate) mod mpi;
mod pin;
mod scheduler;
mod spawn;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::error::PoolError;
use crate::signal::InterruptFlag;
use book::Book;
pub(crate) use book::{Body, CallId, Delivery, Encoded};
use local::Supervisor;

/// Settings fixed when the pool is built.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub processes: usize,
    pub program: PathBuf,
    pub startup_timeout: Duration,
    pub window: Option<usize>,
    pub tune_allocator: bool,
    pub pin_workers: bool,
    pub timeout: Option<Duration>,
    pub grace: Duration,
    pub retries: u32,
    pub max_tasks_per_child: Option<u64>,
    pub interrupt: Option<InterruptFlag>,
    /// The initializer every worker runs before its first task.
    pub initializer: Option<crate::protocol::InitCall>,
}

/// One worker of a pool: its process id and, on the MPI backend, its rank and
/// host. An [`Outcome`](crate::Outcome) carries the worker's PID; this is how
/// to learn where that PID runs.
///
/// ```
/// # let pool = procpool::doctest::pool(2);
/// let workers = pool.workers();
/// assert_eq!(workers.len(), 2);
/// // Local workers run on this machine and have no rank.
/// assert!(workers.iter().all(|w| w.mpi.is_none()));
/// assert_eq!(workers.iter().map(|w| w.pid).collect::<Vec<_>>(), pool.pids());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerInfo {
    /// The worker's process id, on its own host.
    pub pid: u32,
    /// Its MPI rank and host; `None` for a process of the local backend.
    #[serde(flatten)]
    pub mpi: Option<MpiRank>,
}

/// Where an MPI worker runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MpiRank {
    /// Its rank in `MPI_COMM_WORLD` (1 or more: rank 0 supervises).
    pub rank: u32,
    /// Its host, as `MPI_Get_processor_name` says.
    pub host: String,
}

/// Which backend a [`PoolBuilder`](crate::PoolBuilder) builds.
#[derive(Debug, Clone, Default)]
pub(crate) enum Choice {
    /// Worker processes started by this program.
    #[default]
    Local,
    /// The other ranks of this MPI job; taken by the first pool built.
    #[cfg(feature = "mpi")]
    Mpi(TakeOnce<mpi::MpiRoot>),
}

impl Choice {
    /// How many workers the pool will have, given what the caller asked for.
    pub fn processes(&self, requested: Option<usize>) -> Result<usize, PoolError> {
        match self {
            Choice::Local => Ok(requested
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                .max(1)),
            #[cfg(feature = "mpi")]
            Choice::Mpi(root) => root.with(|root| mpi::worker_count(root, requested)),
        }
    }
}

/// A value that several clones share and the first taker gets, so a cloned
/// [`PoolBuilder`](crate::PoolBuilder) cannot build two pools on one MPI job.
pub(crate) struct TakeOnce<T>(Arc<Mutex<Option<T>>>);

impl<T> Clone for TakeOnce<T> {
    fn clone(&self) -> Self {
        TakeOnce(Arc::clone(&self.0))
    }
}

#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
impl<T> TakeOnce<T> {
    pub fn new(value: T) -> Self {
        TakeOnce(Arc::new(Mutex::new(Some(value))))
    }

    pub fn take(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    pub fn with<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        f(self.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref())
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for TakeOnce<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.with(|value| match value {
            Some(value) => value.fmt(f),
            None => f.write_str("(taken by a pool)"),
        })
    }
}

// A pool may move between threads and be shared, whichever backends are compiled in.
const _: fn() = || {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<crate::Pool>();
    send_and_sync::<crate::PoolBuilder>();
};

/// The pool's engine: local processes or MPI ranks.
pub(crate) enum Backend {
    Local(Box<Supervisor>),
    #[cfg(feature = "mpi")]
    Mpi(Box<mpi::MpiSupervisor>),
}

/// Runs the same expression on whichever supervisor `backend` holds.
macro_rules! forward {
    ($backend:expr, $sup:ident => $call:expr) => {
        match $backend {
            Backend::Local($sup) => $call,
            #[cfg(feature = "mpi")]
            Backend::Mpi($sup) => $call,
        }
    };
}

impl Backend {
    /// Starts the chosen backend's workers (or, on MPI, shakes hands with them).
    pub fn start(choice: Choice, cfg: Config) -> Result<Backend, PoolError> {
        match choice {
            Choice::Local => Supervisor::start(cfg).map(|s| Backend::Local(Box::new(s))),
            #[cfg(feature = "mpi")]
            Choice::Mpi(_) if cfg.initializer.is_some() => Err(mpi::backend_error(
                "an initializer is not supported on MPI workers yet",
            )),
            #[cfg(feature = "mpi")]
            Choice::Mpi(root) => {
                let root = root.take().ok_or_else(|| {
                    mpi::backend_error("this MPI job already serves a pool; build one pool per job")
                })?;
                mpi::MpiSupervisor::start(root, cfg).map(|s| Backend::Mpi(Box::new(s)))
            }
        }
    }

    /// The calls, chunks and deliveries, which both backends keep alike.
    pub(crate) fn book(&self) -> &Book {
        match self {
            Backend::Local(s) => &s.sched.book,
            #[cfg(feature = "mpi")]
            Backend::Mpi(s) => &s.sched.book,
        }
    }

    fn book_mut(&mut self) -> &mut Book {
        match self {
            Backend::Local(s) => &mut s.sched.book,
            #[cfg(feature = "mpi")]
            Backend::Mpi(s) => &mut s.sched.book,
        }
    }

    pub fn open_call(&mut self, id: CallId) -> Result<(), PoolError> {
        self.book_mut().open_call(id)
    }

    pub fn check_task(&self, task: &str) -> Result<(), PoolError> {
        self.book().check_task(task)
    }

    pub fn submit(&mut self, call: CallId, work: Encoded) {
        self.book_mut().submit(call, work);
        // Local workers start it now: a submitted task runs even before anyone
        // waits on it. MPI ranks get work when the pool waits for results.
        match self {
            Backend::Local(s) => s.dispatch(),
            #[cfg(feature = "mpi")]
            Backend::Mpi(_) => {}
        }
    }

    /// One turn of the supervisor's loop: dispatch, wait a little for
    /// replies, deaths and deadlines, and react.
    pub fn turn(&mut self) -> Result<(), PoolError> {
        match self {
            Backend::Local(s) => s.turn(),
            #[cfg(feature = "mpi")]
            Backend::Mpi(s) => s.turn(true),
        }
    }

    /// What wakes a [`turn`](Self::turn) that waits, where the backend
    /// waits on channels (MPI's turn only polls).
    pub fn waker(&self) -> Option<ipc_channel::ipc::IpcSender<()>> {
        match self {
            Backend::Local(s) => Some(s.waker()),
            #[cfg(feature = "mpi")]
            Backend::Mpi(_) => None,
        }
    }

    /// Whether any chunk is queued or out.
    pub fn has_work(&self) -> bool {
        self.book().has_work()
    }

    /// Whether `call` has chunks queued or out.
    pub fn outstanding(&self, call: CallId) -> bool {
        self.book().outstanding(call)
    }

    /// Drops `call` if none of its work has started: whether it was dropped.
    pub fn withdraw(&mut self, call: CallId) -> bool {
        self.book_mut().withdraw(call)
    }

    /// Forgets `call`, whose work is all delivered.
    pub fn forget(&mut self, call: CallId) {
        self.book_mut().forget(call)
    }

    /// The calls with deliveries in since the last call.
    pub fn take_ready(&mut self) -> Vec<CallId> {
        self.book_mut().take_ready()
    }

    /// A delivery for `call` that is in.
    pub fn take_delivered(&mut self, call: CallId) -> Option<Delivery> {
        self.book_mut().take(call)
    }

    /// Drops `call`'s queued work and its deliveries to come; local workers
    /// running its chunks are replaced (MPI ranks finish them).
    pub fn abandon(&mut self, call: CallId) {
        match self {
            Backend::Local(s) => s.abandon(call),
            #[cfg(feature = "mpi")]
            Backend::Mpi(s) => {
                let _kills = s.sched.abandon(call, std::time::Instant::now());
            }
        }
    }

    pub fn pids(&self) -> Vec<u32> {
        forward!(self, s => s.pids())
    }

    pub fn take_events(&mut self) -> (Vec<crate::events::PoolEvent>, u64) {
        self.book_mut().take_events()
    }

    pub fn clock_uncertainty(&self) -> std::time::Duration {
        match self {
            Backend::Local(_) => std::time::Duration::ZERO,
            #[cfg(feature = "mpi")]
            Backend::Mpi(s) => s.clock_uncertainty(),
        }
    }

    /// Every worker with its placement, sorted by rank (MPI) or PID (local).
    pub fn workers(&self) -> Vec<WorkerInfo> {
        match self {
            Backend::Local(s) => s
                .pids()
                .into_iter()
                .map(|pid| WorkerInfo { pid, mpi: None })
                .collect(),
            #[cfg(feature = "mpi")]
            Backend::Mpi(s) => s.workers(),
        }
    }

    pub fn close(&mut self) {
        self.book_mut().close()
    }

    pub fn is_closed(&self) -> bool {
        self.book().is_closed()
    }

    pub fn join(&mut self) -> Result<(), PoolError> {
        forward!(self, s => s.join())
    }

    pub fn terminate(&mut self) {
        forward!(self, s => s.terminate())
    }
}
