//! The Chrome Trace Event Format JSON of a [`Timeline`].

use serde_json::json;

use super::{MarkKind, Timeline};

/// The trace of `t`; see [`Timeline::trace_json`].
pub(super) fn write(t: &Timeline) -> String {
    // Written straight into one buffer, not built as a tree of values:
    // 100,000 events take milliseconds, not most of a second.
    let mut out = Trace(Vec::with_capacity(256 + t.bars.len() * 180));
    let supervisor = std::process::id();
    out.raw("{\"traceEvents\":[");
    let mut first = true;
    let mut next = |out: &mut Trace| {
        if !std::mem::take(&mut first) {
            out.raw(",\n");
        }
    };
    let mut meta = |out: &mut Trace, pid: u32, name: &str| {
        for kind in ["process_name", "thread_name"] {
            next(out);
            out.raw("{\"name\":");
            out.string(kind);
            out.fmt(format_args!(
                ",\"ph\":\"M\",\"pid\":{pid},\"tid\":{pid},\"args\":{{\"name\":"
            ));
            out.string(name);
            out.raw("}}");
        }
    };
    meta(&mut out, supervisor, "supervisor");
    for lane in &t.lanes {
        meta(&mut out, lane.pid, &format!("worker {}", t.lane_name(lane)));
    }
    let next = || ",\n";
    for bar in &t.bars {
        let pid = t.lanes[bar.lane as usize].pid;
        out.raw(next());
        out.fmt(format_args!("{{\"name\":\"task {}", bar.index));
        if let Some(label) = t.label(bar) {
            out.raw(" ");
            out.escaped(label);
        }
        out.fmt(format_args!(
            "\",\"cat\":\"task\",\"ph\":\"X\",\"pid\":{pid},\"tid\":{pid},\"ts\":"
        ));
        out.micros(bar.start_ns);
        out.raw(",\"dur\":");
        out.micros(bar.dur_ns);
        out.fmt(format_args!(
            ",\"args\":{{\"index\":{},\"attempt\":{},\"outcome\":\"{}\"",
            bar.index,
            bar.attempt,
            bar.status.name()
        ));
        if let Some(label) = t.label(bar) {
            out.raw(",\"input\":");
            out.string(label);
        }
        if bar.retried {
            out.raw(",\"retried\":true");
        }
        out.raw("}}");
    }
    for span in &t.spans {
        let pid = t.lanes[span.lane as usize].pid;
        out.raw(next());
        out.fmt(format_args!(
                "{{\"name\":\"{} tasks (merged)\",\"cat\":\"merged\",\"ph\":\"X\",\"pid\":{pid},\"tid\":{pid},\"ts\":",
                span.tasks
            ));
        out.micros(span.start_ns);
        out.raw(",\"dur\":");
        out.micros(span.end_ns - span.start_ns);
        out.fmt(format_args!(
            ",\"args\":{{\"tasks\":{},\"outcome\":\"{}\"}}}}",
            span.tasks,
            span.status.name()
        ));
    }
    for mark in &t.marks {
        let pid = t.lanes[mark.lane as usize].pid;
        let (name, key) = match mark.kind {
            MarkKind::Died => ("worker died", "cause"),
            MarkKind::Retry => ("retry", "task"),
            MarkKind::TimedOut => ("timed out", "task"),
        };
        out.raw(next());
        out.fmt(format_args!(
                "{{\"name\":\"{name}\",\"cat\":\"event\",\"ph\":\"i\",\"s\":\"p\",\"pid\":{pid},\"tid\":{pid},\"ts\":"
            ));
        out.micros(mark.at_ns);
        out.fmt(format_args!(",\"args\":{{\"{key}\":"));
        out.string(&mark.what);
        out.raw("}}");
    }
    for phase in &t.phases {
        out.raw(next());
        out.raw("{\"name\":");
        out.string(&phase.label);
        out.fmt(format_args!(
            ",\"cat\":\"supervisor\",\"ph\":\"X\",\"pid\":{supervisor},\"tid\":{supervisor},\"ts\":"
        ));
        out.micros(phase.start_ns);
        out.raw(",\"dur\":");
        out.micros(phase.end_ns - phase.start_ns);
        out.raw(",\"args\":{}}");
    }
    let other = json!({
        "title": t.title,
        "clock": "CLOCK_MONOTONIC; ts in microseconds since the timeline began (for the command line: when procpool started)",
        "clock_uncertainty_us": t.clock_uncertainty.as_nanos() as f64 / 1e3,
        "tasks": t.tasks,
        "merged_tasks": t.aggregated,
        "limit": t.limit,
        "dropped_events": t.dropped_events,
    });
    out.raw("],\n\"displayTimeUnit\":\"ms\",\n\"otherData\":");
    out.raw(&other.to_string());
    out.raw("}\n");
    String::from_utf8(out.0).unwrap_or_default()
}

/// A JSON document being written.
struct Trace(Vec<u8>);

impl Trace {
    fn fmt(&mut self, args: std::fmt::Arguments) {
        use std::io::Write as _;
        let _ = self.0.write_fmt(args);
    }

    fn raw(&mut self, text: &str) {
        self.0.extend_from_slice(text.as_bytes());
    }

    /// `text` as a JSON string, quotes included.
    fn string(&mut self, text: &str) {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.0, text);
    }

    /// `text` escaped for inside a JSON string.
    fn escaped(&mut self, text: &str) {
        let from = self.0.len();
        self.string(text);
        // Drop the quotes serde_json put around it.
        self.0.pop();
        self.0.remove(from);
    }

    /// Nanoseconds as microseconds, exactly: `1234.567`.
    fn micros(&mut self, ns: u64) {
        use std::io::Write as _;
        let _ = write!(self.0, "{}.{:03}", ns / 1000, ns % 1000);
    }
}
