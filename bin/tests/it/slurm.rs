//! `procpool jobs --slurm` on a real Slurm cluster: each test starts one of
//! its own with `.ci/slurm` (its own munged, ports and files), submits real
//! arrays, waits for them with a bounded wait and stops everything again.
//! Needs root and Debian's `slurm-wlm` and `munge` (`.ci/slurm install`);
//! where the cluster cannot start, each test says so on stderr and fails if
//! `PROCPOOL_REQUIRE_SLURM` is set (as CI sets it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::util::{Scratch, root, show};

/// A running cluster; stopped when dropped, also when a test fails.
pub struct Slurm {
    dir: tempfile::TempDir,
    /// Its nodes are two hosts in network namespaces (`--netns`).
    netns: bool,
}

impl Slurm {
    /// Starts a cluster of `nodes` nodes, or says why it cannot (and fails
    /// the test if `PROCPOOL_REQUIRE_SLURM` is set): `None` then.
    pub fn new(nodes: u32) -> Option<Slurm> {
        Slurm::with_max_array_size(nodes, 1001)
    }

    /// [`Slurm::new`] with this `MaxArraySize` (Slurm's default is 1001).
    pub fn with_max_array_size(nodes: u32, max: u32) -> Option<Slurm> {
        Slurm::start(nodes, max, false)
    }

    /// A cluster of two nodes that are two hosts, n1 on h1 (192.0.2.1) and
    /// n2 on h2, each slurmd in a network namespace of its own (`.ci/slurm
    /// start DIR 2 --netns`); as [`Slurm::new`] where it cannot start, and
    /// fails the test then if `PROCPOOL_REQUIRE_NETNS` is set too.
    #[cfg(feature = "mpi")]
    pub fn across_hosts() -> Option<Slurm> {
        Slurm::start(2, 1001, true)
    }

    fn start(nodes: u32, max: u32, netns: bool) -> Option<Slurm> {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let out = Command::new(root().join(".ci/slurm"))
            .env("PROCPOOL_SLURM_MAX_ARRAY_SIZE", max.to_string())
            .arg("start")
            .arg(dir.path())
            .arg(nodes.to_string())
            .args(netns.then_some("--netns"))
            .output()
            .expect(".ci/slurm runs");
        if out.status.success() {
            return Some(Slurm { dir, netns });
        }
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let required = |var| std::env::var_os(var).is_some();
        if required("PROCPOOL_REQUIRE_SLURM") || (netns && required("PROCPOOL_REQUIRE_NETNS")) {
            panic!("cannot start a Slurm cluster: {why}");
        }
        eprintln!(
            "SKIPPED: cannot start a Slurm cluster here ({why}); run as root after `.ci/slurm install` to test"
        );
        None
    }

    /// `SLURM_CONF` for client commands (also in the environment of every
    /// task of this cluster's jobs).
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    /// A Slurm client command (`sbatch`, `squeue`...) for this cluster, in
    /// `cwd`: on h1 for a cluster [across hosts](Slurm::across_hosts), whose
    /// addresses the root namespace cannot reach.
    pub fn command(&self, program: &str, cwd: &Path) -> Command {
        let mut c = if self.netns {
            let mut c = Command::new(root().join(".ci/slurm"));
            c.arg("client").arg(self.dir.path()).arg(program);
            c
        } else {
            Command::new(program)
        };
        c.env("SLURM_CONF", self.conf()).current_dir(cwd);
        c
    }

    /// Submits the script `script` in `cwd`; returns the job id.
    pub fn sbatch(&self, script: &Path, cwd: &Path) -> String {
        let out = self
            .command("sbatch", cwd)
            .arg("--parsable")
            .arg(script)
            .output()
            .expect("sbatch runs");
        assert!(out.status.success(), "sbatch: {}", show(&out));
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(id.parse::<u64>().is_ok(), "sbatch printed {id:?}");
        id
    }

