//! Printing: human lines or JSON Lines on stdout, one-line errors on stderr.
//! A closed stdout (as in `procpool ... | head`) ends the program quietly.

use std::collections::HashMap;
use std::io::{self, Write};

use procpool::{MpiRank, Outcome, WorkerInfo};
use serde::Serialize;
use serde_json::{Value, json};

use crate::run::Finished;

/// Where results go: human text, or JSON Lines with `--json`.
pub struct Printer {
    pub json: bool,
    out: io::BufWriter<io::Stdout>,
    /// MPI workers by PID, to tag outcomes with their rank and host.
    ranks: HashMap<u32, MpiRank>,
    workers: Vec<WorkerInfo>,
}

impl Printer {
    pub fn new(json: bool) -> Self {
        Printer {
            json,
            out: io::BufWriter::new(io::stdout()),
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

    /// Prints one line and flushes it, so progress shows as it happens.
    pub fn line(&mut self, text: impl std::fmt::Display) {
        let written = writeln!(self.out, "{text}").and_then(|()| self.out.flush());
        if let Err(e) = written {
            if e.kind() == io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("procpool: cannot write to stdout: {e}");
            std::process::exit(2);
        }
    }

    /// The JSON Lines object for one outcome: index, pid, attempts, elapsed
    /// milliseconds, and `output` or `error`.
    pub fn json_outcome<O: Serialize>(&mut self, outcome: &Outcome<O>, extra: Value) {
        let mut object = json!({
            "index": outcome.index,
            "pid": outcome.pid,
            "attempts": outcome.attempts,
            "elapsed_ms": millis(outcome.elapsed),
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
    pub fn json_summary<O>(&mut self, finished: &Finished<O>, processes: usize, extra: Value) {
        let failed = finished.failed().count();
        let mut summary = json!({
            "tasks": finished.total,
            "ok": finished.outcomes.len() - failed,
            "failed": failed,
            "not_run": finished.total - finished.outcomes.len(),
            "processes": processes,
            "elapsed_ms": millis(finished.elapsed),
            "exit_code": finished.exit_code(),
        });
        if let Some(stopped) = &finished.stopped {
            summary["stopped"] = json!(stopped.to_string());
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

/// Milliseconds with microsecond resolution, for JSON.
pub fn millis(d: std::time::Duration) -> f64 {
    d.as_micros() as f64 / 1e3
}

/// Reports every failed task and a stop, one line each on stderr:
/// `procpool: task 3 (input 7): worker 4711 died: killed by signal 9 (SIGKILL)`.
pub fn report_failures<O>(finished: &Finished<O>, describe: impl Fn(usize) -> String) {
    for outcome in finished.failed() {
        if let Err(error) = &outcome.result {
            let attempts = if outcome.attempts > 1 {
                format!(" after {} attempts", outcome.attempts)
            } else {
                String::new()
            };
            eprintln!(
                "procpool: task {} ({}){attempts}: {error}",
                outcome.index,
                describe(outcome.index as usize)
            );
        }
    }
    if let Some(stopped) = &finished.stopped {
        eprintln!(
            "procpool: {stopped}; {} of {} tasks finished",
            finished.outcomes.len(),
            finished.total
        );
    }
}
