//! `procpool jobs JOBFILE`: each line of a job file runs with `sh -c` on the
//! pool, and a status TSV records each job as it ends (dSQ's columns).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use procpool::PoolError;
use procpool::signal::signal_name;
use procpool_cli::jobs::{
    self, Job, JobFile, JobRecord, RunError, RunOptions, SlurmOptions, SlurmScript, StatusError,
    StatusFile, StatusWriter,
};
use serde_json::json;

use crate::cli::{BackendKind, Global, parse_seconds};
use crate::output::Printer;
use crate::run::{build_pool, exit};
use crate::warn;

/// The arguments of `procpool jobs`.
#[derive(Debug, Args)]
#[command(after_help = "\
For jobs, -p N runs N jobs at once; --timeout SECONDS stops a job's whole process group \
(SIGTERM, then SIGKILL after --grace) and its worker goes on; --retries K reruns a job \
that exits non-zero up to K more times.

An earlier run's record is never replaced unasked: if the status file holds rows, or a job's \
log file exists, jobs refuses to start (exit 2, nothing written) unless --resume (run what did \
not succeed, append rows, replace those jobs' logs) or --force (start over: replace the status \
file and the logs). --only appends too.

Status TSV columns (dSQ's, plus a header row): Job_ID, Exit_Code, Hostname, Time_Started, \
Time_Ended, Time_Elapsed, Job. A job killed by signal N records 128+N; one that could not \
start records 126, one whose worker failed under it 125. Each job gets PROCPOOL_JOB_ID \
in its environment. Exit status: 0 if every job succeeded, 1 if some failed, 2 on bad \
usage, 128+N if stopped by signal N (130 SIGINT, 143 SIGTERM, 129 SIGHUP).")]
pub struct JobsArgs {
    /// The job file: one shell command per line; blank lines and lines
    /// starting with # are skipped but counted, so a job's Job_ID is its
    /// zero-based line number
    #[arg(value_name = "JOBFILE")]
    job_file: PathBuf,
    /// Run nothing: report how far a run of JOBFILE has got, from its status
    /// file (counts by state, failed and never-run Job_IDs, the rate and
    /// what is left), for a run that ended or one going on elsewhere, as
    /// dSQ's dsqa does; exit 0 if every job succeeded, else 1
    #[arg(long, conflicts_with_all = ["resume", "force", "only", "slurm", "submit"])]
    report: bool,
    /// With --report: write the failed and never-run jobs' commands, one a
    /// line, to this new job file (dsqa's rerun file)
    #[arg(long, value_name = "FILE", requires = "report")]
    rerun: Option<PathBuf>,
    /// The status TSV, one row per finished job
    /// [default: JOBFILE's name + _status.tsv, in the current directory]
    #[arg(long, value_name = "FILE")]
    status: Option<PathBuf>,
    /// The directory of each job's stdout and stderr, <Job_ID>.out and <Job_ID>.err
    /// [default: JOBFILE's name + _logs, in the current directory]
    #[arg(long, value_name = "DIR")]
    logs: Option<PathBuf>,
    /// Discard the jobs' stdout and stderr instead of writing log files
    /// (for jobs that write their own results, and file systems where
    /// creating two files per job is dear)
    #[arg(long, conflicts_with = "logs")]
    no_logs: bool,
    /// Run only the jobs without a row of Exit_Code 0 and the same Job_ID and
    /// command in the status file (all of them if it does not exist yet), and
    /// append to it
    #[arg(long)]
    resume: bool,
    /// Start over: replace a status file that holds rows, and the logs of the
    /// jobs that run, which jobs otherwise refuses to do
    #[arg(long, conflicts_with_all = ["resume", "only"])]
    force: bool,
    /// Run only these Job_IDs (e.g. 4 or 0-9,12) and append to the status file,
    /// as each task of a Slurm array does
    #[arg(long, value_name = "IDS", value_parser = |s: &str| jobs::parse_array(s).map(JobIds))]
    only: Option<JobIds>,
    /// Seconds between SIGTERM and SIGKILL when a job's process group is stopped
    #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = parse_seconds)]
    grace: Duration,
    /// Run as one task of a Slurm array (what --slurm's script passes):
    /// exit with the job's own Exit_Code, 0 to 255, so Slurm's records show
    /// it; and a stop signal (a cancel, a time limit, a preemption) gives the
    /// job a row of Exit_Code 128 + the signal, whatever its end looked like
    #[arg(long)]
    array_task: bool,
    /// Print a Slurm job-array script whose array tasks run one line each
    /// through procpool, instead of running the jobs
    #[arg(long, group = "slurm_mode")]
    slurm: bool,
    /// Submit that script with sbatch instead of printing it, and print the
    /// array's job ID
    #[arg(long, group = "slurm_mode")]
    submit: bool,
    /// With --submit: wait until every array task has ended (sbatch --wait),
    /// then print the summary a local run prints, from the status file
    #[arg(long, requires = "submit")]
    wait: bool,
    #[command(flatten)]
    sbatch: SbatchArgs,
}

/// The `Job_ID`s of `--only`, sorted and distinct.
#[derive(Debug, Clone)]
struct JobIds(Vec<u64>);

/// `#SBATCH` settings for `--slurm`.
#[derive(Debug, Args)]
struct SbatchArgs {
    /// With --slurm: the partition(s), e.g. day or day,week
    #[arg(long, value_name = "P", requires = "slurm_mode")]
    partition: Option<String>,
    /// With --slurm: the time limit of each array task, e.g. 30 (minutes), 2:00:00, 1-00:00:00
    #[arg(long, value_name = "T", requires = "slurm_mode")]
    time: Option<String>,
    /// With --slurm: memory per CPU, e.g. 4G
    #[arg(long, value_name = "M", requires = "slurm_mode")]
    mem_per_cpu: Option<String>,
    /// With --slurm: CPUs per array task
    #[arg(long, value_name = "C", requires = "slurm_mode", value_parser = clap::value_parser!(u32).range(1..))]
    cpus_per_task: Option<u32>,
    /// With --slurm: the job name [default: procpool- + JOBFILE's name]
    #[arg(long, value_name = "NAME", requires = "slurm_mode")]
    job_name: Option<String>,
    /// With --slurm: at most this many array tasks at once
    #[arg(long, value_name = "N", requires = "slurm_mode", value_parser = clap::value_parser!(u32).range(1..))]
    max_running: Option<u32>,
    /// With --slurm: one more sbatch argument for the script's #SBATCH
    /// lines, e.g. --sbatch=--account=lab (repeatable; or all after --)
    #[arg(
        long = "sbatch",
        value_name = "ARG",
        requires = "slurm_mode",
        allow_hyphen_values = true
    )]
    args: Vec<String>,
    /// With --slurm: more sbatch arguments, e.g. -- --qos high --gres gpu:1
    #[arg(last = true, value_name = "SBATCH ARGS", requires = "slurm_mode")]
    rest: Vec<String>,
}

