//! Timelines of pool runs: which worker ran what and when, drawn as a Gantt
//! chart (SVG or PNG, with `plotters`) or written as a Chrome trace (the
//! JSON that Perfetto and `chrome://tracing` open).
//!
//! A [`Timeline`] collects [`Outcome`]s (each carries when its task started,
//! as measured by the worker on the machine's shared monotonic clock), the
//! supervisor's [`PoolEvent`]s (workers that died, attempts that were tried
//! again) and phases of the calling program's own (a serial run to compare
//! with). Memory stays bounded: one compact record per task attempt up to
//! [`Timeline::limit`], and beyond it tasks are merged into spans per worker.
//!
//! ```
//! use procpool_cli::{tasks::Sleep, timeline::Timeline};
//! # let pool = procpool_cli::doctest_pool(2);
//! let mut timeline = Timeline::new("sleep on 2 workers");
//! timeline.follow(&pool);
//! for outcome in pool.map_outcomes(Sleep, [5, 5, 5, 5]).unwrap() {
//!     timeline.record(&outcome, None);
//! }
//! timeline.record_events(&pool);
//! assert_eq!(timeline.tasks(), 4);
//!
//! let svg = timeline.svg((800, 300)).unwrap();
//! assert!(svg.contains("sleep on 2 workers"));
//! let trace: serde_json::Value = serde_json::from_str(&timeline.trace_json()).unwrap();
//! let spans = trace["traceEvents"].as_array().unwrap().iter().filter(|e| e["ph"] == "X");
//! assert_eq!(spans.count(), 4);
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plotters::style::RGBColor;

use crate::plot::{self, Format, PlotError};
#[cfg(test)]
use procpool::ExitCause;
pub use procpool::PoolEvent;
use procpool::TaskError;
use procpool::{MpiRank, WorkerInfo};
use procpool::{Outcome, Pool};

mod chart;
mod trace;

use chart::Chart;

/// How a task attempt ended, for colours and the trace's `outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Status {
    /// It returned a value.
    Ok,
    /// It returned an error.
    Failed,
    /// It panicked.
    Panicked,
    /// It ran past the timeout and its worker was stopped.
    TimedOut,
    /// Its worker died under it.
    WorkerDied,
    /// Cancelled, or its worker broke the protocol.
    Other,
}

impl Status {
    /// Every status, in the legend's order.
    pub const ALL: [Status; 6] = [
        Status::Ok,
        Status::Failed,
        Status::Panicked,
        Status::TimedOut,
        Status::WorkerDied,
        Status::Other,
    ];

    /// The status of a task's result.
    ///
    /// ```
    /// use procpool::TaskError;
    /// use procpool_cli::timeline::Status;
    /// assert_eq!(Status::of(&Ok::<(), Box<TaskError>>(())), Status::Ok);
    /// assert_eq!(Status::of(&Err::<(), _>(Box::new(TaskError::Cancelled))), Status::Other);
    /// ```
    pub fn of<T>(result: &Result<T, Box<TaskError>>) -> Status {
        match result {
            Ok(_) => Status::Ok,
            Err(error) => Status::of_error(error),
        }
    }

    fn of_error(error: &TaskError) -> Status {
        match error {
            TaskError::Failed { .. } => Status::Failed,
            TaskError::Panicked { .. } => Status::Panicked,
            TaskError::TimedOut { .. } => Status::TimedOut,
            TaskError::WorkerDied { .. } => Status::WorkerDied,
            _ => Status::Other,
        }
    }

    /// Its name in the legend and the trace: `ok`, `failed`, `panicked`,
    /// `timed out`, `worker died`, `other`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Panicked => "panicked",
            Status::TimedOut => "timed out",
            Status::WorkerDied => "worker died",
            Status::Other => "other",
        }
    }

    /// Its colour in pictures.
    pub fn colour(self) -> (u8, u8, u8) {
        match self {
            Status::Ok => (76, 145, 65),
            Status::Failed => (230, 159, 0),
            Status::Panicked => (204, 121, 167),
            Status::TimedOut => (86, 180, 233),
            Status::WorkerDied => (213, 94, 0),
            Status::Other => (150, 150, 150),
        }
    }

    fn rgb(self) -> RGBColor {
        let (r, g, b) = self.colour();
        RGBColor(r, g, b)
    }
}

