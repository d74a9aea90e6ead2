//! MPI (feature `mpi`): a pool whose workers are the other ranks of an MPI
//! job ([`MpiRoot`], and [`PoolBuilder::mpi`](crate::PoolBuilder::mpi)).

pub use crate::backend::mpi::{LAUNCHER_VARS, MpiError, MpiRoot, MpiWorld};
