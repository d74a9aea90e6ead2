//! Building the pool from the global options and driving one map through it,
//! with results handed to the printer as they arrive.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::OnceLock;
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
    /// Interrupted by a signal: 128 + its number (129 SIGHUP, 130 SIGINT,
    /// 143 SIGTERM).
    pub fn signal(signal: i32) -> u8 {
        (128 + signal).clamp(0, 255) as u8
    }
}

/// How long a run may take to stop after a signal before the watchdog ends
/// it anyway (with the same exit code), within the two seconds promised.
const STOP_WITHIN: Duration = Duration::from_millis(1500);

static INTERRUPT: OnceLock<InterruptFlag> = OnceLock::new();

/// Installs the stop signals' handlers, first thing: from then on a signal
/// sets the flag every pool and long computation watches, a second one ends
/// the program at once, and a watchdog ends a run that has not stopped
/// [`STOP_WITHIN`] after the first (a stage that does not watch the flag).
pub fn install_signals() -> anyhow::Result<()> {
    let flag = signal::install()?;
    let watched = flag.clone();
    let _ = INTERRUPT.set(flag);
    std::thread::Builder::new()
        .name("procpool-watchdog".into())
        .spawn(move || {
            let signal = loop {
                if let Some(signal) = watched.received() {
                    break signal;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            std::thread::sleep(STOP_WITHIN);
            crate::live::clear();
            crate::warn!(
                "procpool: interrupted by {}; stopped before the run could finish",
                procpool::signal::signal_name(signal)
            );
            // Workers die with this process (their parent-death signal).
            std::process::exit(i32::from(exit::signal(signal)));
        })?;
    Ok(())
}

/// The flag a stop signal sets (see [`install_signals`]).
pub fn interrupt() -> InterruptFlag {
    INTERRUPT.get_or_init(InterruptFlag::default).clone()
}

/// The pool for this run, and the flag that a stop signal sets.
pub fn build_pool(global: &Global) -> anyhow::Result<(Pool, InterruptFlag)> {
    let mut builder = crate::backend::builder(global)?;
    let interrupt = interrupt();
    builder = builder
        .retries(global.retries)
        .tune_allocator(true)
        .pin_workers(!global.no_pin)
        .interrupt_flag(interrupt.clone());
    if crate::live::wanted(global) {
        builder = builder.on_progress(crate::live::report);
    }
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
    let pool = builder.build()?;
    crate::recording::follow(&pool);
    Ok((pool, interrupt))
}

/// How one map went: counts only, so memory stays flat however many
/// inputs there are (the outcomes themselves went to the printer).
pub struct Finished {
    /// How many inputs there were.
    pub total: u64,
    /// How many tasks succeeded.
    pub ok: u64,
    /// How many tasks failed.
    pub failed: u64,
    /// Why the run stopped early, if it did.
    pub stopped: Option<PoolError>,
    /// Wall time of the whole map.
    pub elapsed: Duration,
    /// The indices that finished, as ranges.
    pub done: Ranges,
}

impl Finished {
    /// The indices that did not finish, as `3,5,8-11` (the syntax of `jobs
    /// --only`), cut short after a few dozen ranges: what a rerun needs.
    pub fn unfinished(&self) -> String {
        const SHOWN: usize = 40;
        let gaps = self.done.gaps(self.total);
        let mut text: Vec<String> = gaps
            .iter()
            .take(SHOWN)
            .map(|r| match r.end - r.start {
                1 => r.start.to_string(),
                _ => format!("{}-{}", r.start, r.end - 1),
            })
            .collect();
        if gaps.len() > SHOWN {
            text.push(format!("... ({} ranges in all)", gaps.len()));
        }
        text.join(",")
    }

    /// How many tasks finished, well or not.
    pub fn finished(&self) -> u64 {
        self.ok + self.failed
    }

    /// How many inputs never ran (or were stopped while running).
    pub fn not_run(&self) -> u64 {
        self.total.saturating_sub(self.finished())
    }

    /// The exit code this run deserves.
    pub fn exit_code(&self) -> u8 {
        match &self.stopped {
            Some(PoolError::Interrupted { signal }) => exit::signal(*signal),
            Some(_) => exit::SETUP,
            None if self.failed > 0 => exit::TASKS_FAILED,
            None => exit::OK,
        }
    }
}

/// The most inputs per message the command line sends by default: enough
/// to make messages cheap, few enough that results stream out steadily and
/// the look-ahead (four chunks per worker) stays small in memory.
const MAX_AUTO_CHUNK: usize = 4096;

/// Maps `task` over `inputs` (read lazily; `total` of them, counted as
/// `unit` on the live line), in completion order with `--unordered`,
/// handing each outcome with its input to `each` as it arrives. After a
/// signal, the outcomes that had come back are still handed over (in input
/// order, with gaps) before the run reports its stop. The live line is
/// gone when it returns.
pub fn drive<T: Task>(
    pool: &Pool,
    global: &Global,
    task: T,
    inputs: impl IntoIterator<Item = T::Input>,
    (total, unit): (u64, &str),
    printer: &mut Printer,
    mut each: impl FnMut(&mut Printer, &T::Input, &Outcome<T::Output>),
) -> Finished
where
    T::Input: Clone + Label,
{
    let mut recording = crate::recording::lock();
    let start = Instant::now();
    let chunksize = global.chunksize.map_or_else(
        || {
            let total = usize::try_from(total).unwrap_or(usize::MAX);
            procpool::auto_chunksize(total, pool.processes()).min(MAX_AUTO_CHUNK)
        },
        |c| c as usize,
    );
    printer.place_workers(pool.workers());
    let line = crate::live::start(global, unit, Some(total), pool.processes(), chunksize);
    // The inputs out with the workers, to go with their outcomes.
    let out = RefCell::new(Sent::default());
    let tracked = inputs
        .into_iter()
        .inspect(|input| out.borrow_mut().push(input.clone()));
    let results = if global.unordered {
        pool.imap_unordered(task, tracked)
    } else {
        pool.imap(task, tracked)
    };
    let mut finished = Finished {
        total,
        ok: 0,
        failed: 0,
        stopped: None,
        elapsed: Duration::ZERO,
        done: Ranges::default(),
    };
    for result in results.chunksize(chunksize).outcomes() {
        match result {
            Ok(outcome) => {
                let input = out
                    .borrow_mut()
                    .take(outcome.index)
                    .expect("every outcome's input was sent");
                finished.done.insert(outcome.index);
                if outcome.result.is_ok() {
                    finished.ok += 1;
                } else {
                    finished.failed += 1;
                }
                if let Some(timeline) = recording.as_deref_mut() {
                    crate::recording::record(timeline, &outcome, || input.label());
                }
                each(printer, &input, &outcome);
            }
            Err(e) => finished.stopped = Some(e),
        }
    }
    drop(line);
    drop(recording);
    crate::recording::record_events(pool);
    finished.elapsed = start.elapsed();
    finished
}

/// The inputs sent and not yet answered, by index: indices are consecutive
/// and answered nearly in order, so a queue from the oldest unanswered one
/// holds them without hashing (the look-ahead bounds its length).
struct Sent<I> {
    /// The index of the queue's front.
    first: u64,
    inputs: VecDeque<Option<I>>,
}

impl<I> Default for Sent<I> {
    fn default() -> Self {
        Sent {
            first: 0,
            inputs: VecDeque::new(),
        }
    }
}

impl<I> Sent<I> {
    /// The next input, whose index follows the last one's.
    fn push(&mut self, input: I) {
        self.inputs.push_back(Some(input));
    }

    /// Input `index`, once: its outcome is in.
    fn take(&mut self, index: u64) -> Option<I> {
        let slot = usize::try_from(index.checked_sub(self.first)?).ok()?;
        let input = self.inputs.get_mut(slot)?.take();
        while let Some(None) = self.inputs.front() {
            self.inputs.pop_front();
            self.first += 1;
        }
        input
    }
}

/// A set of indices kept as sorted, disjoint ranges: a run's finished tasks
/// take a few ranges however many there are (results come back nearly in
/// order).
#[derive(Debug, Default)]
pub struct Ranges(Vec<std::ops::Range<u64>>);

impl Ranges {
    /// Adds `index`, merging with its neighbours.
    pub fn insert(&mut self, index: u64) {
        let ranges = &mut self.0;
        // The first range that ends at or after `index`.
        let at = ranges.partition_point(|r| r.end < index);
        match ranges.get_mut(at) {
            Some(r) if r.contains(&index) => {}
            Some(r) if r.end == index => {
                r.end += 1;
                if ranges
                    .get(at + 1)
                    .is_some_and(|next| next.start == index + 1)
                {
                    let next = ranges.remove(at + 1);
                    ranges[at].end = next.end;
                }
            }
            Some(r) if r.start == index + 1 => r.start = index,
            _ => ranges.insert(at, index..index + 1),
        }
    }

    /// The ranges of `0..total` not in the set.
    pub fn gaps(&self, total: u64) -> Vec<std::ops::Range<u64>> {
        let mut gaps = Vec::new();
        let mut from = 0;
        for r in &self.0 {
            if r.start > from {
                gaps.push(from..r.start);
            }
            from = r.end;
        }
        if from < total {
            gaps.push(from..total);
        }
        gaps
    }
}

/// What a task's bar in a `--timeline` chart shows, and its trace's `input`.
pub trait Label {
    /// A short text for this input; `None` shows the task's index.
    fn label(&self) -> Option<String> {
        None
    }
}

impl Label for i64 {
    fn label(&self) -> Option<String> {
        Some(self.to_string())
    }
}

impl Label for procpool_cli::tasks::WhoamiInput {
    fn label(&self) -> Option<String> {
        Some(self.x.to_string())
    }
}

impl Label for procpool_cli::tasks::PiInput {
    fn label(&self) -> Option<String> {
        Some(format!("seed {}", self.seed))
    }
}

impl Label for u64 {
    fn label(&self) -> Option<String> {
        Some(format!("{self} ms"))
    }
}

impl Label for (procpool_cli::tasks::Misbehavior, u64) {
    fn label(&self) -> Option<String> {
        Some(format!("{:?}", self.0).to_lowercase())
    }
}

impl Label for procpool_cli::flip::FlipJob {
    fn label(&self) -> Option<String> {
        self.input
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::Ranges;

    #[test]
    fn sent_inputs_are_taken_once_in_any_order() {
        let mut sent = super::Sent::default();
        for x in ["a", "b", "c", "d"] {
            sent.push(x);
        }
        assert_eq!(sent.take(2), Some("c"));
        assert_eq!(sent.take(0), Some("a"));
        assert_eq!(sent.take(0), None);
        assert_eq!((sent.first, sent.inputs.len()), (1, 3));
        assert_eq!(sent.take(1), Some("b"));
        assert_eq!((sent.first, sent.inputs.len()), (3, 1));
        assert_eq!(sent.take(3), Some("d"));
        assert_eq!(sent.take(9), None);
        assert!(sent.inputs.is_empty());
    }

    #[test]
    fn ranges_merge_and_their_gaps_are_what_is_left() {
        let mut done = Ranges::default();
        for i in [0, 1, 2, 5, 4, 9, 3, 3, 7] {
            done.insert(i);
        }
        assert_eq!(done.0, [0..6, 7..8, 9..10]);
        assert_eq!(done.gaps(12), [6..7, 8..9, 10..12]);
        assert_eq!(
            Ranges::default().gaps(3),
            vec![std::ops::Range { start: 0, end: 3 }]
        );
    }
}
