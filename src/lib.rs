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
#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

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
#[cfg(feature = "timeline")]
pub mod timeline;
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

pub mod signal;
pub mod tasks;

// The tutorial's domains, each behind its feature (all on by default).
#[cfg(feature = "flip")]
pub mod flip;
#[cfg(feature = "jobs")]
pub mod jobs;
#[cfg(feature = "mpi")]
pub mod mpi;
#[cfg(feature = "pi")]
pub mod pi;
#[cfg(any(feature = "pi", feature = "timeline"))]
pub mod plot;
// Files written whole or not at all, for the domains that write them.
#[cfg(any(feature = "flip", feature = "pi", feature = "timeline"))]
mod write;

pub use backend::{MpiRank, WorkerInfo};
pub use chunks::auto_chunksize;
pub use error::{PoolError, TaskError};
pub use events::PoolEvent;
pub use outcome::Outcome;
pub use pool::{Handle, Imap, Pool, PoolBuilder};
pub use sys::ExitCause;
pub use task::{Failure, Registry, Task};
#[cfg(feature = "timeline")]
pub use timeline::Timeline;
pub use worker::serve_if_requested;

/// The `procpool` program built next to this crate, for doctests and tests
/// that need a worker program knowing the built-in tasks: `$PROCPOOL_WORKER`
/// if set, else the newest of `target/{debug,release}/procpool` (so both
/// `cargo test` and `cargo test --release` find theirs).
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub fn doctest_program() -> std::path::PathBuf {
    if let Some(program) = std::env::var_os("PROCPOOL_WORKER") {
        return program.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    ["debug", "release"]
        .iter()
        .map(|profile| target.join(profile).join("procpool"))
        .max_by_key(|p| modified(p))
        .expect("two candidates")
}

/// A pool on [`doctest_program`], for doctests.
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub fn doctest_pool(processes: usize) -> Pool {
    Pool::builder()
        .processes(processes)
        .worker_program(doctest_program())
        .build()
        .expect("doctests need the procpool binary: run them with cargo test")
}
