//! `procpool jobs` at its edges, through the real binary: an earlier run's
//! record is never destroyed unasked, no job process escapes (not even with
//! `setsid`), bad paths and odd job lines give one line and exit 2 with
//! nothing written, and an interrupted run says what happened to each job.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use procpool_cli::jobs::StatusFile;

use crate::util::{Scratch, bin, procpool, show, wait_with_deadline};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a usage error: exit 2, one line starting `procpool: ` holding
/// every one of `expected`, and no panic text.
fn assert_one_line_error(out: &Output, expected: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{}", show(out));
    assert_eq!(err.lines().count(), 1, "one line: {}", show(out));
    assert!(err.starts_with("procpool: "), "{}", show(out));
    for e in expected {
        assert!(err.contains(e), "{e:?} missing: {}", show(out));
    }
    assert!(!err.contains("panicked"), "{}", show(out));
}

/// The pids of live processes whose command line is exactly `args`.
fn processes_running(args: &[&str]) -> Vec<u32> {
    let wanted: Vec<u8> = args
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).ok() == Some(wanted.clone()))
        .filter(|&pid| crate::util::alive(pid))
        .collect()
}

/// Asserts that no process runs `sleep SECONDS` within `secs`; kills any
/// left so that a failing test leaves nothing behind.
fn assert_no_sleep(seconds: &str, secs: f64) {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut left = processes_running(&["sleep", seconds]);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        left = processes_running(&["sleep", seconds]);
    }
    for &pid in &left {
        let _ = procpool::sys::kill(pid, libc::SIGKILL);
    }
    assert!(left.is_empty(), "sleep {seconds} escaped: {left:?}");
}

#[test]
fn a_rerun_never_replaces_the_status_rows_or_logs_of_an_earlier_run_unasked() {
    let s = Scratch::new("echo one\nexit 3\n");
    let first = s.run(&["jobs", "jobs.txt"]);
    assert_eq!(first.status.code(), Some(1), "{}", show(&first));
    let status = s.read("jobs_status.tsv");
    let log = s.read("jobs_logs/0.out");
    assert_eq!(status.lines().count(), 3);

    // Refused: one line naming the file and both ways on; nothing touched.
    let again = s.run(&["jobs", "jobs.txt"]);
    assert_one_line_error(&again, &["jobs_status.tsv", "--resume", "--force"]);
    assert_eq!(s.read("jobs_status.tsv"), status, "the rows are kept");
    assert_eq!(s.read("jobs_logs/0.out"), log);

    // A status file gone but logs left: the logs are a record too.
    std::fs::rename(s.path("jobs_status.tsv"), s.path("kept.tsv")).unwrap();
    let logs_left = s.run(&["jobs", "jobs.txt"]);
    assert_one_line_error(&logs_left, &["jobs_logs/0.out", "--force"]);
    assert!(!s.path("jobs_status.tsv").exists(), "nothing written");

    // --force starts over: one header, one row per job.
    std::fs::rename(s.path("kept.tsv"), s.path("jobs_status.tsv")).unwrap();
    let forced = s.run(&["jobs", "jobs.txt", "--force"]);
    assert_eq!(forced.status.code(), Some(1), "{}", show(&forced));
    assert_eq!(s.read("jobs_status.tsv").lines().count(), 3);

    // --resume appends the rerun of the failure to the earlier rows.
    let resumed = s.run(&["jobs", "jobs.txt", "--resume"]);
    assert_eq!(resumed.status.code(), Some(1), "{}", show(&resumed));
    assert_eq!(s.read("jobs_status.tsv").lines().count(), 4);
    assert!(
        s.read("jobs_status.tsv")
            .starts_with(&status[..status.find('\n').unwrap()])
    );

    // --resume and --force together make no sense.
    let both = s.run(&["jobs", "jobs.txt", "--resume", "--force"]);
    assert_eq!(both.status.code(), Some(2), "{}", show(&both));
}

#[test]
fn an_empty_or_header_only_status_file_is_reused_and_resume_without_one_runs_all() {
    for text in [
        "",
        "Job_ID\tExit_Code\tHostname\tTime_Started\tTime_Ended\tTime_Elapsed\tJob\n",
    ] {
        let s = Scratch::new("echo a\n");
        std::fs::write(s.path("jobs_status.tsv"), text).unwrap();
        let out = s.run(&["jobs", "jobs.txt"]);
        assert_eq!(out.status.code(), Some(0), "{text:?}: {}", show(&out));
        assert_eq!(s.read("jobs_status.tsv").lines().count(), 2);
    }
    let s = Scratch::new("echo a\necho b\n");
    let out = s.run(&["jobs", "jobs.txt", "--resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 of 2 job(s) ran"));
    assert_eq!(s.read("jobs_status.tsv").lines().count(), 3);
}