pub fn run(global: &Global, args: JobsArgs) -> anyhow::Result<u8> {
    if global.chunksize.is_some() {
        bail!(
            "jobs sends one job per message so that each row is written as its job ends; --chunksize does not apply"
        );
    }
    let file = JobFile::read(&args.job_file)?;
    let status_path = args
        .status
        .clone()
        .unwrap_or_else(|| jobs::default_status_path(&args.job_file));
    if args.report {
        return super::report::run(&file, &status_path, args.rerun.as_deref(), global.json);
    }
    let logs = match (&args.logs, args.no_logs) {
        (_, true) => None,
        (Some(dir), false) => Some(dir.clone()),
        (None, false) => Some(jobs::default_logs_path(&args.job_file)),
    };

    let selected: Vec<&Job> = match &args.only {
        None => file.jobs.iter().collect(),
        Some(JobIds(ids)) => file.select(ids)?,
    };
    // Read (and check) the old status before anything may write to it.
    let pending = if args.resume {
        match StatusFile::read(&status_path) {
            Ok(old) => old.pending(selected.iter().copied()),
            // Nothing ran yet: everything is pending.
            Err(StatusError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                selected.clone()
            }
            Err(e) => return Err(anyhow!(e).context("cannot resume")),
        }
    } else {
        selected.clone()
    };
    let skipped = selected.len() - pending.len();

    if args.slurm || args.submit {
        return print_slurm(
            global,
            &args,
            &file,
            &pending,
            &status_path,
            logs.as_deref(),
        );
    }
    let mut printer = Printer::new(global.json);
    if pending.is_empty() {
        if printer.json {
            printer.line(json!({ "summary": {
                "jobs": skipped, "succeeded": 0, "failed": 0, "failed_job_ids": [],
                "skipped": skipped, "not_run": 0, "status": status_path, "logs": logs,
                "exit_code": exit::OK,
            } }));
        } else {
            printer.line(format_args!(
                "all {skipped} job(s) already succeeded in {}; nothing to run",
                status_path.display()
            ));
        }
        return Ok(exit::OK);
    }
    let appending = args.resume || args.only.is_some();
    if !appending && !args.force {
        refuse_to_replace(&status_path, logs.as_deref(), &pending)?;
    }

    // The job timeout is the worker's business: it stops the job's process
    // group and goes on. The pool's own timeout would stop the worker instead,
    // and its retries are for dead workers, so the pool gets neither.
    // Locally no more workers than jobs; on MPI the workers are the job's
    // ranks (as many as mpirun made, whatever the cores), unless -p says.
    let processes = match global.backend {
        BackendKind::Mpi => global.processes,
        BackendKind::Local => {
            let wanted = global.processes.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
            });
            Some(wanted.min(pending.len() as u32).max(1))
        }
    };
    let pool_options = Global {
        timeout: None,
        retries: 0,
        processes,
        ..*global
    };
    let (pool, _) = build_pool(&pool_options)?;
    // Only now is anything written: the log directory, then the status file
    // (and if that fails, the directories just made are removed again).
    let made = match &logs {
        Some(dir) => make_dirs(dir)?,
        None => None,
    };
    let opened = if appending {
        StatusWriter::append(&status_path)
    } else {
        StatusWriter::create(&status_path)
    };
    let mut status = match opened {
        Ok(status) => status,
        Err(e) => {
            if let (Some(dir), Some(top)) = (&logs, &made) {
                remove_dirs(dir, top);
            }
            return Err(e.into());
        }
    };
    let options = RunOptions {
        logs: logs.clone(),
        timeout: global.timeout,
        grace: args.grace,
        retries: global.retries,
        stop: args.array_task.then(crate::run::interrupt),
    };
    let to_run: Vec<Job> = pending.into_iter().cloned().collect();
    let line = crate::live::start(
        global,
        "jobs",
        Some(to_run.len() as u64),
        pool.processes(),
        1,
    );
    let report = jobs::run(&pool, &to_run, &options, &mut status, |record| {
        if crate::recording::active() {
            crate::recording::record_attempt(
                record.worker_pid,
                record.row.job_id,
                record.attempts,
                record.ran,
                job_status(record),
                &format!("job {}", record.row.job_id),
            );
        }
        if printer.json {
            printer.line(record_json(record));
        }
        if !record.succeeded() {
            crate::live::failed();
            warn!("procpool: {}", describe_failure(record));
        }
    })?;
    drop(line);
    let processes = pool.processes();
    crate::recording::record_events(&pool);
    drop(pool);

    let failed: Vec<u64> = report.failed.iter().map(|r| r.row.job_id).collect();
    let code = match &report.stopped {
        Some(RunError::Pool(PoolError::Interrupted { signal })) => exit::signal(*signal),
        Some(_) => exit::SETUP,
        None if failed.is_empty() => exit::OK,
        None if args.array_task && report.total == 1 => {
            u8::try_from(report.failed[0].row.exit_code.clamp(1, 255)).unwrap_or(u8::MAX)
        }
        None => exit::TASKS_FAILED,
    };
    let succeeded = report.succeeded();
    if printer.json {
        let mut summary = json!({
            "jobs": report.total + skipped,
            "succeeded": succeeded,
            "failed": failed.len(),
            "failed_job_ids": sorted(&failed),
            "skipped": skipped,
            "not_run": report.total - report.finished,
            "stopped_running": report.stopped_running,
            "processes": processes,
            "elapsed_ms": report.elapsed.as_secs_f64() * 1e3,
            "status": status_path,
            "logs": logs,
            "exit_code": code,
        });
        if let Some(stopped) = &report.stopped {
            summary["stopped"] = json!(crate::output::causes(stopped));
        }
        printer.line(json!({ "summary": summary }));
    } else {
        let mut line = format!(
            "{} of {} job(s) ran: {succeeded} succeeded, {} failed",
            report.finished,
            report.total,
            failed.len()
        );
        if skipped > 0 {
            line += &format!("; {skipped} skipped, having succeeded before");
        }
        let output = logs.as_ref().map_or_else(
            || "output discarded".to_string(),
            |dir| format!("logs in {}", dir.display()),
        );
        printer.line(format_args!(
            "{line}; status in {}, {output}",
            status_path.display()
        ));
    }
    if !failed.is_empty() {
        warn!(
            "procpool: failed Job_IDs: {}",
            jobs::format_array(&sorted(&failed))
        );
    }
    if let Some(stopped) = &report.stopped {
        let not_run = report.total - report.finished;
        let unfinished = match report.stopped_running {
            Some(running) => format!(
                "{running} stopped while running and {} never started",
                not_run.saturating_sub(running)
            ),
            None => format!("{not_run} stopped or never started"),
        };
        warn!(
            "procpool: {}; {} of {} job(s) finished and are in {}; {unfinished} (no row: --resume runs them)",
            crate::output::causes(stopped),
            report.finished,
            report.total,
            status_path.display()
        );
    }
    Ok(code)
}

