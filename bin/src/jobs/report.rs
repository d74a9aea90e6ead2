//! How far a run of a job file has got, from its status file alone, as
//! dSQ's `dsqa` reports it: for a run that ended, or one going on elsewhere
//! (a Slurm array, another terminal).

use std::fmt::{self, Write};

use jiff::civil::DateTime;

use super::file::{Job, JobFile};
use super::slurm::format_array;
use super::status::{StatusFile, TIME_FORMAT};

/// The state of every job of a job file, by its status file (the last row of
/// each `Job_ID` wins; a row for an edited command does not count).
///
/// ```
/// use procpool_cli::jobs::{JobFile, Report, StatusFile};
/// let file = JobFile::parse("j.txt", b"echo a\nfalse\necho c\n").unwrap();
/// let status = StatusFile::parse(
///     "s.tsv",
///     "0\t0\th\t2024-05-01 12:00:00\t2024-05-01 12:00:01\t1.0\techo a\n\
///      1\t1\th\t2024-05-01 12:00:00\t2024-05-01 12:00:02\t2.0\tfalse\n",
/// )
/// .unwrap();
/// let report = Report::new(&file, &status);
/// assert_eq!(report.succeeded, [0]);
/// assert_eq!((report.failed.as_slice(), report.not_run.as_slice()), (&[(1, 1)][..], &[2][..]));
/// assert!(report.to_string().starts_with("3 job(s): 1 succeeded, 1 failed, 1 not run\n"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The number of jobs in the job file.
    pub jobs: usize,
    /// The `Job_ID`s whose last row has `Exit_Code` 0.
    pub succeeded: Vec<u64>,
    /// `(Job_ID, Exit_Code)` of the jobs whose last row has another code.
    pub failed: Vec<(u64, i32)>,
    /// The `Job_ID`s with no row for their command: never run, still
    /// running, or stopped before they could write one.
    pub not_run: Vec<u64>,
    /// Seconds from the first row's `Time_Started` to the last row's
    /// `Time_Ended`, if the rows have times that can be read.
    pub span: Option<f64>,
}

impl Report {
    /// The report of `file`'s jobs by `status`.
    pub fn new(file: &JobFile, status: &StatusFile) -> Report {
        let mut last = std::collections::HashMap::new();
        for row in &status.rows {
            last.insert(row.job_id, row);
        }
        let (mut succeeded, mut failed, mut not_run) = (Vec::new(), Vec::new(), Vec::new());
        let mut counted = Vec::new();
        for job in &file.jobs {
            let Some(&row) = last.get(&job.id).filter(|r| r.job == job.command) else {
                not_run.push(job.id);
                continue;
            };
            counted.push(row);
            if row.exit_code == 0 {
                succeeded.push(job.id);
            } else {
                failed.push((job.id, row.exit_code));
            }
        }
        let time = |text: &str| DateTime::strptime(TIME_FORMAT, text).ok();
        let first = counted.iter().filter_map(|r| time(&r.time_started)).min();
        let end = counted.iter().filter_map(|r| time(&r.time_ended)).max();
        let span = match (first, end) {
            (Some(first), Some(end)) if end >= first => {
                Some(end.duration_since(first).as_secs_f64())
            }
            _ => None,
        };
        Report {
            jobs: file.jobs.len(),
            succeeded,
            failed,
            not_run,
            span,
        }
    }

    /// Jobs that ended (with a row) per second, over [`span`](Self::span).
    pub fn rate(&self) -> Option<f64> {
        let ended = self.succeeded.len() + self.failed.len();
        self.span
            .filter(|&s| s > 0.0 && ended > 0)
            .map(|s| ended as f64 / s)
    }

    /// Seconds the jobs without a row would take at [`rate`](Self::rate).
    pub fn eta(&self) -> Option<f64> {
        self.rate().map(|r| self.not_run.len() as f64 / r)
    }

    /// Whether every job succeeded.
    pub fn done(&self) -> bool {
        self.succeeded.len() == self.jobs
    }

    /// The jobs to run again (failed and never run), in file order.
    pub fn rerun<'f>(&self, file: &'f JobFile) -> Vec<&'f Job> {
        let again: std::collections::HashSet<u64> = self
            .failed
            .iter()
            .map(|f| f.0)
            .chain(self.not_run.iter().copied())
            .collect();
        file.jobs.iter().filter(|j| again.contains(&j.id)).collect()
    }
}

impl fmt::Display for Report {
    /// Counts, then the failed and the never-run `Job_ID`s, then the rate
    /// and what is left at that rate; one line each.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} job(s): {} succeeded, {} failed, {} not run",
            self.jobs,
            self.succeeded.len(),
            self.failed.len(),
            self.not_run.len()
        )?;
        if !self.failed.is_empty() {
            let mut by_code = std::collections::BTreeMap::<i32, Vec<u64>>::new();
            for &(id, code) in &self.failed {
                by_code.entry(code).or_default().push(id);
            }
            let mut codes = String::new();
            for (code, ids) in &by_code {
                let sep = if codes.is_empty() { "" } else { "; " };
                write!(codes, "{sep}exit {code}: {}", format_array(ids))?;
            }
            let ids: Vec<u64> = self.failed.iter().map(|f| f.0).collect();
            writeln!(f, "failed: {} ({codes})", format_array(&ids))?;
        }
        if !self.not_run.is_empty() {
            writeln!(f, "not run: {}", format_array(&self.not_run))?;
        }
        if let (Some(rate), Some(span)) = (self.rate(), self.span) {
            write!(f, "rate: {rate:.2} job(s)/s over {span:.0} s")?;
            match self.eta() {
                Some(eta) if !self.not_run.is_empty() => writeln!(
                    f,
                    "; the {} left take about {eta:.0} s at that rate",
                    self.not_run.len()
                )?,
                _ => writeln!(f)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_row_wins_and_an_edited_command_counts_as_not_run() {
        let file = JobFile::parse("j", b"a\nb\nc\nd\n").unwrap();
        let status = StatusFile::parse(
            "s",
            "0\t1\th\t2024-05-01 12:00:00\t2024-05-01 12:00:10\t10.0\ta\n\
             0\t0\th\t2024-05-01 12:00:10\t2024-05-01 12:00:20\t10.0\ta\n\
             1\t0\th\t2024-05-01 12:00:00\t2024-05-01 12:00:05\t5.0\tb-old\n\
             2\t137\th\t2024-05-01 12:00:00\t2024-05-01 12:00:05\t5.0\tc\n",
        )
        .unwrap();
        let report = Report::new(&file, &status);
        assert_eq!(report.succeeded, [0]);
        assert_eq!(report.failed, [(2, 137)]);
        assert_eq!(report.not_run, [1, 3]);
        assert_eq!(report.span, Some(20.0));
        assert_eq!(report.rate(), Some(0.1));
        assert_eq!(report.eta(), Some(20.0));
        let ids: Vec<u64> = report.rerun(&file).iter().map(|j| j.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(
            report.to_string(),
            "4 job(s): 1 succeeded, 1 failed, 2 not run\n\
             failed: 2 (exit 137: 2)\n\
             not run: 1,3\n\
             rate: 0.10 job(s)/s over 20 s; the 2 left take about 20 s at that rate\n"
        );
    }
}