/// The colour of the supervisor's own phases.
const PHASE: RGBColor = RGBColor(90, 110, 160);
/// The most characters of an input kept for the trace.
const INPUT_CHARS: usize = 60;

/// One task attempt, in 48 bytes.
#[derive(Debug, Clone, Copy)]
struct Bar {
    index: u64,
    start_ns: u64,
    dur_ns: u64,
    lane: u32,
    attempt: u32,
    /// `labels[label.0..label.1]`; empty for none.
    label: (u32, u32),
    status: Status,
    /// Another attempt of the same input followed.
    retried: bool,
}

/// Tasks beyond the limit, merged per lane into spans.
#[derive(Debug, Clone, Copy)]
struct Span {
    lane: u32,
    start_ns: u64,
    end_ns: u64,
    tasks: u64,
    /// The worst status among them.
    status: Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MarkKind {
    Died,
    Retry,
    TimedOut,
}

#[derive(Debug, Clone)]
struct Mark {
    lane: u32,
    at_ns: u64,
    kind: MarkKind,
    what: String,
}

#[derive(Debug, Clone)]
struct Lane {
    pid: u32,
    mpi: Option<MpiRank>,
}

#[derive(Debug, Clone)]
struct Phase {
    label: String,
    start_ns: u64,
    end_ns: u64,
}

/// A record of pool runs to draw or trace; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Timeline {
    title: String,
    zero: Instant,
    /// The followed pool's clock zero, from ours.
    shift_ns: u64,
    followed: Option<Instant>,
    lanes: Vec<Lane>,
    /// The followed pool's PIDs to lanes.
    lane_of: HashMap<u32, u32>,
    last_lane: Option<(u32, u32)>,
    /// The followed pool's workers, for lane names.
    places: HashMap<u32, MpiRank>,
    bars: Vec<Bar>,
    labels: String,
    spans: Vec<Span>,
    /// By lane: its latest span's index in `spans`, or `usize::MAX`.
    open: Vec<usize>,
    /// Tasks closer than this on one lane merge into one span.
    span_gap_ns: u64,
    marks: Vec<Mark>,
    phases: Vec<Phase>,
    limit: usize,
    tasks: u64,
    aggregated: u64,
    dropped_events: u64,
    clock_uncertainty: Duration,
}

impl Timeline {
    /// Tasks kept one by one by default; more are merged into spans.
    pub const DEFAULT_LIMIT: usize = 10_000;

    /// An empty timeline whose clock starts now, titled `title` (say, the
    /// command line).
    pub fn new(title: impl Into<String>) -> Timeline {
        Timeline {
            title: title.into(),
            zero: Instant::now(),
            shift_ns: 0,
            followed: None,
            lanes: Vec::new(),
            lane_of: HashMap::new(),
            last_lane: None,
            places: HashMap::new(),
            bars: Vec::new(),
            labels: String::new(),
            spans: Vec::new(),
            open: Vec::new(),
            span_gap_ns: 1_000,
            marks: Vec::new(),
            phases: Vec::new(),
            limit: Self::DEFAULT_LIMIT,
            tasks: 0,
            aggregated: 0,
            dropped_events: 0,
            clock_uncertainty: Duration::ZERO,
        }
    }

    /// Keeps at most `limit` task attempts one by one (default
    /// [`DEFAULT_LIMIT`](Self::DEFAULT_LIMIT)); later ones are merged per
    /// worker into spans, and the picture and trace say how many.
    #[must_use]
    pub fn with_limit(mut self, limit: usize) -> Timeline {
        self.limit = limit;
        self
    }

    /// The limit of task attempts kept one by one.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// How many task attempts were recorded (kept or merged).
    pub fn tasks(&self) -> u64 {
        self.tasks
    }