fn sorted(ids: &[u64]) -> Vec<u64> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids
}

/// `job 3 exited with 1: false`, `job 5 timed out after 2 attempts (exit 143): sleep 9`.
fn describe_failure(record: &JobRecord) -> String {
    let row = &record.row;
    let how = if record.timed_out {
        format!("timed out and was stopped (Exit_Code {})", row.exit_code)
    } else if let Some(error) = &record.error {
        format!("{error} (Exit_Code {})", row.exit_code)
    } else if row.exit_code > 128 {
        format!(
            "was killed by {} (Exit_Code {})",
            signal_name(row.exit_code - 128),
            row.exit_code
        )
    } else {
        format!("exited with {}", row.exit_code)
    };
    let attempts = match record.attempts {
        0 | 1 => String::new(),
        n => format!(" after {n} attempts"),
    };
    format!("job {} {how}{attempts}: {}", row.job_id, shorten(&row.job))
}

/// The longest command echoed whole in a message, in bytes.
const ECHO_LIMIT: usize = 200;

/// A command as a one-line message shows it: tabs and line breaks escaped as
/// in the status file, cut after [`ECHO_LIMIT`] bytes with its length said.
fn shorten(command: &str) -> String {
    let line = jobs::escape(command);
    if line.len() <= ECHO_LIMIT {
        return line;
    }
    let mut end = ECHO_LIMIT;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &line[..end], command.len())
}

