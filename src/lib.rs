//! procpool: Python's `multiprocessing.Pool` for Rust, with real OS processes.
//!
//! A supervisor starts N copies of a worker program (by default itself),
//! sends them tasks by name with serde-encoded inputs over `ipc-channel`, and
//! gives back results in input order, each tagged with its index, the PID of
//! the worker that ran it, and its timing. A worker that panics, crashes or
//! stalls costs one result an error, never the pool.
//!
//! ```
//! use procpool::{Failure, Pool, Registry, Task};
//!
//! struct Square;
//! impl Task for Square {
//!     const NAME: &'static str = "square";
//!     type Input = i64;
//!     type Output = i64;
//!     fn run(x: i64) -> Result<i64, Failure> {
//!         Ok(x * x)
//!     }
//! }
//!
//! fn main() -> Result<(), procpool::PoolError> {
//!     // A worker is this program started again: this line serves and exits.
//!     procpool::serve_if_requested(&Registry::new().register::<Square>());
//!     let pool = Pool::new(2)?;
//!     for outcome in pool.map(Square, [1, 2, 3])? {
//!         println!("{} -> {:?} (pid {})", outcome.index, outcome.result, outcome.pid);
//!     }
//!     Ok(())
//! }
//! ```
#![deny(missing_docs, missing_debug_implementations)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The pool stands on Linux: workers die with their supervisor by the
// parent-death signal (prctl), and it reads /proc and the monotonic clock
// every process of the machine shares.
#[cfg(not(target_os = "linux"))]
compile_error!("procpool runs on Linux only: it needs prctl(PR_SET_PDEATHSIG) and /proc");

// The pool core: private modules, exported through the list below.
mod backend;
mod chunks;
mod error;
mod events;
mod outcome;
mod pool;
// Reusable shared-memory regions for large frames.
mod region;
mod task;
mod worker;

// The wire protocol, the codec and the platform calls are private; this
// crate's own tests reach them through the `test-support` feature.
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod codec;
#[cfg(not(feature = "test-support"))]
mod codec;
#[cfg(feature = "test-support")]
#[doc(hidden)]
#[allow(missing_debug_implementations)]
pub mod protocol;
#[cfg(not(feature = "test-support"))]
mod protocol;
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod sys;
#[cfg(not(feature = "test-support"))]
mod sys;

#[cfg(feature = "mpi")]
pub mod mpi;
pub mod signal;

pub use backend::{MpiRank, WorkerInfo};
pub use chunks::auto_chunksize;
pub use error::{PoolError, TaskError};
pub use events::PoolEvent;
pub use outcome::Outcome;
pub use pool::{Handle, Imap, Pool, PoolBuilder};
pub use sys::ExitCause;
pub use task::{Failure, Registry, Task};
pub use worker::{at_exit, serve_if_requested};

/// Tasks and set-up for this crate's doctests: each doctest is its own
/// program and its own worker, as a user's program is.
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod doctest {
    use crate::{Failure, Pool, Registry, Task};

    /// `x * x`; overflow is a failure.
    #[derive(Debug, Clone, Copy)]
    pub struct Square;
    impl Task for Square {
        const NAME: &'static str = "square";
        type Input = i64;
        type Output = i64;
        fn run(x: i64) -> Result<i64, Failure> {
            x.checked_mul(x)
                .ok_or_else(|| Failure::msg(format!("{x} squared overflows")))
        }
    }

    /// Sleeps for its input in milliseconds and returns it.
    #[derive(Debug, Clone, Copy)]
    pub struct Sleep;
    impl Task for Sleep {
        const NAME: &'static str = "sleep";
        type Input = u64;
        type Output = u64;
        fn run(ms: u64) -> Result<u64, Failure> {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            Ok(ms)
        }
    }

    /// The sum of a buffer's bytes: a task whose input is large.
    #[derive(Debug, Clone, Copy)]
    pub struct ByteSum;
    impl Task for ByteSum {
        const NAME: &'static str = "bytesum";
        type Input = serde_bytes::ByteBuf;
        type Output = u64;
        fn run(bytes: serde_bytes::ByteBuf) -> Result<u64, Failure> {
            Ok(bytes.iter().map(|&b| b as u64).sum())
        }
    }

    /// Serves these tasks when this doctest runs as a worker.
    pub fn serve() {
        crate::serve_if_requested(
            &Registry::new()
                .register::<Square>()
                .register::<Sleep>()
                .register::<ByteSum>(),
        );
    }

    /// Serves when run as a worker, else a pool of `processes` workers that
    /// are this doctest's program.
    pub fn pool(processes: usize) -> Pool {
        serve();
        Pool::builder()
            .processes(processes)
            .build()
            .expect("a pool for a doctest")
    }
}
