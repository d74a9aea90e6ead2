//! `--backend`: the pool builder for local processes or for an MPI job.
//!
//! Under `mpirun -n N procpool --backend mpi <subcommand>`, every rank parses
//! the same command line and arrives here. Ranks 1..N-1 serve tasks until
//! rank 0 is done and then exit; only rank 0 goes on to run the subcommand,
//! so only rank 0 prints results.

use procpool::{Pool, PoolBuilder};

use crate::cli::{BackendKind, Global};

/// A pool builder for the chosen backend.
///
/// # Errors
///
/// `--backend mpi` without an MPI launcher, with one rank, or in a build
/// without the `mpi` feature.
pub fn builder(global: &Global) -> anyhow::Result<PoolBuilder> {
    match global.backend {
        BackendKind::Local => Ok(Pool::builder()),
        BackendKind::Mpi => mpi(),
    }
}

#[cfg(feature = "mpi")]
fn mpi() -> anyhow::Result<PoolBuilder> {
    use anyhow::Context;
    match procpool::mpi::MpiRoot::init().context("--backend mpi")? {
        Some(root) => Ok(Pool::builder().mpi(root)),
        // A worker rank: it served until rank 0 was done, and MPI is finalized.
        None => std::process::exit(i32::from(crate::run::exit::OK)),
    }
}

#[cfg(not(feature = "mpi"))]
fn mpi() -> anyhow::Result<PoolBuilder> {
    anyhow::bail!("--backend mpi: {}", crate::commands::mpi::NOT_BUILT)
}