/// Refuses to start a fresh run over an earlier one's record: a status file
/// holding rows, or a log file of a job about to run.
fn refuse_to_replace(status: &Path, logs: Option<&Path>, pending: &[&Job]) -> anyhow::Result<()> {
    let how = "pass --resume to run only the jobs that did not succeed and append, \
               or --force to start over and replace it";
    if StatusFile::holds_rows(status)? {
        bail!(
            "status file {} holds the rows of an earlier run; {how}",
            status.display()
        );
    }
    let Some(dir) = logs.filter(|d| d.is_dir()) else {
        return Ok(());
    };
    for job in pending {
        for stream in ["out", "err"] {
            let path = procpool_cli::tasks::log_path(dir, job.id, stream);
            if path.symlink_metadata().is_ok() {
                bail!(
                    "log file {} of an earlier run exists; {how}",
                    path.display()
                );
            }
        }
    }
    Ok(())
}

/// Creates `dir` and its missing parents; returns the topmost directory it
/// created, if any, for [`remove_dirs`].
fn make_dirs(dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    let top = dir
        .ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .take_while(|a| a.symlink_metadata().is_err())
        .last()
        .map(Path::to_path_buf);
    if let Err(e) = std::fs::create_dir_all(dir) {
        if let Some(top) = &top {
            remove_dirs(dir, top);
        }
        return Err(anyhow!(e).context(format!("cannot create log directory {}", dir.display())));
    }
    Ok(top)
}

