//! A job-file runner in the spirit of Dead Simple Queue (dSQ): each line of a
//! job file runs with `sh -c` on the pool, and a status TSV records each job
//! as it ends, with dSQ's columns.
//!
//! ```
//! use procpool_cli::jobs::{self, JobFile, RunOptions, StatusFile, StatusWriter};
//! # let pool = procpool_cli::doctest_pool(2);
//! let dir = tempfile::tempdir().unwrap();
//! let file = JobFile::parse("jobs.txt", b"# two jobs\necho one\nexit 3\n").unwrap();
//! let status_path = dir.path().join("status.tsv");
//! let mut status = StatusWriter::create(&status_path).unwrap();
//! let options = RunOptions::new(dir.path().join("logs"));
//! let report = jobs::run(&pool, &file.jobs, &options, &mut status, |_| {}).unwrap();
//! assert_eq!((report.finished, report.failed[0].row.job_id), (2, 2));
//!
//! let rows = StatusFile::read(&status_path).unwrap().rows;
//! assert_eq!(rows.len(), 2);
//! assert!(rows.iter().any(|r| r.job_id == 1 && r.exit_code == 0 && r.job == "echo one"));
//! ```

mod file;
mod report;
mod slurm;
mod status;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

pub use file::{Job, JobFile, JobFileError};
pub use report::Report;
pub use slurm::{
    BadArray, SlurmError, SlurmOptions, SlurmScript, format_array, parse_array, write_id_list,
};
pub use status::{
    HEADER, MalformedRow, StatusError, StatusFile, StatusRow, StatusWriter, TIME_FORMAT, escape,
    format_time, unescape,
};

pub use crate::tasks::{CANNOT_START, JOB_ID_VAR, JOB_TOKEN_VAR};

use crate::tasks::{JobReport, JobSpec, ShellJob, hostname};
use procpool::{Outcome, Pool};
use procpool::{PoolError, TaskError};

/// `Exit_Code` of a job whose worker failed under it (died, or the pool
/// failed to run the task), as GNU `timeout` uses 125 for its own failures.
pub const WORKER_FAILED: i32 = 125;

/// How jobs run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where each job's `<Job_ID>.out` and `<Job_ID>.err` go, created if
    /// missing; `None` discards the jobs' output.
    pub logs: Option<PathBuf>,
    /// Stop a job's process group after this long.
    pub timeout: Option<Duration>,
    /// Between SIGTERM and SIGKILL when a job's group is stopped.
    pub grace: Duration,
    /// Run a job that exits non-zero up to this many more times.
    pub retries: u32,
    /// The flag a stop signal raises, to record a stop as the truth: a job
    /// that ends unsucceeded while it is raised (its worker, its shell
    /// signalled with this process, as Slurm signals every process of an
    /// array task) or has not ended when the run stops gets a row of
    /// `Exit_Code` 128 + the signal, saying so. `None`: such jobs get the
    /// rows their ends gave, or none.
    pub stop: Option<procpool::signal::InterruptFlag>,
}

impl RunOptions {
    /// Logs in `logs`, no timeout, a grace period of 1 s, no retries.
    pub fn new(logs: impl Into<PathBuf>) -> Self {
        RunOptions {
            logs: Some(logs.into()),
            timeout: None,
            grace: Duration::from_secs(1),
            retries: 0,
            stop: None,
        }
    }
}

/// One finished job: its status row and what else is known about it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// The row written to the status file.
    pub row: StatusRow,
    /// How many times it ran.
    pub attempts: u32,
    /// Whether the timeout stopped it.
    pub timed_out: bool,
    /// The worker that ran it.
    pub worker_pid: u32,
    /// When its task started, from the pool's start, and how long it ran
    /// (see [`Outcome::started`]).
    pub ran: (Duration, Duration),
    /// Why it could not run, or why its worker failed, when so.
    pub error: Option<String>,
}

impl JobRecord {
    /// Whether it exited 0.
    pub fn succeeded(&self) -> bool {
        self.row.exit_code == 0
    }
}

