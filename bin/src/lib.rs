//! The tutorial's domains behind the `procpool` command: Monte Carlo pi,
//! flipping photos, job files with a status TSV and Slurm arrays, the
//! pictures of a run, the MPI examples, and the tasks the command's workers
//! run. The command (`main.rs`) only parses, calls these and prints.
//!
//! This library is the command's own: it has no stable API. Programs that
//! want a process pool depend on the `procpool` crate.
#![deny(missing_docs, missing_debug_implementations)]

pub mod flip;
pub mod jobs;
#[cfg(feature = "mpi")]
pub mod mpi_demos;
pub mod pi;
pub mod plot;
pub mod tasks;
pub mod timeline;
// Files written whole or not at all, for the domains that write them.
mod write;

/// A pool for this package's doctests: the doctest's own program is the
/// worker, serving the command's tasks ([`tasks`]).
#[doc(hidden)]
pub fn doctest_pool(processes: usize) -> procpool::Pool {
    procpool::init();
    procpool::Pool::builder()
        .processes(processes)
        .build()
        .expect("a pool for a doctest")
}
