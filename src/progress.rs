//! How far a call has got, for a progress bar: [`Progress`], handed to the
//! callback of [`PoolBuilder::on_progress`](crate::PoolBuilder::on_progress).

use std::sync::Arc;

/// How far one `map`, `map_values`, `imap` or `imap_unordered` call has got,
/// as its results come in (once per chunk of results, not once per input).
///
/// ```
/// let p = procpool::Progress { done: 3, failed: 1, running: 1, total: Some(4) };
/// assert_eq!(p.remaining(), Some(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Inputs whose outcome has come in, successful or not.
    pub done: u64,
    /// Of those, the ones that failed.
    pub failed: u64,
    /// Inputs read and sent on (queued or with a worker) whose outcome has
    /// not come in yet: with the chunk size, how busy the workers are.
    pub running: u64,
    /// How many inputs the call has, when their iterator knows its length
    /// (a range, a vector; always for `map`, which reads the rest first).
    pub total: Option<u64>,
}

impl Progress {
    /// Inputs still to come in, when the total is known.
    pub fn remaining(&self) -> Option<u64> {
        self.total.map(|total| total.saturating_sub(self.done))
    }
}

/// The callback of [`PoolBuilder::on_progress`](crate::PoolBuilder::on_progress).
#[derive(Clone)]
pub(crate) struct Report(pub Arc<dyn Fn(Progress) + Send + Sync>);

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Report(..)")
    }
}

/// One call's count, reported to the callback if there is one.
pub(crate) struct Tally {
    report: Option<Report>,
    progress: Progress,
}

impl Tally {
    pub fn new(report: Option<Report>, total: Option<u64>) -> Self {
        Tally {
            report,
            progress: Progress {
                done: 0,
                failed: 0,
                running: 0,
                total,
            },
        }
    }

    /// Whether anyone is told: the callers count failures only then.
    pub fn wanted(&self) -> bool {
        self.report.is_some()
    }

    /// Adds `done` outcomes, `failed` of them failures, of the `sent`
    /// inputs read so far, and tells the callback.
    pub fn add(&mut self, done: u64, failed: u64, sent: u64) {
        if let Some(report) = &self.report {
            self.progress.done += done;
            self.progress.failed += failed;
            self.progress.running = sent.saturating_sub(self.progress.done);
            (report.0)(self.progress);
        }
    }
}
