//! procpool: Python's `multiprocessing.Pool` for Rust, with real OS processes.
//!
//! A supervisor starts N copies of a worker program (by default itself),
//! sends them tasks by name with serde-encoded inputs over `ipc-channel`, and
//! gives back results in input order, each tagged with its index, the PID of
//! the worker that ran it, and its timing. A worker that panics, crashes or
//! stalls costs one result an error, never the pool.
//!
//! ```
//! use procpool::tasks::Square;
//! # let pool = procpool::doctest_pool(2);
//! // In your program: procpool::serve_if_requested(&registry) first thing in
//! // main, then procpool::Pool::new(4)?.
//! for outcome in pool.map(Square, [1, 2, 3]).unwrap() {
//!     println!("{} -> {:?} (pid {})", outcome.index, outcome.result, outcome.pid);
//! }
//! ```
#![deny(missing_docs)]

pub mod backend;
pub mod codec;
mod error;
pub mod flip;
pub mod jobs;
pub mod pi;
pub mod plot;
mod pool;
pub mod protocol;
pub mod signal;
mod spawn;
mod supervisor;
pub mod sys;
mod task;
pub mod tasks;
pub mod timeline;
mod worker;

pub use backend::{MpiRank, WorkerInfo};
pub use error::{PoolError, TaskError};
pub use pool::{Handle, Imap, Outcome, Pool, PoolBuilder, auto_chunksize};
pub use sys::ExitCause;
pub use task::{Failure, Registry, Task};
pub use timeline::{PoolEvent, Timeline};
pub use worker::serve_if_requested;

/// The `procpool` program built next to this crate, for doctests and tests
/// that need a worker program knowing the built-in tasks.
#[doc(hidden)]
pub fn doctest_program() -> std::path::PathBuf {
    if let Some(program) = std::env::var_os("PROCPOOL_WORKER") {
        return program.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("debug").join("procpool")
}

/// A pool on [`doctest_program`], for doctests.
#[doc(hidden)]
pub fn doctest_pool(processes: usize) -> Pool {
    Pool::builder()
        .processes(processes)
        .worker_program(doctest_program())
        .build()
        .expect("doctests need the procpool binary: run them with cargo test")
}
