//! The live progress line on stderr: done of total, rate, ETA, failures so
//! far and busy workers, redrawn at most [`REDRAWS_PER_SECOND`] times a
//! second by indicatif, never on stdout.
//!
//! One line is shown at a time, by the run that [`start`]ed it; the pool's
//! progress callback ([`report`], once per chunk of results, never per
//! task) moves it. Everything else written to the terminal while it is shown
//! goes through [`suspend`], which takes the line away and draws it again
//! after: result lines on a terminal stdout ([`crate::output::Printer`]) and
//! every message on stderr ([`crate::warn!`]).
//!
//! It is drawn when stderr is a terminal, unless `NO_COLOR` is set or the
//! terminal is dumb. Otherwise (a batch job's log, under Slurm, PBS or LSF;
//! a pipe; `NO_COLOR`) progress is a plain line on stderr every
//! `--progress-interval` (30 s): a short run writes none, nor does a run of
//! a single task. Neither comes with `--json` unless `--progress` asks;
//! `--no-progress` turns both off.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use procpool::Progress;

use crate::cli::Global;

/// The most redraws a second.
const REDRAWS_PER_SECOND: u8 = 10;

/// The line shown, if any, and what it needs to say how busy the workers are.
static SHOWN: Mutex<Option<Shown>> = Mutex::new(None);
/// Whether a line is drawn: read on every printed line without the lock.
static ON: AtomicBool = AtomicBool::new(false);
/// The thread writing plain lines, if any; told to stop by dropping the sender.
static PLAIN: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>> = Mutex::new(None);

struct Shown {
    /// Drawn, or hidden and read for the plain lines.
    bar: ProgressBar,
    /// What the tasks are, plural.
    unit: String,
    processes: u64,
    chunksize: u64,
    /// Failures the pool does not see (a job that exits non-zero).
    also_failed: u64,
    /// The pool's count of failed tasks in the call.
    failed: u64,
    /// Workers busy at the last report.
    busy: u64,
}

fn shown() -> MutexGuard<'static, Option<Shown>> {
    SHOWN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether this run reports progress at all: the flags, then `--json`.
pub fn wanted(global: &Global) -> bool {
    !global.no_progress && (global.progress || !global.json)
}

/// Whether progress is the drawn line rather than plain lines: on a
/// terminal that can take it.
fn drawn() -> bool {
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    !no_color() && !dumb && std::io::stderr().is_terminal()
}

fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// The shown line; taken away when dropped.
#[must_use = "the line is taken away when this is dropped"]
pub struct Line(());

/// Shows the line for a run of `total` tasks (counted as `unit`, plural)
/// on `processes` workers, `chunksize` tasks a message, if the run wants it.
pub fn start(
    global: &Global,
    unit: &str,
    total: Option<u64>,
    processes: usize,
    chunksize: usize,
) -> Line {
    if !wanted(global) {
        return Line(());
    }
    if !drawn() {
        if total.is_none_or(|n| n > 1) {
            start_plain(global.progress_interval, unit, total, processes, chunksize);
        }
        return Line(());
    }
    let color = !no_color();
    let bar = match total {
        Some(total) => {
            let bar = if color {
                "{bar:30.cyan/blue}"
            } else {
                "{bar:30}"
            };
            ProgressBar::new(total)
                .with_message(message(0, processes as u64))
                .with_style(style(&format!(
                    "{bar} {{pos}}/{{len}} {unit}  {{rate}}  eta {{eta}}{{msg}}"
                )))
        }
        None => ProgressBar::no_length().with_style(style(&format!(
            "{{spinner}} {{pos}} {unit}  {{rate}}{{msg}}"
        ))),
    };
    // Drawn even when stderr is not a terminal if --progress says so.
    let stderr = Stderr(console::Term::buffered_stderr());
    bar.set_draw_target(ProgressDrawTarget::term_like_with_hz(
        Box::new(stderr),
        REDRAWS_PER_SECOND,
    ));
    // The rate and the ETA move while results are awaited.
    bar.enable_steady_tick(Duration::from_millis(1000 / u64::from(REDRAWS_PER_SECOND)));
    *shown() = Some(Shown::new(bar, unit, processes, chunksize));
    ON.store(true, Ordering::Relaxed);
    Line(())
}

/// Starts the plain lines: one every `every`, from a thread of their own,
/// so a run that stalls says so too.
fn start_plain(
    every: Duration,
    unit: &str,
    total: Option<u64>,
    processes: usize,
    chunksize: usize,
) {
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden());
    *shown() = Some(Shown::new(bar, unit, processes, chunksize));
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("procpool-progress".into())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let Some(line) = shown().as_ref().map(Shown::plain) else {
                    return;
                };
                crate::warn!("{line}");
            }
        });
    // Without the thread there are no lines, and nothing else changes.
    if let Ok(thread) = thread {
        *plain() = Some((stop, thread));
    }
}

fn plain() -> MutexGuard<'static, Option<(mpsc::Sender<()>, JoinHandle<()>)>> {
    PLAIN.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Line {
    fn drop(&mut self) {
        clear();
    }
}

/// Takes the line away for good (before a summary, or an exit), and stops
/// the plain lines: none comes after.
pub fn clear() {
    let taken = shown().take();
    if let Some(shown) = taken {
        ON.store(false, Ordering::Relaxed);
        shown.bar.finish_and_clear();
    }
    let ticker = plain().take();
    if let Some((stop, thread)) = ticker {
        drop(stop);
        // Not from the thread itself (a warn! that cleared, say).
        if thread.thread().id() != std::thread::current().id() {
            let _ = thread.join();
        }
    }
}