    /// How many of them were merged into spans for the limit.
    pub fn aggregated(&self) -> u64 {
        self.aggregated
    }

    /// When the timeline's clock started: times in it are offsets from this.
    pub fn clock_zero(&self) -> Instant {
        self.zero
    }

    /// Outcomes recorded from now on come from `pool`: its clock, and its
    /// workers (each on a lane of its own, named with its PID, and on MPI
    /// its rank and host). Call it again for each pool a program builds.
    pub fn follow(&mut self, pool: &Pool) {
        let zero = pool.clock_zero();
        if self.followed == Some(zero) {
            return;
        }
        self.followed = Some(zero);
        self.shift_ns = zero.saturating_duration_since(self.zero).as_nanos() as u64;
        self.lane_of.clear();
        self.last_lane = None;
        self.places = pool
            .workers()
            .into_iter()
            .filter_map(|WorkerInfo { pid, mpi }| Some((pid, mpi?)))
            .collect();
        self.clock_uncertainty = self.clock_uncertainty.max(pool.clock_uncertainty());
    }

    /// How far a worker's times may be off the supervisor's (zero on one
    /// machine; see [`Pool::clock_uncertainty`]).
    pub fn clock_uncertainty(&self) -> Duration {
        self.clock_uncertainty
    }

    fn lane(&mut self, pid: u32) -> u32 {
        // Outcomes come in batches from one worker: most lookups are the last one.
        if let Some((last, lane)) = self.last_lane
            && last == pid
        {
            return lane;
        }
        if let Some(&lane) = self.lane_of.get(&pid) {
            self.last_lane = Some((pid, lane));
            return lane;
        }
        let lane = self.lanes.len() as u32;
        self.lanes.push(Lane {
            pid,
            mpi: self.places.get(&pid).cloned(),
        });
        self.lane_of.insert(pid, lane);
        self.last_lane = Some((pid, lane));
        lane
    }

    fn ns(&self, offset: Duration) -> u64 {
        self.shift_ns.saturating_add(offset.as_nanos() as u64)
    }

    /// Records one outcome of the [`follow`](Self::follow)ed pool (a task
    /// that never started, such as a cancelled one, is skipped). `label` is
    /// what its bar shows instead of its index and the trace's `input` (cut
    /// short): a job's id, a file name, the input.
    pub fn record<O>(&mut self, outcome: &Outcome<O>, label: Option<&str>) {
        if outcome.pid == 0 {
            return;
        }
        let start_ns = self.ns(outcome.started());
        let dur_ns = outcome.elapsed().as_nanos() as u64;
        let status = Status::of(&outcome.result);
        self.push(
            outcome.pid,
            outcome.index,
            outcome.attempts.max(1),
            (start_ns, dur_ns),
            status,
            label,
        );
        if status == Status::TimedOut {
            self.mark(
                outcome.pid,
                start_ns + dur_ns,
                MarkKind::TimedOut,
                outcome.index,
            );
        }
    }

    /// Records one task attempt by hand: input `index` ran on worker `pid`
    /// from `started` (an offset from the [`follow`](Self::follow)ed pool's
    /// [`Pool::clock_zero`]) for `elapsed`, and ended as `status`; `attempt`
    /// counts from 1, and an attempt above 1 marks the task as retried.
    pub fn record_attempt(
        &mut self,
        pid: u32,
        index: u64,
        attempt: u32,
        (started, elapsed): (Duration, Duration),
        status: Status,
        label: Option<&str>,
    ) {
        let start_ns = self.ns(started);
        let times = (start_ns, elapsed.as_nanos() as u64);
        self.push(pid, index, attempt.max(1), times, status, label);
    }