#[test]
fn a_job_file_read_from_stdin_does_not_clobber_its_status_file() {
    let s = Scratch::new("");
    let rows = "Job_ID\tExit_Code\tHostname\tTime_Started\tTime_Ended\tTime_Elapsed\tJob\n\
                0\t0\th\t2024-05-01 12:00:00\t2024-05-01 12:00:01\t1.000\tunrelated\n";
    std::fs::write(s.path("stdin_status.tsv"), rows).unwrap();
    let out = procpool()
        .current_dir(s.dir.path())
        .args(["jobs", "/dev/stdin"])
        .write_stdin("echo x\n")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_one_line_error(&out, &["stdin_status.tsv", "--resume"]);
    assert_eq!(s.read("stdin_status.tsv"), rows);
    assert!(
        !s.path("stdin_logs").exists(),
        "no log directory for a refused run"
    );
}

#[test]
fn unusable_paths_give_one_line_exit_2_and_leave_nothing_behind() {
    let s = Scratch::new("echo a\n");
    std::fs::write(s.path("file"), "not a directory").unwrap();
    std::fs::create_dir(s.path("dir")).unwrap();
    let binary = [b"echo ok\n".as_slice(), &[0xff, 0xfe, 0x00, 0x80], b"\n"].concat();
    std::fs::write(s.path("binary.txt"), binary).unwrap();
    let before = s.names();
    let cases: [(&[&str], &[&str]); 7] = [
        (
            &["jobs", "missing.txt"],
            &["job file missing.txt", "No such file"],
        ),
        (&["jobs", "dir"], &["job file dir", "directory"]),
        (&["jobs", "binary.txt"], &["binary.txt, line 2", "UTF-8"]),
        (
            &["jobs", "jobs.txt", "--status", "nodir/s.tsv"],
            &["status file nodir/s.tsv", "No such file"],
        ),
        (
            &["jobs", "jobs.txt", "--status", "file/s.tsv"],
            &["status file file/s.tsv", "Not a directory"],
        ),
        (
            &["jobs", "jobs.txt", "--status", "dir"],
            &["status file dir", "directory"],
        ),
        (
            &["jobs", "jobs.txt", "--logs", "file/logs"],
            &["log directory file/logs", "Not a directory"],
        ),
    ];
    for (args, expected) in cases {
        let started = Instant::now();
        let out = s.run(args);
        assert_one_line_error(&out, expected);
        assert!(started.elapsed() < Duration::from_secs(10), "{args:?}");
        assert_eq!(s.names(), before, "{args:?} wrote something");
    }
    // An absurd --only range is refused as it is parsed (clap's usage
    // error), without expanding it.
    let started = Instant::now();
    let out = s.run(&["jobs", "jobs.txt", "--only", "0-99999999999999"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(stderr(&out).contains("too long a range"), "{}", show(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", show(&out));
    assert!(started.elapsed() < Duration::from_secs(5));
    // A status file that cannot be written removes the log directories made for it.
    let out = s.run(&["jobs", "jobs.txt", "--logs", "new/logs", "--status", "dir"]);
    assert_one_line_error(&out, &["status file dir"]);
    assert_eq!(s.names(), before, "the log directory was removed again");
}

#[test]
fn tabs_and_huge_lines_keep_seven_columns_one_line_messages_and_resume_round_trips() {
    // Long, but within what `sh -c` takes (128 KiB).
    let huge = format!("false {}", "x".repeat(100_000));
    let s = Scratch::new(&format!("printf 'a\\tb'\t&& false\n{huge}\necho ok\n"));
    let out = s.run(&["jobs", "jobs.txt"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = s.read("jobs_status.tsv");
    for line in text.lines() {
        assert_eq!(line.split('\t').count(), 7, "{:.100}", line);
    }
    let rows = StatusFile::read(s.path("jobs_status.tsv")).unwrap().rows;
    let tabbed = rows.iter().find(|r| r.job_id == 0).unwrap();
    assert_eq!(
        tabbed.job, "printf 'a\\tb'\t&& false",
        "the command reads back whole"
    );
    let err = stderr(&out);
    assert!(err.len() < 2000, "stderr holds {} bytes", err.len());
    assert!(err.contains(&format!("({} bytes)", huge.len())), "{err}");
    assert!(
        err.contains("job 0 exited with 1: printf 'a\\\\tb'\\t&& false"),
        "{err}"
    );
    assert!(err.contains("job 1 exited with 1: false xxx"), "{err}");

    // --resume reads the escaped rows back: only the failures rerun.
    let resumed = s.run(&["jobs", "jobs.txt", "--resume"]);
    assert_eq!(resumed.status.code(), Some(1), "{}", show(&resumed));
    assert!(
        String::from_utf8_lossy(&resumed.stdout).contains("2 of 2 job(s) ran"),
        "{}",
        show(&resumed)
    );
}

#[test]
fn a_line_longer_than_sh_takes_refuses_the_file_before_anything_runs() {
    let s = Scratch::new(&format!("echo a\nfalse {}\n", "x".repeat(1 << 20)));
    let out = s.run(&["jobs", "jobs.txt"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("line 2 (Job_ID 1): is longer than 128 KiB"),
        "{err}"
    );
    assert_eq!(s.names(), ["jobs.txt"], "nothing was written");
    // An endless line is refused as soon as it is too long, not read to its end.
    let started = Instant::now();
    let zero = s.run(&["jobs", "/dev/zero"]);
    assert_eq!(zero.status.code(), Some(2), "{}", show(&zero));
    assert!(stderr(&zero).contains("is longer than 128 KiB"));
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Waits until `ready` or panics after 20 s.
fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

const ESCAPING: &str = "setsid sleep 300 & setsid -f sleep 301; touch started; sleep 302\n";

#[test]
fn no_setsid_escapee_outlives_its_job_its_timeout_or_an_interrupt() {
    // The job ends by itself, and by its timeout.
    let s = Scratch::new("setsid sleep 300 &\nsetsid -f sleep 301\necho ok\n");
    let out = s.run(&["-p", "2", "jobs", "jobs.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_no_sleep("300", 3.0);
    assert_no_sleep("301", 3.0);
    let s = Scratch::new(ESCAPING);
    let out = s.run(&["--timeout", "1", "jobs", "jobs.txt", "--grace", "0.2"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    for sleep in ["300", "301", "302"] {
        assert_no_sleep(sleep, 3.0);
    }

    // SIGTERM and SIGHUP to procpool while such a job runs.
    for signal in [libc::SIGTERM, libc::SIGHUP] {
        let s = Scratch::new(&format!("echo done\n{ESCAPING}"));
        let mut child = Command::new(bin())
            .current_dir(s.dir.path())
            .args(["-p", "2", "jobs", "jobs.txt", "--grace", "0.2"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for("the job started", || {
            s.path("started").exists() && s.read("jobs_status.tsv").lines().count() == 2
        });
        procpool::sys::kill(child.id(), signal).unwrap();
        let status = wait_with_deadline(&mut child, Duration::from_secs(10));
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(128 + signal), "{err}");
        assert!(
            err.contains("1 of 2 job(s) finished")
                && err.contains("1 stopped while running and 0 never started"),
            "{err}"
        );
        let rows = StatusFile::read(s.path("jobs_status.tsv")).unwrap().rows;
        assert_eq!(rows.len(), 1, "the stopped job has no row: {rows:?}");
        for sleep in ["300", "301", "302"] {
            assert_no_sleep(sleep, 3.0);
        }
    }
}

#[test]
fn no_setsid_escapee_outlives_a_runner_killed_outright() {
    let s = Scratch::new(ESCAPING);
    let mut child = Command::new(bin())
        .current_dir(s.dir.path())
        .args(["jobs", "jobs.txt", "--grace", "0.2"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the job started", || s.path("started").exists());
    // SIGKILL to the supervisor alone: its worker dies by its parent-death
    // signal, and the job guard is left to stop the job and its escapees.
    procpool::sys::kill(child.id(), libc::SIGKILL).unwrap();
    wait_with_deadline(&mut child, Duration::from_secs(5));
    for sleep in ["300", "301", "302"] {
        assert_no_sleep(sleep, 5.0);
    }
}

#[test]
fn an_interrupt_before_some_jobs_start_counts_them_apart() {
    let s = Scratch::new("touch started; sleep 303\nsleep 304\nsleep 305\n");
    let mut child = Command::new(bin())
        .current_dir(s.dir.path())
        .args(["-p", "1", "jobs", "jobs.txt", "--grace", "0.2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the first job started", || s.path("started").exists());
    procpool::sys::kill(child.id(), libc::SIGINT).unwrap();
    let status = wait_with_deadline(&mut child, Duration::from_secs(10));
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("0 of 3 job(s) finished")
            && err.contains("1 stopped while running and 2 never started"),
        "{err}"
    );
    assert_eq!(
        StatusFile::read(s.path("jobs_status.tsv"))
            .unwrap()
            .rows
            .len(),
        0
    );
    assert_no_sleep("303", 3.0);
    // --resume reruns all three: none has a row.
    std::fs::write(s.path("jobs.txt"), "true\ntrue\ntrue\n").unwrap();
    let out = s.run(&["jobs", "jobs.txt", "--resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 of 3 job(s) ran"));
}
