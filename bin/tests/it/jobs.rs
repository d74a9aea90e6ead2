//! `procpool jobs`: job files run through the real binary, status TSVs read
//! back, and no job process left behind.

use std::collections::BTreeMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use procpool_cli::jobs::{self, JobFile, RunOptions, StatusFile, StatusWriter};

use crate::util::{Scratch, bin, pool, show, wait_gone, wait_with_deadline};

/// Asserts every pid is gone within `secs`; kills the survivors first, so a
/// failing test leaves nothing behind either.
fn assert_gone(pids: &[u32], secs: f64, what: &str) {
    let left = wait_gone(pids, secs);
    for &pid in &left {
        let _ = procpool::sys::kill(pid, libc::SIGKILL);
    }
    assert!(left.is_empty(), "{what}: {left:?} still running");
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[test]
fn exit_codes_hosts_and_times_are_recorded_under_line_numbers() {
    let s = Scratch::new(
        "# comment: line 0\n\
         exit 0\n\
         \n\
         exit 3\n\
         \x20 # an indented comment\n\
         kill -9 $$\n\
         sleep 0.3\n",
    );
    let out = s.run(&["-p", "2", "jobs", "jobs.txt"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));

    let text = s.read("jobs_status.tsv");
    assert_eq!(
        text.lines().next(),
        Some("Job_ID\tExit_Code\tHostname\tTime_Started\tTime_Ended\tTime_Elapsed\tJob")
    );
    let rows = s.rows();
    assert_eq!(rows.keys().copied().collect::<Vec<_>>(), [1, 3, 5, 6]);
    let codes: Vec<i32> = rows.values().map(|r| r.exit_code).collect();
    assert_eq!(codes, [0, 3, 128 + 9, 0], "killed by SIGKILL records 137");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for row in rows.values() {
        assert_eq!(row.hostname, host.trim());
        assert!(row.time_ended >= row.time_started, "{row:?}");
    }
    assert_eq!(rows[&5].job, "kill -9 $$");
    assert!(rows[&6].time_elapsed >= 0.3, "{:?}", rows[&6]);
    let err = stderr(&out);
    assert!(err.contains("job 3 exited with 3: exit 3"), "{err}");
    assert!(
        err.contains("job 5 was killed by signal 9 (SIGKILL)"),
        "{err}"
    );
    assert!(err.contains("failed Job_IDs: 3,5"), "{err}");
}

#[test]
fn signals_the_workers_ignore_are_back_at_their_defaults_in_jobs() {
    // Workers ignore SIGINT (and Rust ignores SIGPIPE); were that inherited,
    // these shells would survive their own signal and exit 0.
    let s = Scratch::new("kill -INT $$; exit 0\nkill -PIPE $$; exit 0\n");
    let out = s.run(&["jobs", "jobs.txt"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let codes: Vec<i32> = s.rows().values().map(|r| r.exit_code).collect();
    assert_eq!(codes, [128 + 2, 128 + 13]);
}

#[test]
fn all_jobs_succeeding_exits_0_with_each_stream_in_its_own_log() {
    let s = Scratch::new(
        "for i in 1 2 3; do echo out$i; echo err$i >&2; done\n\
         echo \"I am $PROCPOOL_JOB_ID\"\n",
    );
    let out = s.run(&["jobs", "jobs.txt", "--logs", "my logs"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(s.read("my logs/0.out"), "out1\nout2\nout3\n");
    assert_eq!(s.read("my logs/0.err"), "err1\nerr2\nerr3\n");
    assert_eq!(s.read("my logs/1.out"), "I am 1\n");
    assert_eq!(s.read("my logs/1.err"), "");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("2 succeeded, 0 failed"), "{summary}");
}

#[test]
fn no_logs_discards_the_output_and_creates_no_log_file() {
    let s = Scratch::new("echo out; echo err >&2; touch ran\n");
    let out = s.run(&["jobs", "jobs.txt", "--no-logs"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let mut names: Vec<String> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["jobs.txt", "jobs_status.tsv", "ran"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("output discarded"));

    let both = s.run(&["jobs", "jobs.txt", "--no-logs", "--logs", "x"]);
    assert_eq!(both.status.code(), Some(2), "{}", show(&both));
}

#[test]
fn resume_skips_what_succeeded_and_reruns_failures_and_edited_lines() {
    let s = Scratch::new("echo 0 >> ran\necho 1 >> ran; exit 1\necho 2 >> ran\n");
    let first = s.run(&["jobs", "jobs.txt"]);
    assert_eq!(first.status.code(), Some(1), "{}", show(&first));
    assert_eq!(sorted_lines(&s.read("ran")), ["0", "1", "2"]);

    // Line 1 is fixed and line 2 edited: both run again, line 0 does not.
    std::fs::write(
        s.path("jobs.txt"),
        "echo 0 >> ran\necho 1 >> ran\necho 2 >> ran # edited\n",
    )
    .unwrap();
    std::fs::remove_file(s.path("ran")).unwrap();
    let resumed = s.run(&["jobs", "jobs.txt", "--resume"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", show(&resumed));
    assert_eq!(sorted_lines(&s.read("ran")), ["1", "2"]);
    let status = StatusFile::read(s.path("jobs_status.tsv")).unwrap();
    assert!(status.has_header);
    assert_eq!(status.rows.len(), 5, "rows are appended: {:?}", status.rows);
    let summary = String::from_utf8_lossy(&resumed.stdout);
    assert!(summary.contains("1 skipped"), "{summary}");

    // A status file without the header (as dSQ writes) resumes the same way.
    let text = s.read("jobs_status.tsv");
    let headerless: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(s.path("jobs_status.tsv"), headerless).unwrap();
    std::fs::remove_file(s.path("ran")).unwrap();
    let again = s.run(&["jobs", "jobs.txt", "--resume"]);
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
    assert_eq!(s.read("ran"), "", "nothing is left to run");
    assert!(String::from_utf8_lossy(&again.stdout).contains("all 3 job(s) already succeeded"));
}

fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

#[test]
fn a_malformed_status_file_stops_resume_and_is_left_untouched() {
    let s = Scratch::new("touch ran\n");
    let bad = "Job_ID\tExit_Code\tHostname\tTime_Started\tTime_Ended\tTime_Elapsed\tJob\n\
               0\tzero\tvm\t2024-05-01 12:00:00\t2024-05-01 12:00:01\t1.0\ttouch ran\n";
    std::fs::write(s.path("jobs_status.tsv"), bad).unwrap();
    let out = s.run(&["jobs", "jobs.txt", "--resume"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("status file jobs_status.tsv line 2")
            && err.contains("Exit_Code \"zero\" is not a whole number"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert_eq!(s.read("jobs_status.tsv"), bad);
    assert!(!s.path("ran").exists(), "no job ran");

    // With no status file yet there is nothing to skip: everything runs.
    let missing = s.run(&["jobs", "jobs.txt", "--resume", "--status", "new.tsv"]);
    assert_eq!(missing.status.code(), Some(0), "{}", show(&missing));
    assert!(s.path("ran").exists());
    assert_eq!(s.rows_of("new.tsv").len(), 1);
}

#[test]
fn retries_rerun_a_failing_job_and_keep_each_attempts_output() {
    // Fails twice, then succeeds: each run bumps a counter file.
    let flaky = "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; \
                 echo try $n; [ $n -ge 3 ]";
    let s = Scratch::new(&format!("{flaky}\n"));
    let out = s.run(&["--json", "--retries", "2", "jobs", "jobs.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let lines = json_lines(&out);
    assert_eq!(lines[0]["attempts"], 3);
    assert_eq!(lines[0]["exit_code"], 0);
    assert_eq!(s.read("jobs_logs/0.out"), "try 1\ntry 2\ntry 3\n");
    assert!(s.read("jobs_logs/0.err").contains("attempt 3 of 3"));

    std::fs::remove_file(s.path("count")).unwrap();
    let out = s.run(&["--json", "--retries", "1", "jobs", "jobs.txt", "--force"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let lines = json_lines(&out);
    assert_eq!(
        (
            lines[0]["attempts"].as_u64(),
            lines[0]["exit_code"].as_i64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(
        lines[1]["summary"]["failed_job_ids"],
        serde_json::json!([0])
    );
}

#[test]
fn a_timeout_stops_the_job_and_its_children_and_the_worker_goes_on() {
    let s = Scratch::new(
        "sleep 60 & echo $! > bg.pid; echo $$ > sh.pid; sleep 60\n\
         trap '' TERM; sleep 60 & echo $! > stubborn.pid; wait\n\
         echo after\n",
    );
    let out = s.run(&[
        "-p",
        "1",
        "--json",
        "--timeout",
        "0.5",
        "jobs",
        "jobs.txt",
        "--grace",
        "0.2",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let lines = json_lines(&out);
    let by_id: BTreeMap<u64, &serde_json::Value> = lines[..3]
        .iter()
        .map(|l| (l["job_id"].as_u64().unwrap(), l))
        .collect();
    assert_eq!(by_id[&0]["exit_code"], 128 + 15, "SIGTERM ended it");
    assert_eq!(by_id[&1]["exit_code"], 128 + 9, "it ignored SIGTERM");
    assert_eq!(by_id[&0]["timed_out"], true);
    assert_eq!(by_id[&2]["exit_code"], 0);
    assert_eq!(by_id[&2]["timed_out"], false);
    let workers: Vec<&serde_json::Value> = by_id.values().map(|l| &l["pid"]).collect();
    assert!(
        workers.iter().all(|p| *p == workers[0]),
        "one worker ran all: {workers:?}"
    );
    let pids = [s.pid("bg.pid"), s.pid("sh.pid"), s.pid("stubborn.pid")];
    assert_gone(&pids, 5.0, "job processes outlived the timeout");
    assert!(stderr(&out).contains("job 0 timed out and was stopped (Exit_Code 143)"));
}

#[test]
fn background_children_and_stdin_readers_do_not_hang_the_runner() {
    let s = Scratch::new(
        "sleep 60 & echo $! > bg.pid\n\
         (sleep 60 & echo $! > grandchild.pid) ; echo parent done\n\
         cat; read line; echo read nothing\n",
    );
    let out = s.run(&["-p", "2", "jobs", "jobs.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(s.read("jobs_logs/2.out"), "read nothing\n");
    let pids = [s.pid("bg.pid"), s.pid("grandchild.pid")];
    assert_gone(&pids, 5.0, "background children outlived their jobs");
}

#[test]
fn an_interrupted_run_keeps_finished_rows_and_leaves_no_job_behind() {
    for (signal, code) in [(libc::SIGTERM, 143), (libc::SIGINT, 130)] {
        let s = Scratch::new(
            "echo one\n\
             echo two\n\
             sleep 60 & echo $! > bg.pid; echo $$ > sh.pid; sleep 60\n\
             sleep 61\n",
        );
        let mut child = Command::new(bin())
            .current_dir(s.dir.path())
            .args(["-p", "2", "jobs", "jobs.txt"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The shell creates sh.pid before it writes the pid: wait for the pid.
        let ready = || {
            s.read("sh.pid").trim().parse::<u32>().is_ok()
                && s.read("jobs_status.tsv").lines().count() == 3
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(ready(), "the long job started after the short ones ended");
        let job_pids = [s.pid("bg.pid"), s.pid("sh.pid")];
        procpool::sys::kill(child.id(), signal).unwrap();
        let status = wait_with_deadline(&mut child, Duration::from_secs(30));
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(code), "{err}");
        assert!(err.contains("2 of 4 job(s) finished"), "{err}");
        let rows = s.rows();
        assert_eq!(rows.keys().copied().collect::<Vec<_>>(), [0, 1]);
        assert_gone(&job_pids, 5.0, "jobs outlived the interrupted run");
    }
}

#[test]
fn jobs_do_not_outlive_a_runner_killed_outright_with_its_workers() {
    let s = Scratch::new("sleep 60 & echo $! > bg.pid; echo $$ > sh.pid; sleep 60\n");
    let mut child = Command::new(bin())
        .current_dir(s.dir.path())
        .args(["jobs", "jobs.txt"])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    // The file exists as soon as the shell opens it: wait for its number.
    while s.read("sh.pid").trim().parse::<u32>().is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let job_pids = [s.pid("bg.pid"), s.pid("sh.pid")];
    // SIGKILL to the runner's whole process group: the runner and its
    // workers die at once, with no chance to clean up.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let status = wait_with_deadline(&mut child, Duration::from_secs(10));
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert_gone(&job_pids, 10.0, "jobs outlived their killed workers");
}

#[test]
fn a_job_that_cannot_start_records_126_and_the_others_run() {
    let s = Scratch::new("echo blocked\necho fine\n");
    // A directory where job 0's stdout log belongs cannot be opened as a file
    // (and is refused as an earlier log unless --force).
    std::fs::create_dir_all(s.path("jobs_logs/0.out")).unwrap();
    let out = s.run(&["jobs", "jobs.txt", "--force"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let rows = s.rows();
    assert_eq!(rows[&0].exit_code, jobs::CANNOT_START);
    assert_eq!(rows[&1].exit_code, 0);
    assert!(
        stderr(&out).contains("cannot open log file"),
        "{}",
        show(&out)
    );
}

#[test]
fn bad_job_files_and_ids_are_usage_errors_naming_them() {
    let s = Scratch::new("# nothing but a comment\n\n");
    let cases: [(&[&str], &str); 4] = [
        (&["jobs", "jobs.txt"], "job file jobs.txt has no jobs"),
        (&["jobs", "missing.txt"], "cannot read job file missing.txt"),
        (
            &["jobs", "jobs.txt", "--only", "x"],
            "\"x\" in \"x\" is not a Job_ID",
        ),
        (
            &["--chunksize", "4", "jobs", "jobs.txt"],
            "--chunksize does not apply",
        ),
    ];
    for (args, expected) in cases {
        let out = s.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
        assert!(stderr(&out).contains(expected), "{args:?}: {}", show(&out));
    }
    assert!(
        !s.path("jobs_status.tsv").exists(),
        "no status file for a run that never started"
    );
}

#[test]
fn only_runs_the_named_jobs_and_appends_to_the_status_file() {
    let s = Scratch::new("echo a\n\necho c\necho d\n");
    let out = s.run(&["jobs", "jobs.txt", "--only", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let out = s.run(&["jobs", "jobs.txt", "--only", "0,2"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(s.rows().keys().copied().collect::<Vec<_>>(), [0, 2, 3]);
    assert_eq!(
        s.read("jobs_status.tsv").matches("Job_ID").count(),
        1,
        "one header"
    );

    let out = s.run(&["jobs", "jobs.txt", "--only", "1-2"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("no job with Job_ID 1 "),
        "{}",
        show(&out)
    );
}

#[test]
fn the_slurm_script_is_an_array_of_the_jobs_whose_tasks_run_one_line_each() {
    let s = Scratch::new("# header\necho zero > z\necho one > o\n\nexit 4\n");
    let out = s.run(&[
        "--timeout",
        "30",
        "jobs",
        "jobs.txt",
        "--slurm",
        "--partition",
        "day",
        "--time",
        "2:00:00",
        "--mem-per-cpu",
        "4G",
        "--cpus-per-task",
        "2",
        "--max-running",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let script = String::from_utf8_lossy(&out.stdout).into_owned();
    let sbatch: Vec<&str> = script
        .lines()
        .filter(|l| l.starts_with("#SBATCH"))
        .collect();
    assert_eq!(
        sbatch,
        [
            "#SBATCH --array 1-2,4%5",
            "#SBATCH --job-name procpool-jobs",
            "#SBATCH --output procpool-jobs-%A_%a.out",
            "#SBATCH --ntasks 1",
            "#SBATCH --partition day",
            "#SBATCH --time 2:00:00",
            "#SBATCH --mem-per-cpu 4G",
            "#SBATCH --cpus-per-task 2",
        ]
    );
    assert!(script.starts_with("#!/bin/bash\n"));
    let dir = std::fs::canonicalize(s.dir.path()).unwrap();
    let exec = script.lines().last().unwrap();
    assert!(
        exec.contains(&format!("jobs {}", dir.join("jobs.txt").display())),
        "{exec}"
    );
    assert!(exec.contains("--timeout 30"), "{exec}");

    // Run the script as two array tasks would, from another directory.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("array.sh"), &script).unwrap();
    for task in ["2", "4"] {
        let out = Command::new("bash")
            .arg("array.sh")
            .current_dir(elsewhere.path())
            .env("SLURM_ARRAY_TASK_ID", task)
            .output()
            .unwrap();
        let expected = if task == "4" { 4 } else { 0 };
        assert_eq!(
            out.status.code(),
            Some(expected),
            "task {task}: {}",
            show(&out)
        );
    }
    assert_eq!(s.read("jobs_logs/2.out"), "");
    assert_eq!(
        std::fs::read_to_string(elsewhere.path().join("o")).unwrap(),
        "one\n"
    );
    let rows = s.rows();
    assert_eq!(rows.keys().copied().collect::<Vec<_>>(), [2, 4]);
    assert_eq!(rows[&4].exit_code, 4);

    // With --resume the array holds only what has not succeeded.
    let out = s.run(&["jobs", "jobs.txt", "--slurm", "--resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("#SBATCH --array 1,4\n"));

    let out = s.run(&["jobs", "jobs.txt", "--slurm", "--mem-per-cpu", "4 GB"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("--mem-per-cpu \"4 GB\""),
        "{}",
        show(&out)
    );
}

#[test]
fn the_library_runs_a_job_file_and_writes_each_row_as_its_job_ends() {
    let dir = tempfile::tempdir().unwrap();
    let file = JobFile::parse("j.txt", b"exit 0\nexit 1\n# c\nexit 2\n").unwrap();
    let status_path = dir.path().join("s.tsv");
    let mut status = StatusWriter::create(&status_path).unwrap();
    let pool = pool(2);
    let mut seen = Vec::new();
    let report = jobs::run(
        &pool,
        &file.jobs,
        &RunOptions::new(dir.path().join("logs")),
        &mut status,
        |record| {
            // When a record is handed over its row is already in the file.
            let on_disk = StatusFile::read(&status_path).unwrap().rows;
            assert!(on_disk.contains(&record.row), "{on_disk:?}");
            seen.push((record.row.job_id, record.worker_pid));
        },
    )
    .unwrap();
    assert!(report.stopped.is_none());
    assert_eq!(
        (report.total, report.finished, report.succeeded()),
        (3, 3, 1)
    );
    seen.sort_unstable();
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1, 3]);
    assert!(seen.iter().all(|s| pool.pids().contains(&s.1)), "{seen:?}");
    let mut failed: Vec<(u64, i32)> = report
        .failed
        .iter()
        .map(|r| (r.row.job_id, r.row.exit_code))
        .collect();
    failed.sort_unstable();
    assert_eq!(failed, [(1, 1), (3, 2)]);
    assert!(Path::new(&dir.path().join("logs/3.err")).exists());
}

#[test]
fn the_report_counts_a_run_by_state_and_writes_a_rerun_file_of_what_is_left() {
    let s = Scratch::new("echo a\nexit 3\n# c\nexit 4\necho e\n");
    let out = s.run(&["-p", "2", "jobs", "jobs.txt"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    // A job added since has no row: it never ran.
    std::fs::write(
        s.path("jobs.txt"),
        "echo a\nexit 3\n# c\nexit 4\necho e\necho new\n",
    )
    .unwrap();

    let out = s.run(&["jobs", "jobs.txt", "--report", "--rerun", "again.txt"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "not all succeeded: {}",
        show(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(
            "jobs_status.tsv: 5 job(s): 2 succeeded, 2 failed, 1 not run\n\
             failed: 1,3 (exit 3: 1; exit 4: 3)\n\
             not run: 5\n"
        ),
        "{}",
        show(&out)
    );
    assert_eq!(s.read("again.txt"), "exit 3\nexit 4\necho new\n");
    // The rerun file is never written over.
    let out = s.run(&["jobs", "jobs.txt", "--report", "--rerun", "again.txt"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(stderr(&out).contains("again.txt"), "{}", show(&out));

    let out = s.run(&["--json", "jobs", "jobs.txt", "--report"]);
    let report = &json_lines(&out)[0]["report"];
    assert_eq!(report["failed_job_ids"], serde_json::json!([1, 3]));
    assert_eq!(report["not_run_job_ids"], serde_json::json!([5]));
    // The report ran nothing and wrote no row.
    assert_eq!(s.rows().len(), 4);
}

#[test]
fn the_report_reads_a_status_file_exactly_as_dsq_writes_it() {
    // dSQ's rows: no header, zero-based Job_IDs, the elapsed time to a
    // tenth of a second, the job's line as it is.
    let s = Scratch::new("module load x; run 1\nrun 2\nrun 3\nrun 4\n");
    std::fs::write(
        s.path("dsq_status.tsv"),
        "0\t0\tc13n02.farnam.hpc.yale.internal\t2017-03-31 11:44:03\t2017-03-31 11:44:08\t5.0\tmodule load x; run 1\n\
         2\t241\tc13n03.farnam.hpc.yale.internal\t2017-03-31 11:44:03\t2017-03-31 11:44:13\t10.2\trun 3\n",
    )
    .unwrap();
    let out = s.run(&["jobs", "jobs.txt", "--status", "dsq_status.tsv", "--report"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "dsq_status.tsv: 4 job(s): 1 succeeded, 1 failed, 2 not run\n\
         failed: 2 (exit 241: 2)\n\
         not run: 1,3\n\
         rate: 0.20 job(s)/s over 10 s; the 2 left take about 10 s at that rate\n"
    );
}

#[test]
fn a_row_half_written_is_not_counted_and_fails_no_report() {
    let s = Scratch::new("echo a\necho b\n");
    let row = "1\t0\th\t2024-05-01 12:00:00\t2024-05-01 12:00:01\t1.0\techo b\n";
    let first = "0\t0\th\t2024-05-01 12:00:00\t2024-05-01 12:00:01\t1.0\techo a\n";
    // Cut inside a column, and inside a character of another.
    for torn in [&row.as_bytes()[..9], &"1\t0\th\t\u{e9}".as_bytes()[..7]] {
        std::fs::write(s.path("s.tsv"), [first.as_bytes(), torn].concat()).unwrap();
        let out = s.run(&["jobs", "jobs.txt", "--status", "s.tsv", "--report"]);
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("s.tsv: 2 job(s): 1 succeeded, 0 failed, 1 not run\n"),
            "{}",
            show(&out)
        );
    }
    std::fs::write(s.path("s.tsv"), format!("{first}{row}")).unwrap();
    let out = s.run(&["jobs", "jobs.txt", "--status", "s.tsv", "--report"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

/// A run in the background whose job 0 waits for a gate file; dropping it
/// opens the gate and kills the run, so a failing test leaves nothing.
struct Gated {
    child: std::process::Child,
    gate: std::path::PathBuf,
}

impl Drop for Gated {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.gate, "");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_report_follows_a_run_going_on_while_its_status_file_grows() {
    // Rows of 30 kB, so a report reads many a row half written.
    let pad = "x".repeat(30_000);
    let mut lines = vec!["while [ ! -e gate ]; do sleep 0.01; done".to_string()];
    lines.extend((1..=40).map(|i| format!(": {i} {pad}; sleep 0.02")));
    let s = Scratch::new(&(lines.join("\n") + "\n"));
    let args = [
        "-p",
        "2",
        "jobs",
        "jobs.txt",
        "--status",
        "s.tsv",
        "--no-logs",
    ];
    let mut run = Gated {
        child: Command::new(bin())
            .current_dir(s.dir.path())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        gate: s.path("gate"),
    };
    let report = |expect: i32| {
        let out = s.run(&[
            "--json", "jobs", "jobs.txt", "--status", "s.tsv", "--report",
        ]);
        assert_eq!(out.status.code(), Some(expect), "{}", show(&out));
        assert_eq!(stderr(&out), "", "{}", show(&out));
        json_lines(&out)[0]["report"].clone()
    };
    let check = |now: &serde_json::Value, seen: u64| {
        let succeeded = now["succeeded"].as_u64().unwrap();
        assert!(succeeded >= seen, "{succeeded} after {seen}: {now}");
        assert_eq!(now["failed"], 0, "{now}");
        assert_eq!(succeeded + now["not_run"].as_u64().unwrap(), 41, "{now}");
        succeeded
    };
    // Half the jobs end while reports read the file; the gated one cannot.
    let mut seen = 0;
    let start = Instant::now();
    while seen < 20 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{seen} after 60 s"
        );
        seen = check(&report(1), seen);
    }
    // The rest end while reports go on reading.
    std::fs::write(&run.gate, "").unwrap();
    while run.child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{seen} after 60 s"
        );
        let out = s.run(&[
            "--json", "jobs", "jobs.txt", "--status", "s.tsv", "--report",
        ]);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{}", show(&out));
        seen = check(&json_lines(&out)[0]["report"], seen);
    }
    let status = wait_with_deadline(&mut run.child, Duration::from_secs(1));
    assert!(status.success(), "{status}");
    let done = report(0);
    assert_eq!(
        (done["succeeded"].as_u64(), done["not_run"].as_u64()),
        (Some(41), Some(0))
    );
}

#[test]
fn a_new_status_file_is_staged_under_a_name_no_other_process_uses() {
    // Another node sharing the directory, whose supervisor has this PID, is
    // staging its header under the old name `.NAME.PID.tmp`, a hard link of
    // its live status file: our first row (as an array task appends it)
    // must not write through it.
    let dir = tempfile::tempdir().unwrap();
    let theirs = dir.path().join("theirs.tsv");
    std::fs::write(
        &theirs,
        "0\t0\th\t2024-05-01 12:00:00\t2024-05-01 12:00:01\t1.0\ttrue\n",
    )
    .unwrap();
    let staging = dir
        .path()
        .join(format!(".s.tsv.{}.tmp", std::process::id()));
    std::fs::hard_link(&theirs, &staging).unwrap();
    let before = std::fs::read_to_string(&theirs).unwrap();

    let status = StatusWriter::append(dir.path().join("s.tsv")).unwrap();
    drop(status);
    assert_eq!(std::fs::read_to_string(&theirs).unwrap(), before);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("s.tsv")).unwrap(),
        format!("{}\n", jobs::HEADER.join("\t"))
    );
    // Nothing of ours is left beside it.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            staging.file_name().unwrap().to_str().unwrap(),
            "s.tsv",
            "theirs.tsv"
        ]
    );
}