    fn push(
        &mut self,
        pid: u32,
        index: u64,
        attempt: u32,
        (start_ns, dur_ns): (u64, u64),
        status: Status,
        label: Option<&str>,
    ) {
        self.tasks += 1;
        let lane = self.lane(pid);
        if self.bars.len() < self.limit {
            let label = match label {
                Some(text) => {
                    let from = self.labels.len() as u32;
                    self.labels.push_str(cut(text, INPUT_CHARS));
                    (from, self.labels.len() as u32)
                }
                None => (0, 0),
            };
            self.bars.push(Bar {
                index,
                start_ns,
                dur_ns,
                lane,
                attempt,
                label,
                status,
                retried: false,
            });
        } else {
            self.aggregate(lane, start_ns, start_ns + dur_ns, status);
        }
    }

    /// Merges a task into its lane's last span when close enough; keeps the
    /// spans at most as many as the limit by merging coarser.
    fn aggregate(&mut self, lane: u32, start_ns: u64, end_ns: u64, status: Status) {
        self.aggregated += 1;
        let gap = self.span_gap_ns;
        if self.open.len() <= lane as usize {
            self.open.resize(lane as usize + 1, usize::MAX);
        }
        // Each lane's latest span, found in O(1): this runs once per task.
        let open = self.open[lane as usize];
        if let Some(span) = self.spans.get_mut(open)
            && start_ns <= span.end_ns.saturating_add(gap)
            && end_ns.saturating_add(gap) >= span.start_ns
        {
            span.start_ns = span.start_ns.min(start_ns);
            span.end_ns = span.end_ns.max(end_ns);
            span.tasks += 1;
            span.status = span.status.max(status);
            return;
        }
        self.open[lane as usize] = self.spans.len();
        self.spans.push(Span {
            lane,
            start_ns,
            end_ns,
            tasks: 1,
            status,
        });
        if self.spans.len() > self.limit.max(64) {
            self.span_gap_ns = self.span_gap_ns.saturating_mul(4);
            self.spans = merge_spans(std::mem::take(&mut self.spans), self.span_gap_ns);
            // Sorted by lane and start: a lane's latest span is its last.
            self.open.fill(usize::MAX);
            for (i, span) in self.spans.iter().enumerate() {
                self.open[span.lane as usize] = i;
            }
        }
    }

    fn mark(&mut self, pid: u32, at_ns: u64, kind: MarkKind, index: u64) {
        let lane = self.lane(pid);
        let what = match kind {
            MarkKind::Died => String::new(),
            MarkKind::Retry | MarkKind::TimedOut => format!("task {index}"),
        };
        self.marks.push(Mark {
            lane,
            at_ns,
            kind,
            what,
        });
    }

    /// Takes the [`follow`](Self::follow)ed pool's [`PoolEvent`]s and
    /// records them: workers that died, and attempts that ended without a
    /// result and were tried again (bars of their own, marked as retried).
    pub fn record_events(&mut self, pool: &Pool) {
        let (events, dropped) = pool.take_events();
        self.dropped_events += dropped;
        for event in events {
            self.record_event(&event);
        }
    }

    /// Records one [`PoolEvent`] of the [`follow`](Self::follow)ed pool.
    pub fn record_event(&mut self, event: &PoolEvent) {
        match event {
            PoolEvent::WorkerStarted { .. } => {}
            PoolEvent::WorkerDied { pid, at, cause } => {
                let at_ns = self.ns(*at);
                let lane = self.lane(*pid);
                self.marks.push(Mark {
                    lane,
                    at_ns,
                    kind: MarkKind::Died,
                    what: cause.to_string(),
                });
            }
            PoolEvent::AttemptLost {
                first,
                count,
                pid,
                attempt,
                started,
                elapsed,
                error,
            } => {
                let start_ns = self.ns(*started);
                let dur_ns = elapsed.as_nanos() as u64;
                let status = Status::of_error(error);
                let label =
                    (*count > 1).then(|| format!("{first}..={}", first + *count as u64 - 1));
                self.push(
                    *pid,
                    *first,
                    *attempt,
                    (start_ns, dur_ns),
                    status,
                    label.as_deref(),
                );
                if let Some(bar) = self.bars.last_mut()
                    && bar.index == *first
                    && bar.start_ns == start_ns
                {
                    bar.retried = true;
                }
                if status == Status::TimedOut {
                    self.mark(*pid, start_ns + dur_ns, MarkKind::TimedOut, *first);
                }
                self.mark(*pid, start_ns + dur_ns, MarkKind::Retry, *first);
            }
            // An event this drawing does not know yet leaves no mark.
            _ => {}
        }
    }

