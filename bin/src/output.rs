//! Printing: human lines or JSON Lines on stdout, one-line errors on stderr.
//! A closed stdout (as in `procpool ... | head`) ends the program quietly.
//!
//! A line is written at once when the last write was [`FLUSH_EVERY`] ago or
//! more (results are rare: each is on its way before the next, so even a
//! SIGKILL loses none), and otherwise joins a buffer that a small thread
//! writes out within [`FLUSH_EVERY`] (results are many: a million cost a few
//! hundred writes, not a million).

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use procpool::{MpiRank, Outcome, WorkerInfo};
use serde::Serialize;
use serde_json::{Value, json};

use crate::run::Finished;

/// How long a printed line may wait in the buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(25);
/// How long when stdout is the terminal the live line is drawn on: each
/// write takes the line away and draws it again, at most this often.
const FLUSH_UNDER_LINE: Duration = Duration::from_millis(100);

/// Writes one line to stderr, ignoring a stderr that cannot be written
/// (`2>/dev/full`): the exit code still tells the truth.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        // Above the live line, if one is shown.
        $crate::live::suspend(|| {
            let _ = writeln!(std::io::stderr(), $($arg)*);
        });
    }};
}

/// Standard output, buffered, with the first error a flush met.
struct Out {
    buffer: io::BufWriter<io::Stdout>,
    /// Whether stdout is a terminal (the live line's, then).
    terminal: bool,
    dirty: bool,
    last_flush: Instant,
    error: Option<io::Error>,
}

impl Out {
    fn flush(&mut self) {
        if self.dirty && self.error.is_none() {
            self.dirty = false;
            self.last_flush = Instant::now();
            let buffer = &mut self.buffer;
            let flushed = if self.terminal {
                crate::live::suspend(|| buffer.flush())
            } else {
                buffer.flush()
            };
            if let Err(e) = flushed {
                self.error = Some(e);
            }
        }
    }

    /// How long a line may wait before it is written.
    fn every(&self) -> Duration {
        if self.terminal && crate::live::is_on() {
            FLUSH_UNDER_LINE
        } else {
            FLUSH_EVERY
        }
    }
}

/// Where results go: human text, or JSON Lines with `--json`.
pub struct Printer {
    pub json: bool,
    out: Arc<Mutex<Out>>,
    /// MPI workers by PID, to tag outcomes with their rank and host.
    ranks: HashMap<u32, MpiRank>,
    workers: Vec<WorkerInfo>,
}

impl Printer {
    pub fn new(json: bool) -> Self {
        let out = Arc::new(Mutex::new(Out {
            buffer: io::BufWriter::with_capacity(64 * 1024, io::stdout()),
            terminal: io::stdout().is_terminal(),
            dirty: false,
            last_flush: Instant::now() - FLUSH_EVERY,
            error: None,
        }));
        let flusher = Arc::downgrade(&out);
        // Without the thread (none can be started), every line is flushed.
        let _ = std::thread::Builder::new()
            .name("procpool-flush".into())
            .spawn(move || {
                while let Some(out) = flusher.upgrade() {
                    let mut locked = lock(&out);
                    if locked.last_flush.elapsed() >= locked.every() {
                        locked.flush();
                    }
                    drop(locked);
                    drop(out);
                    std::thread::sleep(FLUSH_EVERY);
                }
            });
        Printer {
            json,
            out,
            ranks: HashMap::new(),
            workers: Vec::new(),
        }
    }

    /// Remembers where MPI workers run, so that each JSON outcome carries its
    /// rank and host next to its PID, and the summary lists the workers. A PID
    /// that two hosts share is listed but tags no outcome: it would be a guess.
    pub fn place_workers(&mut self, workers: Vec<WorkerInfo>) {
        for worker in &workers {
            if let Some(place) = &worker.mpi {
                self.ranks.insert(worker.pid, place.clone());
            }
        }
        for worker in &workers {
            if workers.iter().filter(|w| w.pid == worker.pid).count() > 1 {
                self.ranks.remove(&worker.pid);
            }
        }
        if workers.iter().any(|w| w.mpi.is_some()) {
            self.workers = workers;
        }
    }

    /// Where the worker with this PID runs, on the MPI backend.
    pub fn rank_of(&self, pid: u32) -> Option<&MpiRank> {
        self.ranks.get(&pid)
    }