/// Why a run could not start, or stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The pool stopped (interrupted, or workers cannot be started).
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// A status row could not be written.
    #[error(transparent)]
    Status(#[from] StatusError),
    /// The log directory cannot be created.
    #[error("cannot create log directory {}", path.display())]
    Logs {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// What a run did. Only failed jobs are kept, so memory stays flat on a
/// long job file; every record is handed to `run`'s callback.
#[derive(Debug)]
pub struct RunReport {
    /// How many jobs were to run.
    pub total: usize,
    /// How many jobs ended (succeeded or failed).
    pub finished: usize,
    /// The jobs that ended with a non-zero `Exit_Code`, in the order they ended.
    pub failed: Vec<JobRecord>,
    /// Why the run stopped before every job ended, if it did.
    pub stopped: Option<RunError>,
    /// When it stopped early: how many jobs had started and not ended (they
    /// were stopped while running and have no row), if known.
    pub stopped_running: Option<usize>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl RunReport {
    /// How many jobs ended with `Exit_Code` 0.
    pub fn succeeded(&self) -> usize {
        self.finished - self.failed.len()
    }
}

/// Runs `jobs` on `pool`, each as it can, and writes each one's status row
/// as soon as it ends; `each` sees every record after its row is written.
///
/// A failed job is not an error: it is a record with a non-zero
/// `Exit_Code`. When the pool is interrupted or a row cannot be written the
/// run stops, and [`RunReport::stopped`] says why; rows of finished jobs are
/// in the status file.
///
/// # Errors
///
/// If the log directory cannot be created; then nothing ran.
pub fn run(
    pool: &Pool,
    jobs: &[Job],
    options: &RunOptions,
    status: &mut StatusWriter,
    mut each: impl FnMut(&JobRecord),
) -> Result<RunReport, RunError> {
    if let Some(dir) = &options.logs {
        std::fs::create_dir_all(dir).map_err(|source| RunError::Logs {
            path: dir.clone(),
            source,
        })?;
    }
    let start = Instant::now();
    let mut starts = Starts::listen();
    let started = starts.as_ref().map(|s| s.name.clone());
    let specs = jobs.iter().map(|job| JobSpec {
        id: job.id,
        command: job.command.clone(),
        logs: options.logs.clone(),
        timeout: options.timeout,
        grace: options.grace,
        retries: options.retries,
        started: started.clone(),
    });
    let mut finished = 0;
    let mut failed = Vec::new();
    let mut stopped = None;
    let mut ended = vec![false; jobs.len()];
    // One job per message, so each row is written as its own job ends.
    for result in pool.imap_unordered(ShellJob, specs).chunksize(1).outcomes() {
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(e) => {
                stopped = Some(RunError::Pool(e));
                break;
            }
        };
        if let Some(starts) = &mut starts {
            starts.drain();
        }
        let index = outcome.index as usize;
        let mut record = record(&jobs[index], outcome);
        if let Some(signal) = options.stop.as_ref().and_then(|f| stopped_by(f, &record)) {
            record_stop(&mut record, signal);
        }
        ended[index] = true;
        if let Err(e) = status.write(&record.row) {
            stopped = Some(RunError::Status(e));
            break;
        }
        each(&record);
        finished += 1;
        if !record.succeeded() {
            failed.push(record);
        }
    }
    // A stop that ended the run before these jobs did: each gets its row.
    if let (Some(RunError::Pool(PoolError::Interrupted { signal })), Some(_)) =
        (&stopped, &options.stop)
    {
        let signal = *signal;
        for (job, _) in jobs.iter().zip(&ended).filter(|(_, ended)| !**ended) {
            let now = SystemTime::now();
            let mut record = JobRecord {
                row: StatusRow {
                    job_id: job.id,
                    exit_code: 0,
                    hostname: hostname().to_string(),
                    time_started: format_time(now.checked_sub(start.elapsed()).unwrap_or(now)),
                    time_ended: format_time(now),
                    time_elapsed: (start.elapsed().as_secs_f64() * 1e3).round() / 1e3,
                    job: job.command.clone(),
                },
                attempts: 0,
                timed_out: false,
                worker_pid: 0,
                ran: (Duration::ZERO, start.elapsed()),
                error: None,
            };
            record_stop(&mut record, signal);
            if status.write(&record.row).is_err() {
                break;
            }
            each(&record);
            finished += 1;
            failed.push(record);
        }
    }
    // Every job that started has said so before its shell ran.
    let stopped_running = match (&stopped, &mut starts) {
        (Some(_), Some(starts)) => {
            starts.drain();
            Some(starts.count.saturating_sub(finished))
        }
        _ => None,
    };
    Ok(RunReport {
        total: jobs.len(),
        finished,
        failed,
        stopped,
        stopped_running,
        elapsed: start.elapsed(),
    })
}

/// The stop signal to blame for `record`'s end, if it is one a stop gives
/// (its worker died, or its shell was killed by a signal) and the flag is
/// raised now or within a moment: the signals reach every process of an
/// array task at once, and the job's end can be seen before this process's
/// own signal is.
fn stopped_by(flag: &procpool::signal::InterruptFlag, record: &JobRecord) -> Option<i32> {
    let code = record.row.exit_code;
    if code != WORKER_FAILED && code <= 128 {
        return None;
    }
    let deadline = Instant::now() + Duration::from_millis(300);
    loop {
        if let Some(signal) = flag.received() {
            return Some(signal);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Makes `record` say that a stop by `signal` ended its job.
fn record_stop(record: &mut JobRecord, signal: i32) {
    record.row.exit_code = 128 + signal;
    record.error = Some(format!(
        "stopped by {}, which this run received (a cancel, a time limit or a preemption under Slurm)",
        procpool::signal::signal_name(signal)
    ));
}

/// Counts the jobs that started, each told by its worker over an abstract
/// Unix datagram socket: nothing in the file system, gone with the process.
struct Starts {
    socket: std::os::unix::net::UnixDatagram,
    name: String,
    count: usize,
}

impl Starts {
    /// A socket with a name of this process's own; `None` where none can be
    /// bound (then counts are unknown, and the run goes on).
    fn listen() -> Option<Self> {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixDatagram};
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("procpool-jobs-{}-{nanos}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).ok()?;
        let socket = UnixDatagram::bind_addr(&addr).ok()?;
        socket.set_nonblocking(true).ok()?;
        Some(Starts {
            socket,
            name,
            count: 0,
        })
    }

    /// Counts the messages waiting.
    fn drain(&mut self) {
        let mut buf = [0u8; 32];
        while self.socket.recv(&mut buf).is_ok() {
            self.count += 1;
        }
    }
}

/// The record of a job from its outcome; a worker that failed under the job
/// gives [`WORKER_FAILED`] and times seen from here.
fn record(job: &Job, outcome: Outcome<JobReport>) -> JobRecord {
    let ran = (outcome.started(), outcome.elapsed());
    let report = outcome.result.unwrap_or_else(|error| {
        let ended = SystemTime::now();
        JobReport {
            exit_code: WORKER_FAILED,
            hostname: hostname().to_string(),
            started: ended.checked_sub(ran.1).unwrap_or(ended),
            ended,
            elapsed: ran.1,
            attempts: outcome.attempts,
            timed_out: matches!(*error, TaskError::TimedOut { .. }),
            error: Some(error.to_string()),
        }
    });
    JobRecord {
        row: StatusRow {
            job_id: job.id,
            exit_code: report.exit_code,
            hostname: report.hostname,
            time_started: format_time(report.started),
            time_ended: format_time(report.ended),
            // Milliseconds, as written, so the record equals the row read back.
            time_elapsed: (report.elapsed.as_secs_f64() * 1e3).round() / 1e3,
            job: job.command.clone(),
        },
        attempts: report.attempts,
        timed_out: report.timed_out,
        worker_pid: outcome.pid,
        ran,
        error: report.error,
    }
}

/// The default status file of a job file: its name with `_status.tsv`, in
/// the current directory (`flip.txt` gives `flip_status.tsv`).
///
/// ```
/// use std::path::Path;
/// let path = procpool_cli::jobs::default_status_path(Path::new("data/flip.txt"));
/// assert_eq!(path, Path::new("flip_status.tsv"));
/// ```
pub fn default_status_path(job_file: &Path) -> PathBuf {
    PathBuf::from(format!("{}_status.tsv", stem(job_file)))
}

/// The default log directory of a job file: its name with `_logs`, in the
/// current directory (`flip.txt` gives `flip_logs`).
pub fn default_logs_path(job_file: &Path) -> PathBuf {
    PathBuf::from(format!("{}_logs", stem(job_file)))
}

fn stem(job_file: &Path) -> String {
    job_file
        .file_stem()
        .map_or_else(|| "jobs".to_string(), |s| s.to_string_lossy().into_owned())
}