    /// Records a phase of the supervisor's own, from `start` to `end` (say,
    /// a serial run to compare the pool with), on a lane of its own.
    pub fn phase(&mut self, label: impl Into<String>, start: Instant, end: Instant) {
        let ns = |t: Instant| t.saturating_duration_since(self.zero).as_nanos() as u64;
        self.phases.push(Phase {
            label: label.into(),
            start_ns: ns(start),
            end_ns: ns(end).max(ns(start)),
        });
    }

    fn label(&self, bar: &Bar) -> Option<&str> {
        let (from, to) = bar.label;
        (to > from).then(|| &self.labels[from as usize..to as usize])
    }

    fn lane_name(&self, lane: &Lane) -> String {
        match &lane.mpi {
            Some(place) => format!("rank {} {} PID {}", place.rank, place.host, lane.pid),
            None => format!("PID {}", lane.pid),
        }
    }

    fn end_ns(&self) -> u64 {
        let bars = self.bars.iter().map(|b| b.start_ns + b.dur_ns);
        let spans = self.spans.iter().map(|s| s.end_ns);
        let phases = self.phases.iter().map(|p| p.end_ns);
        let marks = self.marks.iter().map(|m| m.at_ns);
        bars.chain(spans)
            .chain(phases)
            .chain(marks)
            .max()
            .unwrap_or(0)
    }

    /// The Chrome Trace Event Format JSON: a process per worker (and one for
    /// the supervisor) named by metadata events, a complete (`X`) event per
    /// task attempt with `index`, `input`, `attempt` and `outcome` in its
    /// args, instant (`i`) events for deaths, timeouts and retries, and in
    /// `otherData` the clock, its uncertainty, and how many tasks were merged.
    /// Times are microseconds since the timeline's clock zero.
    pub fn trace_json(&self) -> String {
        trace::write(self)
    }

    /// The Gantt chart as an SVG document of `size` pixels (width, height
    /// each in [`plot::SIZES`]); [`auto_size`](Self::auto_size) fits the lanes.
    ///
    /// # Errors
    ///
    /// A size out of range, or a drawing error.
    pub fn svg(&self, size: (u32, u32)) -> Result<String, PlotError> {
        let bytes = plot::draw(Path::new("timeline.svg"), Format::Svg, size, &Chart(self))?;
        Ok(String::from_utf8(bytes).unwrap_or_default())
    }

    /// The Gantt chart as a PNG file's bytes, of `size` pixels.
    ///
    /// # Errors
    ///
    /// As [`svg`](Self::svg).
    pub fn png(&self, size: (u32, u32)) -> Result<Vec<u8>, PlotError> {
        plot::draw(Path::new("timeline.png"), Format::Png, size, &Chart(self))
    }

    /// A size that gives every lane room: 1200 pixels wide, and about 26
    /// pixels a lane (at most 2400 in all).
    pub fn auto_size(&self) -> (u32, u32) {
        let lanes = self.lanes.len() as u32 + u32::from(!self.phases.is_empty());
        (1200, (170 + 26 * lanes).clamp(320, 2400))
    }

