//! `procpool jobs JOBFILE --report`: how far a run of the job file has got,
//! from its status file (dSQ's `dsqa`), and a job file of what to run again.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, anyhow};
use procpool_cli::jobs::{self, JobFile, Report, StatusError, StatusFile};
use serde_json::json;

use crate::output::Printer;
use crate::run::exit;

/// Prints the report of `file`'s run by the status file at `status`, and
/// writes the failed and never-run jobs' commands to `rerun` if given.
/// Exit code 0 if every job succeeded, 1 if not (yet).
pub fn run(file: &JobFile, status: &Path, rerun: Option<&Path>, json: bool) -> anyhow::Result<u8> {
    let rows = match StatusFile::read(status) {
        Ok(rows) => rows,
        // Nothing has ended yet: every job is still to run.
        Err(StatusError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            StatusFile::parse(status, "").expect("an empty status file parses")
        }
        Err(e) => return Err(anyhow!(e).context("cannot report")),
    };
    let report = Report::new(file, &rows);
    let again = report.rerun(file);
    if let Some(path) = rerun {
        write_new(path, &again)?;
    }
    let mut printer = Printer::new(json);
    if json {
        let failed: Vec<u64> = report.failed.iter().map(|f| f.0).collect();
        printer.line(json!({ "report": {
            "jobs": report.jobs,
            "succeeded": report.succeeded.len(),
            "failed": report.failed.len(),
            "not_run": report.not_run.len(),
            "failed_job_ids": failed,
            "not_run_job_ids": report.not_run,
            "span_s": report.span,
            "rate_per_s": report.rate(),
            "eta_s": report.eta(),
            "status": status,
            "rerun": rerun,
        } }));
    } else {
        printer.line(format_args!(
            "{}: {}",
            status.display(),
            report.to_string().trim_end()
        ));
        if let Some(path) = rerun {
            printer.line(format_args!(
                "rerun job file: {} ({} job(s); or run --resume, which keeps their Job_IDs)",
                path.display(),
                again.len()
            ));
        }
    }
    Ok(if report.done() {
        exit::OK
    } else {
        exit::TASKS_FAILED
    })
}

/// Writes the jobs' commands, one a line, to a new file at `path`: whole or
/// not at all, and never over an existing file.
fn write_new(path: &Path, jobs: &[&jobs::Job]) -> anyhow::Result<()> {
    let fail = || format!("cannot write rerun job file {}", path.display());
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut staging = tempfile::Builder::new()
        .prefix(".rerun.")
        .tempfile_in(dir)
        .with_context(fail)?;
    for job in jobs {
        writeln!(staging, "{}", job.command).with_context(fail)?;
    }
    staging
        .persist_noclobber(path)
        .map_err(|e| anyhow!(e.error))
        .with_context(fail)?;
    Ok(())
}