/// Removes the empty directories from `dir` up to `top`, as [`make_dirs`]
/// made them.
fn remove_dirs(dir: &Path, top: &Path) {
    for a in dir.ancestors() {
        if std::fs::remove_dir(a).is_err() || a == top {
            break;
        }
    }
}

fn record_json(record: &JobRecord) -> serde_json::Value {
    let row = &record.row;
    let mut object = json!({
        "job_id": row.job_id,
        "exit_code": row.exit_code,
        "hostname": row.hostname,
        "time_started": row.time_started,
        "time_ended": row.time_ended,
        "time_elapsed": row.time_elapsed,
        "job": row.job,
        "attempts": record.attempts,
        "timed_out": record.timed_out,
        "pid": record.worker_pid,
    });
    if let Some(error) = &record.error {
        object["error"] = json!(error);
    }
    object
}

fn print_slurm(
    global: &Global,
    args: &JobsArgs,
    file: &JobFile,
    pending: &[&Job],
    status: &Path,
    logs: Option<&Path>,
) -> anyhow::Result<u8> {
    refuse_under_slurm(global, args)?;
    let mut printer = Printer::new(false);
    if pending.is_empty() {
        warn!(
            "procpool: every job already succeeded in {}; no array to submit",
            status.display()
        );
        return Ok(exit::OK);
    }
    let absolute = |p: &Path| {
        std::path::absolute(p).with_context(|| format!("cannot make {} absolute", p.display()))
    };
    let mut pass_on = Vec::new();
    if let Some(t) = global.timeout {
        pass_on.extend(["--timeout".to_string(), t.as_secs_f64().to_string()]);
    }
    if global.retries > 0 {
        pass_on.extend(["--retries".to_string(), global.retries.to_string()]);
    }
    if global.json {
        pass_on.push("--json".to_string());
    }
    if args.grace != Duration::from_secs(1) {
        pass_on.extend(["--grace".to_string(), args.grace.as_secs_f64().to_string()]);
    }
    let ids: Vec<u64> = pending.iter().map(|j| j.id).collect();
    let s = &args.sbatch;
    let max_array_size = max_array_size();
    let status_file = absolute(status)?;
    // IDs that are no array of their own go in a list beside the status file,
    // one per submission (an earlier array may still be reading its own).
    let id_list = if SlurmScript::ids_fit(&ids, max_array_size) {
        None
    } else {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let stem = status_file
            .file_stem()
            .map_or_else(|| "jobs".into(), |s| s.to_string_lossy());
        let list = status_file.with_file_name(format!("{stem}.ids.{stamp}.txt"));
        jobs::write_id_list(&list, &ids)
            .with_context(|| format!("cannot write the Job_ID list {}", list.display()))?;
        Some(list)
    };
    let script = SlurmScript {
        program: std::env::current_exe().context("cannot find the procpool program")?,
        job_file: std::fs::canonicalize(&file.path)
            .with_context(|| format!("cannot resolve {}", file.path.display()))?,
        ids: &ids,
        status: status_file,
        logs: logs.map(absolute).transpose()?,
        pass_on,
        options: SlurmOptions {
            job_name: s.job_name.clone(),
            partition: s.partition.clone(),
            time: s.time.clone(),
            mem_per_cpu: s.mem_per_cpu.clone(),
            cpus_per_task: s.cpus_per_task,
            max_running: s.max_running,
            extra: s.args.iter().chain(&s.rest).cloned().collect(),
        },
        max_array_size,
        id_list,
    }
    .render()?;
    if !args.submit {
        printer.line(script.trim_end());
        return Ok(exit::OK);
    }
    submit(&script, args.wait, &ids, status, logs)
}

/// The cluster's `MaxArraySize`, from `scontrol show config`; where there
/// is no cluster to ask, Slurm's default, 1001.
fn max_array_size() -> u64 {
    const DEFAULT: u64 = 1001;
    let Ok(out) = std::process::Command::new("scontrol")
        .args(["show", "config"])
        .stderr(std::process::Stdio::null())
        .output()
    else {
        return DEFAULT;
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_once('='))
        .find(|(key, _)| key.trim() == "MaxArraySize")
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(DEFAULT)
}

