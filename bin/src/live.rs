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
//! It is on when stderr is a terminal, unless the output is `--json`,
//! `NO_COLOR` is set or the terminal is dumb; `--progress` and
//! `--no-progress` force it either way.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use procpool::Progress;

use crate::cli::Global;

/// The most redraws a second.
const REDRAWS_PER_SECOND: u8 = 10;

/// The line shown, if any, and what it needs to say how busy the workers are.
static SHOWN: Mutex<Option<Shown>> = Mutex::new(None);
/// Whether a line is shown: read on every printed line without the lock.
static ON: AtomicBool = AtomicBool::new(false);

struct Shown {
    bar: ProgressBar,
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

/// Whether this run draws the line: the flags first, then the terminal.
pub fn wanted(global: &Global) -> bool {
    if global.no_progress {
        return false;
    }
    if global.progress {
        return true;
    }
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    !global.json && !no_color && !dumb && std::io::stderr().is_terminal()
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
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
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
    *shown() = Some(Shown {
        bar,
        processes: processes as u64,
        chunksize: chunksize.max(1) as u64,
        also_failed: 0,
        failed: 0,
        busy: processes as u64,
    });
    ON.store(true, Ordering::Relaxed);
    Line(())
}

impl Drop for Line {
    fn drop(&mut self) {
        clear();
    }
}

/// Takes the line away for good (before a summary, or an exit).
pub fn clear() {
    if let Some(shown) = shown().take() {
        ON.store(false, Ordering::Relaxed);
        shown.bar.finish_and_clear();
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
                let rate = state.per_sec();
                let _ = match rate {
                    r if r >= 100.0 || r == 0.0 => write!(w, "{r:.0}/s"),
                    r if r >= 1.0 => write!(w, "{r:.1}/s"),
                    r => write!(w, "{:.1} s each", 1.0 / r),
                };
            },
        )
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
    fn message(&self) -> String {
        message(self.failed + self.also_failed, self.busy)
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
    #[test]
    fn the_message_names_failures_only_when_there_are_some() {
        assert_eq!(super::message(0, 4), "  4 busy");
        assert_eq!(super::message(2, 1), "  2 failed  1 busy");
    }
}