/// Standard error, said to be two columns narrower than it is: indicatif
/// fills the line to the width given, and the terminal's echo of Ctrl-C
/// (`^C`) then still fits on it, so taking the line away takes the echo
/// too, instead of pushing the line up a row where it would stay.
#[derive(Debug)]
struct Stderr(console::Term);

impl indicatif::TermLike for Stderr {
    fn width(&self) -> u16 {
        self.0.size().1.saturating_sub(2).max(1)
    }
    fn height(&self) -> u16 {
        self.0.size().0
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.0.write_line(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.write_str(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.0.clear_line()
    }
    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("the template is valid")
        .with_key(
            "rate",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&rate(state.per_sec()));
            },
        )
}

/// `250/s`, `2.5/s`, `4.0 s each`.
fn rate(per_sec: f64) -> String {
    match per_sec {
        r if r >= 100.0 || r == 0.0 => format!("{r:.0}/s"),
        r if r >= 1.0 => format!("{r:.1}/s"),
        r => format!("{:.1} s each", 1.0 / r),
    }
}

/// `45s`, `5m30s`, `2h05m`.
fn span(time: Duration) -> String {
    let s = time.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

/// The pool's progress callback: moves the line, if one is shown.
pub fn report(progress: Progress) {
    let mut guard = shown();
    let Some(shown) = guard.as_mut() else {
        return;
    };
    if shown.bar.length().is_none()
        && let Some(total) = progress.total
    {
        shown.bar.set_length(total);
    }
    shown.failed = progress.failed;
    shown.busy = progress
        .running
        .div_ceil(shown.chunksize)
        .min(shown.processes);
    shown.bar.set_position(progress.done);
    shown.bar.set_message(shown.message());
}

/// Counts a failure the pool cannot see: a task that succeeded as far as
/// the pool knows but failed its user (a job that exited non-zero).
pub fn failed() {
    if let Some(shown) = shown().as_mut() {
        shown.also_failed += 1;
        shown.bar.set_message(shown.message());
    }
}

impl Shown {
    fn new(bar: ProgressBar, unit: &str, processes: usize, chunksize: usize) -> Shown {
        Shown {
            bar,
            unit: unit.to_string(),
            processes: processes as u64,
            chunksize: chunksize.max(1) as u64,
            also_failed: 0,
            failed: 0,
            busy: processes as u64,
        }
    }

    fn message(&self) -> String {
        message(self.failed + self.also_failed, self.busy)
    }

    /// The plain line: `procpool: 12/40 jobs (30%) after 31s, 0.4/s, eta
    /// 1m10s, 1 failed, 2 busy`; without a total, the count and the rate.
    fn plain(&self) -> String {
        let done = self.bar.position();
        let unit = &self.unit;
        let mut line = match self.bar.length() {
            Some(total) => {
                let percent = (done * 100).checked_div(total).unwrap_or(100);
                format!("procpool: {done}/{total} {unit} ({percent}%)")
            }
            None => format!("procpool: {done} {unit}"),
        };
        let per_sec = self.bar.per_sec();
        line += &format!(" after {}, {}", span(self.bar.elapsed()), rate(per_sec));
        if self.bar.length().is_some() && per_sec > 0.0 {
            line += &format!(", eta {}", span(self.bar.eta()));
        }
        match self.failed + self.also_failed {
            0 => {}
            n => line += &format!(", {n} failed"),
        }
        line + &format!(", {} busy", self.busy)
    }
}

/// The end of the line: the failures, if any, and the busy workers.
fn message(failed: u64, busy: u64) -> String {
    let failed = match failed {
        0 => String::new(),
        n => format!("  {n} failed"),
    };
    format!("{failed}  {busy} busy")
}

/// Runs `write` with the line taken off the terminal, and draws it again
/// after: how anything else reaches the terminal while it is shown.
pub fn suspend<R>(write: impl FnOnce() -> R) -> R {
    if !ON.load(Ordering::Relaxed) {
        return write();
    }
    let bar = shown().as_ref().map(|shown| shown.bar.clone());
    match bar {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

/// Whether a line is shown now.
pub fn is_on() -> bool {
    ON.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn the_plain_line_says_done_of_total_the_rate_eta_failures_and_busy_workers() {
        let bar = indicatif::ProgressBar::hidden();
        bar.set_length(40);
        let mut shown = super::Shown::new(bar, "jobs", 4, 1);
        shown.bar.set_position(12);
        shown.failed = 1;
        shown.busy = 2;
        let line = shown.plain();
        assert!(
            line.starts_with("procpool: 12/40 jobs (30%) after 0s, "),
            "{line}"
        );
        assert!(line.ends_with(", 1 failed, 2 busy"), "{line}");
        let counted = super::Shown::new(indicatif::ProgressBar::no_length(), "tasks", 2, 1);
        let line = counted.plain();
        assert!(line.starts_with("procpool: 0 tasks after 0s, 0/s") && !line.contains("eta"));
        assert_eq!(super::span(Duration::from_secs(330)), "5m30s");
        assert_eq!(super::span(Duration::from_secs(7500)), "2h05m");
    }

    #[test]
    fn the_message_names_failures_only_when_there_are_some() {
        assert_eq!(super::message(0, 4), "  4 busy");
        assert_eq!(super::message(2, 1), "  2 failed  1 busy");
    }
}