    /// Writes the timeline to `path`, as its extension says (see
    /// [`TimelineFormat::of`]), at `size` (or [`auto_size`](Self::auto_size)):
    /// drawn in memory first, then written to a new file that replaces `path`
    /// at once, so a reader never sees half a file.
    ///
    /// # Errors
    ///
    /// An extension that names no format, a size out of range, or an error
    /// writing the file.
    pub fn save(&self, path: &Path, size: Option<(u32, u32)>) -> Result<(), PlotError> {
        let format = TimelineFormat::of(path).ok_or_else(|| PlotError::Format {
            path: path.to_path_buf(),
        })?;
        let size = size.unwrap_or_else(|| self.auto_size());
        let bytes = match format {
            TimelineFormat::Svg => self.svg(size)?.into_bytes(),
            TimelineFormat::Png => self.png(size)?,
            TimelineFormat::Json => self.trace_json().into_bytes(),
        };
        crate::write::atomically(path, &bytes, true).map_err(|source| PlotError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// What a timeline file holds, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineFormat {
    /// `.svg`: the Gantt chart as SVG.
    Svg,
    /// `.png`: the Gantt chart as PNG.
    Png,
    /// `.json`: a Chrome trace for Perfetto or `chrome://tracing`.
    Json,
}

impl TimelineFormat {
    /// The format `path`'s extension names (any case), if any.
    ///
    /// ```
    /// use procpool_cli::timeline::TimelineFormat;
    /// use std::path::Path;
    /// assert_eq!(TimelineFormat::of(Path::new("t.SVG")), Some(TimelineFormat::Svg));
    /// assert_eq!(TimelineFormat::of(Path::new("t.json")), Some(TimelineFormat::Json));
    /// assert_eq!(TimelineFormat::of(Path::new("t.txt")), None);
    /// ```
    pub fn of(path: &Path) -> Option<TimelineFormat> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "svg" => Some(TimelineFormat::Svg),
            "png" => Some(TimelineFormat::Png),
            "json" => Some(TimelineFormat::Json),
            _ => None,
        }
    }
}

/// Checks a timeline file's name before a run: a known extension, and a
/// folder that exists.
///
/// ```
/// assert!(procpool_cli::timeline::check_path("run.json").is_ok());
/// assert!(procpool_cli::timeline::check_path("run.txt").is_err());
/// ```
///
/// # Errors
///
/// A one-line message naming the file.
pub fn check_path(path: impl Into<PathBuf>) -> Result<(PathBuf, TimelineFormat), String> {
    let path = path.into();
    let Some(format) = TimelineFormat::of(&path) else {
        return Err(format!(
            "timeline file {path:?} must end in .svg, .png or .json"
        ));
    };
    if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty())
        && !folder.is_dir()
    {
        return Err(format!(
            "timeline file {path:?}: folder {folder:?} does not exist"
        ));
    }
    // Written through a link; never in place of a FIFO, device or folder.
    if let Ok(meta) = std::fs::metadata(&path)
        && !meta.is_file()
    {
        return Err(format!(
            "timeline file {path:?} exists and is not a regular file"
        ));
    }
    Ok((path, format))
}

