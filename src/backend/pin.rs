//! Binding workers to CPUs of their own.
//!
//! When a pool has no more workers than the CPUs this program may use (its
//! inherited set: `taskset`, a Slurm allocation, a cgroup's cpuset), each
//! worker is bound to one of them, as MPI and OpenMP runtimes bind their
//! ranks. Left free, the kernel sometimes wakes two workers on one CPU and
//! migrates one a moment later; for tasks of a millisecond that costs a
//! third of the run. With more workers than CPUs nothing is bound: the
//! kernel balances them better than a fixed share would.
//!
//! Each CPU is handed out as a [`Claim`] the worker holds for its life, and
//! a new worker (a replacement) gets the CPU that fewest live workers hold.

use std::sync::Arc;

use nix::sched::{CpuSet, sched_getaffinity};
use nix::unistd::Pid;

/// The CPUs workers are bound to, one each.
pub(crate) struct Cpus {
    /// A CPU's number and the count its claims share.
    slots: Vec<(usize, Arc<()>)>,
}

/// A worker's hold on its CPU; dropped with the worker, it frees the CPU.
#[derive(Debug)]
pub(crate) struct Claim {
    cpu: usize,
    _held: Arc<()>,
}

impl Cpus {
    /// The CPUs this process may run on, if `workers` workers fit one to a
    /// CPU; `None` when they do not, or the set cannot be read.
    pub fn for_workers(workers: usize) -> Option<Cpus> {
        let allowed = sched_getaffinity(Pid::from_raw(0)).ok()?;
        let cpus: Vec<usize> = (0..CpuSet::count())
            .filter(|&cpu| allowed.is_set(cpu).unwrap_or(false))
            .collect();
        (workers >= 1 && workers <= cpus.len()).then(|| Cpus {
            slots: cpus.into_iter().map(|cpu| (cpu, Arc::new(()))).collect(),
        })
    }

    /// The CPU that fewest live workers hold, claimed for one more.
    pub fn claim(&self) -> Claim {
        let (cpu, held) = self
            .slots
            .iter()
            .min_by_key(|(_, held)| Arc::strong_count(held))
            .expect("a set of CPUs is never empty");
        Claim {
            cpu: *cpu,
            _held: Arc::clone(held),
        }
    }
}

impl Claim {
    /// The set holding just this CPU, for `sched_setaffinity` in the child.
    pub fn set(&self) -> CpuSet {
        let mut set = CpuSet::new();
        // The CPU came from such a set, so it is below its size.
        let _ = set.set(self.cpu);
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_are_spread_one_to_a_cpu_and_a_freed_cpu_is_given_again() {
        let Some(cpus) = Cpus::for_workers(1) else {
            panic!("this process may run on no CPU");
        };
        let n = cpus.slots.len();
        let claims: Vec<Claim> = (0..n).map(|_| cpus.claim()).collect();
        let mut taken: Vec<usize> = claims.iter().map(|c| c.cpu).collect();
        taken.sort_unstable();
        taken.dedup();
        assert_eq!(taken.len(), n, "each worker has a CPU of its own");
        // The worker that held the last CPU is gone: its replacement gets it.
        let mut claims = claims;
        let freed = claims.pop().map(|c| c.cpu);
        assert_eq!(Some(cpus.claim().cpu), freed);
    }

    #[test]
    fn more_workers_than_cpus_are_not_bound() {
        assert!(Cpus::for_workers(CpuSet::count() + 1).is_none());
        assert!(Cpus::for_workers(0).is_none());
    }
}
