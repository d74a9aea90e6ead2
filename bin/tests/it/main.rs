//! Integration tests: one test binary, one module per theme. Every test drives
//! the real `procpool` binary or the real library with that binary as the
//! worker program.

mod util;

mod cli;
#[cfg(feature = "mpi")]
mod cluster;
mod docs;
mod edges;
mod edges_flip;
mod edges_jobs;
mod failures;
mod flip;
mod jobs;
#[cfg(feature = "mpi")]
mod mpi;
mod payload;
mod pi;
mod pool;
mod signals;
mod slurm;
#[cfg(feature = "mpi")]
mod slurm_mpi;
mod terminal;
mod timeline;