    /// Waits until job `id` (all its array tasks) has left the queue; after
    /// `within`, cancels it and fails the test with what the queue showed.
    pub fn wait(&self, id: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let out = self
                .command("squeue", self.dir.path())
                .args(["-h", "-j", id, "-o", "%i %T %R"])
                .output()
                .expect("squeue runs");
            let queued = String::from_utf8_lossy(&out.stdout).trim().to_string();
            // A job that has left the queue for good is "Invalid job id" to squeue.
            if queued.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                let _ = self.command("scancel", self.dir.path()).arg(id).status();
                panic!("job {id} still queued after {within:?}:\n{queued}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every job-completion record so far, each as its fields (`JobId`,
    /// `JobState`, `ExitCode`...).
    fn completions(&self) -> Vec<BTreeMap<String, String>> {
        let text = std::fs::read_to_string(self.dir.path().join("jobcomp.txt")).unwrap_or_default();
        text.lines()
            .map(|line| {
                line.split_whitespace()
                    .filter_map(|f| f.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .collect()
    }

    /// The job-completion record of job `id` (not an array), once it ended.
    #[cfg(feature = "mpi")]
    pub fn record(&self, id: &str) -> Option<BTreeMap<String, String>> {
        self.completions()
            .into_iter()
            .find(|r| r.get("JobId").map(String::as_str) == Some(id))
    }

    /// The job-completion records of job `id`'s array tasks by task index:
    /// each record's fields (`JobState`, `ExitCode`...).
    pub fn records(&self, id: &str) -> BTreeMap<u64, BTreeMap<String, String>> {
        self.completions()
            .into_iter()
            .filter(|r| r.get("ArrayJobId").map(String::as_str) == Some(id))
            .map(|r| (r["ArrayTaskId"].parse().expect("a task index"), r))
            .collect()
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        let out = Command::new(root().join(".ci/slurm"))
            .arg("stop")
            .arg(self.dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => {}
            Ok(out) if !std::thread::panicking() => panic!("stopping the cluster: {}", show(&out)),
            other => eprintln!("stopping the cluster: {other:?}"),
        }
    }
}

/// `procpool ARGS` in the scratch directory, with `--slurm`: the script,
/// written to `name`.
fn script(scratch: &Scratch, name: &str, args: &[&str]) -> PathBuf {
    let out: Output = scratch.run(args);
    assert!(out.status.success(), "{}", show(&out));
    let path = scratch.path(name);
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

/// Says how long a scenario took from submit to its last row (for the
/// lead's note; never asserted).
fn took(scenario: &str, since: Instant) {
    eprintln!(
        "slurm scenario {scenario:?}: {:.2?} from submit to last row",
        since.elapsed()
    );
}

#[test]
fn an_array_runs_every_job_and_each_task_records_its_row_and_logs() {
    let Some(slurm) = Slurm::new(1) else { return };
    let scratch =
        Scratch::new("echo first\nexit 3\n# a comment\necho \"task $SLURM_ARRAY_TASK_ID\"\n");
    let s = script(&scratch, "array.sh", &["jobs", "jobs.txt", "--slurm"]);
    let started = Instant::now();
    let id = slurm.sbatch(&s, scratch.dir.path());
    slurm.wait(&id, Duration::from_secs(60));
    took("4-line array", started);

    let rows = scratch.rows();
    let codes: Vec<(u64, i32)> = rows.iter().map(|(&id, r)| (id, r.exit_code)).collect();
    assert_eq!(codes, [(0, 0), (1, 3), (3, 0)], "{rows:?}");
    assert_eq!(scratch.read("jobs_logs/0.out"), "first\n");
    assert_eq!(scratch.read("jobs_logs/3.out"), "task 3\n");
    // The comment line is no array task; every other line has its record.
    let records = slurm.records(&id);
    let states: Vec<(u64, &str)> = records
        .iter()
        .map(|(&i, r)| (i, r["JobState"].as_str()))
        .collect();
    assert_eq!(
        states,
        [(0, "COMPLETED"), (1, "FAILED"), (3, "COMPLETED")],
        "{records:?}"
    );
    // Each task exits with its job's own code, so Slurm's record agrees with the row.
    assert_eq!(records[&1]["ExitCode"], "3:0", "{records:?}");
    assert_eq!(records[&0]["ExitCode"], "0:0", "{records:?}");
}

#[test]
fn submit_and_wait_print_the_array_id_then_the_summary_with_sbatch_options_passed_on() {
    let Some(slurm) = Slurm::new(1) else { return };
    let scratch = Scratch::new("echo one\nexit 5\ntrue\n");
    let started = Instant::now();
    let out = crate::util::procpool()
        .current_dir(scratch.dir.path())
        .env("SLURM_CONF", slurm.conf())
        .args([
            "jobs",
            "jobs.txt",
            "--submit",
            "--wait",
            "--job-name",
            "my run",
            "--mem-per-cpu",
            "4GB",
            "--time",
            "unlimited",
            "--sbatch=--comment=first",
            "--",
            "--time-min",
            "-1",
        ])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    took("submit --wait of 3 jobs", started);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", show(&out));
    let id = lines[0];
    assert!(id.parse::<u64>().is_ok(), "{}", show(&out));
    assert_eq!(
        lines[1],
        "3 of 3 job(s) ran: 2 succeeded, 1 failed; status in jobs_status.tsv, logs in jobs_logs"
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("failed Job_IDs: 1"),
        "{}",
        show(&out)
    );
    // Nothing is queued any more, and Slurm ran it under the name given.
    slurm.wait(id, Duration::from_secs(5));
    let records = slurm.records(id);
    assert_eq!(records.len(), 3, "{records:?}");
    let comp = std::fs::read_to_string(slurm.dir.path().join("jobcomp.txt")).unwrap();
    assert!(comp.contains("Name=my run "), "{comp}");
    assert_eq!(records[&1]["ExitCode"], "5:0", "{records:?}");
}

#[test]
fn options_that_cannot_apply_to_an_array_are_refused_in_one_line() {
    // No cluster needed: nothing is submitted.
    let scratch = Scratch::new("true\n");
    for args in [
        &["-p", "4", "jobs", "jobs.txt", "--slurm"][..],
        &["--unordered", "jobs", "jobs.txt", "--slurm"],
        &["--maxtasksperchild", "2", "jobs", "jobs.txt", "--submit"],
        &["--backend", "mpi", "jobs", "jobs.txt", "--slurm"],
        &["--timeline", "t.svg", "jobs", "jobs.txt", "--slurm"],
        &["jobs", "jobs.txt", "--slurm", "--force"],
    ] {
        let out = scratch.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains("does not apply under --slurm"),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // --json is carried into each task's command.
    let out = scratch.run(&["--json", "jobs", "jobs.txt", "--slurm"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.trim_end().ends_with("--json"), "{text}");
}

#[test]
fn a_resume_submits_only_what_failed_and_its_row_wins() {
    let Some(slurm) = Slurm::new(1) else { return };
    // Job 1 fails the first time only; jobs 0 and 2 succeed.
    let scratch = Scratch::new("true\ntest -e again || { touch again; exit 4; }\necho two\n");
    let first = script(&scratch, "first.sh", &["jobs", "jobs.txt", "--slurm"]);
    let id = slurm.sbatch(&first, scratch.dir.path());
    slurm.wait(&id, Duration::from_secs(60));
    assert_eq!(scratch.rows()[&1].exit_code, 4);

    let again = script(
        &scratch,
        "again.sh",
        &["jobs", "jobs.txt", "--slurm", "--resume"],
    );
    let text = std::fs::read_to_string(&again).unwrap();
    assert!(text.contains("#SBATCH --array 1\n"), "{text}");
    let started = Instant::now();
    let id = slurm.sbatch(&again, scratch.dir.path());
    slurm.wait(&id, Duration::from_secs(60));
    took("resume of 1 failed job", started);

    let rows = scratch.rows();
    assert!(rows.values().all(|r| r.exit_code == 0), "{rows:?}");
    let status = scratch.read("jobs_status.tsv");
    assert_eq!(
        status.lines().count(),
        1 + 4,
        "a header and 4 rows:\n{status}"
    );
    assert_eq!(slurm.records(&id).len(), 1);
}

#[test]
fn a_cancel_leaves_one_row_per_task_saying_sigterm_the_same_five_times() {
    let Some(slurm) = Slurm::new(1) else { return };
    let mut seen = Vec::new();
    for round in 0..5 {
        let scratch = Scratch::new(&"touch started.$PROCPOOL_JOB_ID; sleep 300\n".repeat(4));
        let s = script(&scratch, "array.sh", &["jobs", "jobs.txt", "--slurm"]);
        let id = slurm.sbatch(&s, scratch.dir.path());
        // Cancel once every job runs.
        let deadline = Instant::now() + Duration::from_secs(60);
        while (0..4).any(|i| !scratch.path(&format!("started.{i}")).exists()) {
            assert!(
                Instant::now() < deadline,
                "round {round}: the jobs did not all start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let started = Instant::now();
        let out = slurm
            .command("scancel", scratch.dir.path())
            .arg(&id)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", show(&out));
        slurm.wait(&id, Duration::from_secs(60));
        took("scancel of 4 running tasks", started);

        let status = scratch.read("jobs_status.tsv");
        assert_eq!(
            status.lines().count(),
            1 + 4,
            "round {round}: one row a job:\n{status}"
        );
        let rows = scratch.rows();
        let codes: Vec<i32> = rows.values().map(|r| r.exit_code).collect();
        assert_eq!(codes, [143; 4], "round {round}:\n{status}");
        let log = scratch.read(&format!("procpool-jobs-{id}_0.out"));
        assert!(
            log.contains("stopped by signal 15 (SIGTERM), which this run received"),
            "round {round}: {log}"
        );
        seen.push(codes);
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");

    // A resume runs the cancelled jobs again.
    let scratch = Scratch::new("touch started; sleep 300\ntrue\n");
    let s = script(&scratch, "array.sh", &["jobs", "jobs.txt", "--slurm"]);
    let id = slurm.sbatch(&s, scratch.dir.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !scratch.path("started").exists()
        || !scratch
            .read("jobs_status.tsv")
            .lines()
            .any(|l| l.starts_with("1\t"))
    {
        assert!(
            Instant::now() < deadline,
            "job 0 did not start or job 1 did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    slurm
        .command("scancel", scratch.dir.path())
        .arg(&id)
        .status()
        .unwrap();
    slurm.wait(&id, Duration::from_secs(60));
    let again = script(
        &scratch,
        "again.sh",
        &["jobs", "jobs.txt", "--slurm", "--resume"],
    );
    let text = std::fs::read_to_string(again).unwrap();
    assert!(text.contains("#SBATCH --array 0\n"), "{text}");
}

/// Waits, at most `within`, until `file` exists in `scratch`.
fn wait_for_file(scratch: &Scratch, file: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !scratch.path(file).exists() {
        assert!(Instant::now() < deadline, "{file} never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_task_past_its_time_limit_leaves_one_row_saying_sigterm_and_slurm_says_timeout() {
    let Some(slurm) = Slurm::new(1) else { return };
    let scratch = Scratch::new("touch started; sleep 300\ntrue\n");
    // A minute, Slurm's least; it checks limits about every 30 s.
    let s = script(
        &scratch,
        "array.sh",
        &["jobs", "jobs.txt", "--slurm", "--time", "1"],
    );
    let started = Instant::now();
    let id = slurm.sbatch(&s, scratch.dir.path());
    slurm.wait(&id, Duration::from_secs(180));
    took("a time limit of 1 minute", started);
    let status = scratch.read("jobs_status.tsv");
    assert_eq!(status.lines().count(), 1 + 2, "one row a job:\n{status}");
    let rows = scratch.rows();
    assert_eq!(
        (rows[&0].exit_code, rows[&1].exit_code),
        (143, 0),
        "{status}"
    );
    let log = scratch.read(&format!("procpool-jobs-{id}_0.out"));
    assert!(log.contains("DUE TO TIME LIMIT"), "{log}");
    assert!(
        log.contains("job 0 stopped by signal 15 (SIGTERM), which this run received"),
        "{log}"
    );
    assert_eq!(slurm.records(&id)[&0]["JobState"], "TIMEOUT");
    // The resume runs it again.
    let again = script(
        &scratch,
        "again.sh",
        &["jobs", "jobs.txt", "--slurm", "--resume"],
    );
    let text = std::fs::read_to_string(again).unwrap();
    assert!(text.contains("#SBATCH --array 0\n"), "{text}");
}

#[test]
fn a_requeued_task_writes_one_row_per_attempt_and_the_last_one_wins() {
    let Some(slurm) = Slurm::new(1) else { return };
    // The first attempt holds until it is requeued; the second finishes.
    let scratch =
        Scratch::new("if [ -e first ]; then echo again; else touch first; sleep 300; fi\ntrue\n");
    let s = script(&scratch, "array.sh", &["jobs", "jobs.txt", "--slurm"]);
    let started = Instant::now();
    let id = slurm.sbatch(&s, scratch.dir.path());
    wait_for_file(&scratch, "first", Duration::from_secs(60));
    let task = format!("{id}_0");
    let requeue = slurm
        .command("scontrol", scratch.dir.path())
        .args(["requeue", &task])
        .output()
        .unwrap();
    assert!(requeue.status.success(), "{}", show(&requeue));
    // Slurm holds a requeued task back for two minutes: once it is pending
    // for that, it may start now.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !scratch.path("jobs_logs/0.out").exists() || scratch.read("jobs_logs/0.out").is_empty() {
        let queued = slurm
            .command("squeue", scratch.dir.path())
            .args(["-h", "-j", &task, "-o", "%T %r"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&queued.stdout).trim() == "PENDING BeginTime" {
            let now = slurm
                .command("scontrol", scratch.dir.path())
                .args(["update", &format!("jobid={task}"), "starttime=now"])
                .output()
                .unwrap();
            assert!(now.status.success(), "{}", show(&now));
        }
        assert!(
            Instant::now() < deadline,
            "the requeued task did not run again"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    slurm.wait(&id, Duration::from_secs(120));
    took("a requeue", started);

    let status = scratch.read("jobs_status.tsv");
    let attempts: Vec<&str> = status
        .lines()
        .filter(|l| l.starts_with("0\t"))
        .map(|l| l.split('\t').nth(1).unwrap())
        .collect();
    // The attempt stopped by the requeue (SIGTERM), then the one that finished.
    assert_eq!(attempts, ["143", "0"], "{status}");
    assert_eq!(scratch.rows()[&0].exit_code, 0);
    assert_eq!(scratch.read("jobs_logs/0.out"), "again\n");
    // Nothing is left to resume.
    let again = scratch.run(&["jobs", "jobs.txt", "--slurm", "--resume"]);
    assert!(again.status.success(), "{}", show(&again));
    assert_eq!(
        String::from_utf8_lossy(&again.stderr),
        "procpool: every job already succeeded in jobs_status.tsv; no array to submit\n"
    );
}

#[test]
fn jobs_beyond_max_array_size_and_a_scattered_resume_run_from_an_id_list_keeping_their_ids() {
    let Some(slurm) = Slurm::with_max_array_size(1, 10) else {
        return;
    };
    // 25 jobs on a cluster whose array indices stop at 9; jobs 7 and 19 fail once.
    let lines: String = (0..25)
        .map(|i| match i {
            7 | 19 => format!("test -e again.{i} || {{ touch again.{i}; exit 2; }}\n"),
            _ => "echo \"$PROCPOOL_JOB_ID\"\n".to_string(),
        })
        .collect();
    let scratch = Scratch::new(&lines);
    let run = |name: &str, args: &[&str]| {
        let out = crate::util::procpool()
            .current_dir(scratch.dir.path())
            .env("SLURM_CONF", slurm.conf())
            .args(args)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", show(&out));
        std::fs::write(scratch.path(name), &out.stdout).unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = run("all.sh", &["jobs", "jobs.txt", "--slurm"]);
    // ceil(25 / 10) = 3 IDs a task: 9 tasks.
    assert!(text.contains("#SBATCH --array 0-8\n"), "{text}");
    let started = Instant::now();
    let id = slurm.sbatch(&scratch.path("all.sh"), scratch.dir.path());
    slurm.wait(&id, Duration::from_secs(120));
    took("25 jobs over MaxArraySize 10", started);
    let rows = scratch.rows();
    assert_eq!(
        rows.keys().copied().collect::<Vec<_>>(),
        (0..25).collect::<Vec<u64>>()
    );
    let failed: Vec<u64> = rows
        .values()
        .filter(|r| r.exit_code != 0)
        .map(|r| r.job_id)
        .collect();
    assert_eq!(failed, [7, 19]);
    // Each job's log is under its own Job_ID.
    assert_eq!(scratch.read("jobs_logs/23.out"), "23\n");
    assert_eq!(slurm.records(&id).len(), 9);

    // 19 is beyond the largest index: the resume is a list too, of 2 tasks.
    let text = run("again.sh", &["jobs", "jobs.txt", "--slurm", "--resume"]);
    assert!(text.contains("#SBATCH --array 0-1\n"), "{text}");
    let started = Instant::now();
    let id = slurm.sbatch(&scratch.path("again.sh"), scratch.dir.path());
    slurm.wait(&id, Duration::from_secs(60));
    took("resume of 2 scattered IDs over MaxArraySize 10", started);
    let rows = scratch.rows();
    assert!(rows.values().all(|r| r.exit_code == 0), "{rows:?}");
    assert_eq!(rows.len(), 25);
}
