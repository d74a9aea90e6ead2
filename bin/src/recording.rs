//! `--timeline FILE`: one [`Timeline`] for the whole run, fed by every pool
//! the run builds (see `run::build_pool` and `run::drive`), saved once at the
//! end, also after a signal stopped the run.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use procpool::{Outcome, Pool};
use procpool_cli::timeline::Timeline;
use procpool_cli::timeline::{self, Status};

use crate::cli::Global;

static RECORDER: OnceLock<Arc<Mutex<Timeline>>> = OnceLock::new();

/// Starts recording if `--timeline` was given, titled with the command line.
pub fn start(global: &Global) {
    if global.timeline.is_none() {
        return;
    }
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut title = format!("procpool {}", args.join(" "));
    if title.chars().count() > 90 {
        title = title.chars().take(89).collect::<String>() + "…";
    }
    let _ = RECORDER.set(Arc::new(Mutex::new(Timeline::new(title))));
}

/// The shared timeline, if recording.
pub fn shared() -> Option<Arc<Mutex<Timeline>>> {
    RECORDER.get().cloned()
}

/// The timeline, locked, if recording: held across a run's loop, so each
/// outcome costs no lock of its own.
pub fn lock() -> Option<MutexGuard<'static, Timeline>> {
    RECORDER
        .get()
        .map(|t| t.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Whether `--timeline` was given.
pub fn active() -> bool {
    RECORDER.get().is_some()
}

/// Records that outcomes now come from `pool`.
pub fn follow(pool: &Pool) {
    if let Some(mut t) = lock() {
        t.follow(pool);
    }
}

/// Records one outcome in `t`; `label` is only made while tasks are kept
/// one by one.
pub fn record<O>(t: &mut Timeline, outcome: &Outcome<O>, label: impl FnOnce() -> Option<String>) {
    let label = if t.tasks() < t.limit() as u64 {
        label()
    } else {
        None
    };
    t.record(outcome, label.as_deref());
}

/// Records one task attempt by hand (a job, whose times come from its record).
pub fn record_attempt(
    pid: u32,
    index: u64,
    attempt: u32,
    times: (std::time::Duration, std::time::Duration),
    status: Status,
    label: &str,
) {
    if let Some(mut t) = lock() {
        t.record_attempt(pid, index, attempt, times, status, Some(label));
    }
}

/// Takes `pool`'s deaths and lost attempts.
pub fn record_events(pool: &Pool) {
    if let Some(mut t) = lock() {
        t.record_events(pool);
    }
}

/// Records a phase of the supervisor's own.
#[allow(dead_code, reason = "for phases outside the library's pi runs")]
pub fn phase(label: &str, start: Instant, end: Instant) {
    if let Some(mut t) = lock() {
        t.phase(label, start, end);
    }
}

/// Writes the timeline, if recording, to the `--timeline` file.
///
/// # Errors
///
/// If it cannot be drawn or written.
pub fn save(global: &Global) -> anyhow::Result<()> {
    let (Some(file), Some(t)) = (global.timeline, lock()) else {
        return Ok(());
    };
    t.save(file.path, global.timeline_size)?;
    Ok(())
}

/// A checked `--timeline` file: its name is kept for the whole run.
#[derive(Debug, Clone, Copy)]
pub struct TimelineFile {
    pub path: &'static Path,
}

/// Parses `--timeline FILE`: `.svg`, `.png` or `.json`, in a folder that exists.
pub fn parse_file(text: &str) -> Result<TimelineFile, String> {
    let (path, _) = timeline::check_path(text)?;
    // One name for the life of the program: leaked, so the options stay `Copy`.
    let path: &'static Path = Box::leak(path.into_boxed_path());
    Ok(TimelineFile { path })
}