    /// Prints one line: at once if the last write was a while ago, else
    /// within [`FLUSH_EVERY`].
    pub fn line(&mut self, text: impl std::fmt::Display) {
        let mut out = lock(&self.out);
        if out.error.is_none()
            && let Err(e) = writeln!(out.buffer, "{text}")
        {
            out.error = Some(e);
        }
        out.dirty = true;
        if out.last_flush.elapsed() >= out.every() {
            out.flush();
        }
        if let Some(e) = out.error.take() {
            drop(out);
            stdout_failed(&e);
        }
    }

    /// Writes out everything printed so far.
    pub fn flush(&mut self) {
        let mut out = lock(&self.out);
        out.flush();
        if let Some(e) = out.error.take() {
            drop(out);
            stdout_failed(&e);
        }
    }

    /// The JSON Lines object for one outcome: index, pid, attempts, elapsed
    /// milliseconds, and `output` or `error`.
    pub fn json_outcome<O: Serialize>(&mut self, outcome: &Outcome<O>, extra: Value) {
        let mut object = json!({
            "index": outcome.index,
            "pid": outcome.pid,
            "attempts": outcome.attempts,
            "elapsed_ms": millis(outcome.elapsed()),
        });
        match &outcome.result {
            Ok(output) => object["output"] = json!(output),
            Err(error) => object["error"] = json!(error.to_string()),
        }
        if let Some(place) = self.ranks.get(&outcome.pid) {
            object["rank"] = json!(place.rank);
            object["host"] = json!(place.host);
        }
        if let (Value::Object(map), Value::Object(more)) = (&mut object, extra) {
            map.extend(more);
        }
        self.line(object);
    }

    /// The closing JSON summary object, with any fields the subcommand adds.
    pub fn json_summary(&mut self, finished: &Finished, processes: usize, extra: Value) {
        let mut summary = json!({
            "tasks": finished.total,
            "ok": finished.ok,
            "failed": finished.failed,
            "not_run": finished.not_run(),
            "processes": processes,
            "elapsed_ms": millis(finished.elapsed),
            "exit_code": finished.exit_code(),
        });
        if let Some(stopped) = &finished.stopped {
            summary["stopped"] = json!(stopped.to_string());
            summary["not_finished"] = json!(finished.unfinished());
        }
        if !self.workers.is_empty() {
            summary["backend"] = json!("mpi");
            summary["workers"] = json!(self.workers);
        }
        if let (Value::Object(map), Value::Object(more)) = (&mut summary, extra) {
            map.extend(more);
        }
        self.line(json!({ "summary": summary }));
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        self.flush();
    }
}

fn lock(out: &Mutex<Out>) -> MutexGuard<'_, Out> {
    out.lock().unwrap_or_else(|e| e.into_inner())
}

/// A closed stdout (`| head`) ends the program quietly with 0; any other
/// write error (a full disk) with one line and 2.
fn stdout_failed(e: &io::Error) -> ! {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    warn!("procpool: cannot write to stdout: {e}");
    std::process::exit(2);
}

/// Milliseconds with microsecond resolution, for JSON.
pub fn millis(d: std::time::Duration) -> f64 {
    d.as_micros() as f64 / 1e3
}

/// Reports a failed task in one line on stderr, as it arrives:
/// `procpool: task 3 (input 7): worker 4711 died: killed by signal 9 (SIGKILL)`.
pub fn report_failure<O>(outcome: &Outcome<O>, input: impl std::fmt::Display) {
    if let Err(error) = &outcome.result {
        let attempts = if outcome.attempts > 1 {
            format!(" after {} attempts", outcome.attempts)
        } else {
            String::new()
        };
        warn!(
            "procpool: task {} ({input}){attempts}: {error}",
            outcome.index
        );
    }
}

/// Reports why a run stopped early, if it did, in one line on stderr, with
/// the indices to run again:
/// `procpool: interrupted by signal 2 (SIGINT); 7 of 64 tasks finished; not finished: 3,7-63`.
pub fn report_stop(finished: &Finished, what: &str) {
    if let Some(stopped) = &finished.stopped {
        warn!(
            "procpool: {stopped}; {} of {} {what} finished; not finished: {}",
            finished.finished(),
            finished.total,
            finished.unfinished()
        );
    }
}

/// An error and its causes, `: `-joined, each said once (a cause whose text
/// its error already includes is not repeated).
pub fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}
