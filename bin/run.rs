//! Building the pool from the global options and driving one map through it,
//! with results handed to the printer as they arrive.

use std::time::{Duration, Instant};

use procpool::signal::{self, InterruptFlag};
use procpool::{Outcome, Pool, PoolError, Task};

use crate::cli::Global;
use crate::output::Printer;

/// Exit codes, one table for the whole program (see the README).
pub mod exit {
    /// Every task succeeded.
    pub const OK: u8 = 0;
    /// The run completed but at least one task failed.
    pub const TASKS_FAILED: u8 = 1;
    /// Bad usage or a set-up error: nothing, or not everything, could run.
    pub const SETUP: u8 = 2;
    /// Interrupted by a signal: 128 + its number (130 SIGINT, 143 SIGTERM).
    pub fn signal(signal: i32) -> u8 {
        (128 + signal).clamp(0, 255) as u8
    }
}

/// The pool for this run, and the flag that SIGINT and SIGTERM set.
pub fn build_pool(global: &Global) -> anyhow::Result<(Pool, InterruptFlag)> {
    let mut builder = crate::backend::builder(global)?;
    let interrupt = signal::install()?;
    builder = builder
        .retries(global.retries)
        .interrupt_flag(interrupt.clone());
    if let Some(n) = global.processes {
        builder = builder.processes(n as usize);
    }
    if let Some(n) = global.chunksize {
        builder = builder.chunksize(n as usize);
    }
    if let Some(t) = global.timeout {
        builder = builder.timeout(t);
    }
    if let Some(n) = global.maxtasksperchild {
        builder = builder.max_tasks_per_child(n);
    }
    Ok((builder.build()?, interrupt))
}

/// What came back from one map.
pub struct Finished<O> {
    /// The outcomes that came back, in input order.
    pub outcomes: Vec<Outcome<O>>,
    /// How many inputs there were.
    pub total: usize,
    /// Why the run stopped early, if it did.
    pub stopped: Option<PoolError>,
    /// Wall time of the whole map.
    pub elapsed: Duration,
}

impl<O> Finished<O> {
    pub fn failed(&self) -> impl Iterator<Item = &Outcome<O>> {
        self.outcomes.iter().filter(|o| o.result.is_err())
    }

    /// The exit code this run deserves.
    pub fn exit_code(&self) -> u8 {
        match &self.stopped {
            Some(PoolError::Interrupted { signal }) => exit::signal(*signal),
            Some(_) => exit::SETUP,
            None if self.failed().next().is_some() => exit::TASKS_FAILED,
            None => exit::OK,
        }
    }
}

/// Maps `task` over `inputs`, in completion order with `--unordered`, handing
/// each outcome to `each` as it arrives.
pub fn drive<T: Task>(
    pool: &Pool,
    global: &Global,
    task: T,
    inputs: Vec<T::Input>,
    printer: &mut Printer,
    mut each: impl FnMut(&mut Printer, &Outcome<T::Output>),
) -> Finished<T::Output> {
    let start = Instant::now();
    let total = inputs.len();
    let chunksize = global.chunksize.map_or_else(
        || procpool::auto_chunksize(total, pool.processes()),
        |c| c as usize,
    );
    printer.place_workers(pool.workers());
    let mut outcomes = Vec::with_capacity(total);
    let mut stopped = None;
    let results = if global.unordered {
        pool.imap_unordered(task, inputs)
    } else {
        pool.imap(task, inputs)
    };
    for result in results.chunksize(chunksize) {
        match result {
            Ok(outcome) => {
                each(printer, &outcome);
                outcomes.push(outcome);
            }
            Err(e) => stopped = Some(e),
        }
    }
    outcomes.sort_by_key(|o| o.index);
    Finished {
        outcomes,
        total,
        stopped,
        elapsed: start.elapsed(),
    }
}