/// Refuses, in one line each, the options that cannot apply to an array
/// whose tasks run one job each (rather than dropping them).
fn refuse_under_slurm(global: &Global, args: &JobsArgs) -> anyhow::Result<()> {
    let one_job = "each array task runs one job";
    if let Some(n) = global.processes.filter(|&n| n != 1) {
        bail!(
            "-p {n} does not apply under --slurm: {one_job}; --max-running N sets how many run at once"
        );
    }
    if global.unordered {
        bail!("--unordered does not apply under --slurm: {one_job}");
    }
    if let Some(n) = global.maxtasksperchild {
        bail!(
            "--maxtasksperchild {n} does not apply under --slurm: {one_job} on a worker of its own"
        );
    }
    if global.backend == BackendKind::Mpi {
        bail!(
            "--backend mpi does not apply under --slurm: {one_job} on one node (for MPI steps under Slurm see docs/mpi.md)"
        );
    }
    if global.timeline.is_some() {
        bail!(
            "--timeline does not apply under --slurm: {one_job}, so no chart of the array is drawn"
        );
    }
    if args.force {
        bail!(
            "--force does not apply under --slurm: the array tasks append to the status file; remove it to start over, or use --resume"
        );
    }
    Ok(())
}

/// Submits `script` with `sbatch --parsable` (and `--wait`), printing the
/// job ID as soon as sbatch says it; with `wait`, then the summary of the
/// array's jobs from the status file.
fn submit(
    script: &str,
    wait: bool,
    ids: &[u64],
    status: &Path,
    logs: Option<&Path>,
) -> anyhow::Result<u8> {
    use std::io::{BufRead, Write};
    let mut command = std::process::Command::new("sbatch");
    command.arg("--parsable");
    if wait {
        command.arg("--wait");
    }
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("cannot run sbatch (is this a Slurm cluster's login node?)")?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin
        .write_all(script.as_bytes())
        .context("cannot hand the script to sbatch")?;
    drop(stdin);
    let mut first = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
    stdout
        .read_line(&mut first)
        .context("cannot read sbatch's answer")?;
    // --parsable prints `ID` or `ID;CLUSTER`.
    let id = first.trim().split(';').next().unwrap_or("").to_string();
    if !id.is_empty() {
        let mut printer = Printer::new(false);
        printer.line(&id);
    }
    let ended = child.wait().context("cannot wait for sbatch")?;
    if id.is_empty() {
        bail!("sbatch did not submit the array ({ended})");
    }
    if !wait {
        return Ok(exit::OK);
    }
    // sbatch --wait exits non-zero when a task failed: the rows say which.
    let old = StatusFile::read(status)?;
    let mut last = std::collections::BTreeMap::new();
    for row in &old.rows {
        last.insert(row.job_id, row.exit_code);
    }
    let failed: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| last.get(id).is_some_and(|&code| code != 0))
        .collect();
    let ran = ids.iter().filter(|id| last.contains_key(id)).count();
    let output = logs.map_or_else(
        || "output discarded".to_string(),
        |dir| format!("logs in {}", dir.display()),
    );
    let mut printer = Printer::new(false);
    printer.line(format_args!(
        "{ran} of {} job(s) ran: {} succeeded, {} failed; status in {}, {output}",
        ids.len(),
        ran - failed.len(),
        failed.len(),
        status.display()
    ));
    if !failed.is_empty() {
        warn!("procpool: failed Job_IDs: {}", jobs::format_array(&failed));
    }
    let never: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| !last.contains_key(id))
        .collect();
    if !never.is_empty() {
        warn!(
            "procpool: Job_IDs with no row (cancelled or never started; --resume runs them): {}",
            jobs::format_array(&never)
        );
    }
    Ok(if failed.is_empty() && never.is_empty() {
        exit::OK
    } else {
        exit::TASKS_FAILED
    })
}

/// How a job ended, for its bar in a `--timeline` chart.
fn job_status(record: &JobRecord) -> procpool_cli::timeline::Status {
    use procpool_cli::timeline::Status;
    match record.row.exit_code {
        0 => Status::Ok,
        _ if record.timed_out => Status::TimedOut,
        jobs::WORKER_FAILED if record.error.is_some() => Status::WorkerDied,
        _ => Status::Failed,
    }
}