/// `text`, cut to at most `chars` characters.
fn cut(text: &str, chars: usize) -> &str {
    match text.char_indices().nth(chars) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// Spans merged again with a larger gap.
fn merge_spans(mut spans: Vec<Span>, gap: u64) -> Vec<Span> {
    spans.sort_by_key(|s| (s.lane, s.start_ns));
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len() / 2);
    for span in spans {
        match merged.last_mut() {
            Some(last)
                if last.lane == span.lane && span.start_ns <= last.end_ns.saturating_add(gap) =>
            {
                last.end_ns = last.end_ns.max(span.end_ns);
                last.tasks += span.tasks;
                last.status = last.status.max(span.status);
            }
            _ => merged.push(span),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::chart::pixel_bars;
    use super::*;
    use serde_json::Value;

    fn outcome(pid: u32, index: u64, start_ms: u64, ms: u64) -> Outcome<i64> {
        Outcome::for_test(index, pid, 1, (start_ms * 1_000_000, ms * 1_000_000), Ok(0))
    }

    #[test]
    fn inputs_are_cut_on_character_boundaries() {
        assert_eq!(cut("héllo", 2), "hé");
        assert_eq!(cut("hi", 5), "hi");
    }

    #[test]
    fn bars_narrower_than_a_pixel_merge_and_none_overlap() {
        let bars = (0..10_000).map(|i| {
            let x = i as f64 * 0.05;
            (x, x + 0.05, Status::Ok, false, None, 1)
        });
        let drawn = pixel_bars::<()>(bars);
        assert!(drawn.len() <= 501, "{} bars", drawn.len());
        assert_eq!(drawn.iter().map(|d| d.tasks).sum::<u64>(), 10_000);
        for pair in drawn.windows(2) {
            assert!(pair[0].x1 <= pair[1].x0, "{pair:?}");
        }
        // Wide bars stay one each, labels kept.
        let wide = pixel_bars((0..5).map(|i| {
            let x = i as f64 * 20.0;
            (x, x + 19.0, Status::Failed, false, Some(i.to_string()), 1)
        }));
        assert_eq!(wide.len(), 5);
        assert!(wide.iter().all(|d| d.label.is_some() && d.tasks == 1));
    }

    #[test]
    fn beyond_the_limit_tasks_merge_into_spans_and_memory_stays_bounded() {
        let mut timeline = Timeline::new("t").with_limit(100);
        for i in 0..100_000u64 {
            // Two workers; every 10th task leaves a gap.
            let pid = 10 + (i % 2) as u32;
            let gap = if i % 10 == 0 { 5 } else { 0 };
            timeline.record(&outcome(pid, i, i * 2 + gap, 1), None);
        }
        assert_eq!(timeline.tasks(), 100_000);
        assert_eq!(timeline.bars.len(), 100);
        assert_eq!(timeline.aggregated(), 99_900);
        assert!(
            timeline.spans.len() <= 100,
            "{} spans",
            timeline.spans.len()
        );
        assert_eq!(timeline.spans.iter().map(|s| s.tasks).sum::<u64>(), 99_900);
        let trace: Value = serde_json::from_str(&timeline.trace_json()).unwrap();
        assert_eq!(trace["otherData"]["merged_tasks"], 99_900);
        let svg = timeline.svg((800, 400)).unwrap();
        assert!(svg.contains("99900 after the first 100 merged"), "{svg}");
    }

    #[test]
    fn sixty_four_lanes_and_ten_thousand_tasks_draw() {
        let mut timeline = Timeline::new("wide");
        for i in 0..10_000u64 {
            let pid = 1000 + (i % 64) as u32;
            timeline.record(&outcome(pid, i, (i / 64) * 3, 3), Some("x"));
        }
        let size = timeline.auto_size();
        let svg = timeline.svg(size).unwrap();
        let rects = svg.matches("<rect").count();
        // Merged: far fewer rectangles than tasks, and every lane named.
        assert!(rects < 64 * 1200 / 2, "{rects} rectangles");
        for pid in 1000..1064 {
            assert!(svg.contains(&format!("PID {pid}")), "lane of {pid}");
        }
        let png = timeline.png(size).unwrap();
        let image = image::load_from_memory(&png).unwrap();
        assert_eq!((image.width(), image.height()), size);
    }

    #[test]
    fn lost_attempts_are_bars_of_their_own_marked_as_retried() {
        let mut timeline = Timeline::new("t");
        timeline.record_event(&PoolEvent::AttemptLost {
            first: 1,
            count: 1,
            pid: 7,
            attempt: 1,
            started: Duration::from_millis(1),
            elapsed: Duration::from_millis(4),
            error: TaskError::WorkerDied {
                pid: 7,
                cause: ExitCause::Signal(9),
            },
        });
        timeline.record_event(&PoolEvent::WorkerDied {
            pid: 7,
            at: Duration::from_millis(5),
            cause: ExitCause::Signal(9),
        });
        let mut retried = outcome(8, 1, 6, 2);
        retried.attempts = 2;
        timeline.record(&retried, None);
        let trace: Value = serde_json::from_str(&timeline.trace_json()).unwrap();
        let events = trace["traceEvents"].as_array().unwrap();
        let spans: Vec<_> = events.iter().filter(|e| e["ph"] == "X").collect();
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0]["args"]["outcome"], "worker died");
        assert_eq!(spans[0]["args"]["retried"], true);
        assert_eq!(spans[1]["args"]["attempt"], 2);
        let instants: Vec<_> = events
            .iter()
            .filter(|e| e["ph"] == "i")
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(instants, ["retry", "worker died"]);
    }
}
