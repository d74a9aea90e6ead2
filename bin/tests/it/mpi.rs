//! The MPI backend and the tutorial's MPI examples (feature `mpi`), through
//! `mpirun` and the real binary for 1 to 4 ranks. Needs Open MPI: see
//! `.ci/install-mpi`. Run with `cargo test --features mpi --test it mpi`.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::util::{bin, procpool, show, wait_gone};

/// An `mpirun -n ranks` command for the real binary, with its own session
/// directory: Open MPI 4's mpiruns started at the same moment race to create a
/// shared one under TMPDIR, and the loser fails with "mkdir ... File exists".
fn mpirun_command(ranks: u32, tmp: &tempfile::TempDir) -> std::process::Command {
    let mut command = std::process::Command::new("mpirun");
    command
        .args(["--oversubscribe", "-n", &ranks.to_string()])
        .env("TMPDIR", tmp.path());
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        command.arg("--allow-run-as-root");
    }
    command.arg(bin());
    command
}

/// Runs the real binary on `ranks` ranks under Open MPI's mpirun.
pub(crate) fn mpirun(ranks: u32, args: &[&str]) -> Output {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    assert_cmd::Command::from_std(mpirun_command(ranks, &tmp))
        .args(args)
        .timeout(Duration::from_secs(120))
        .output()
        .expect("mpirun runs (is Open MPI installed? see .ci/install-mpi)")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every stdout line as JSON; fails the test on any other line.
fn json_lines(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{}", show(output)))
        })
        .collect()
}

/// The result objects and the one summary of a `--json` pool run.
fn results_and_summary(output: &Output) -> (Vec<Value>, Value) {
    let mut lines = json_lines(output);
    let summary = lines.pop().expect("a summary line");
    assert!(
        lines.iter().all(|l| l.get("summary").is_none()),
        "{}",
        show(output)
    );
    (lines, summary["summary"].clone())
}

fn u64_of(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a whole number: {value}"))
}

/// `(rank, host, pid)` of every worker in a summary, checked to be ranks 1..n-1.
fn workers(summary: &Value, ranks: u32) -> Vec<(u64, String, u64)> {
    let workers: Vec<(u64, String, u64)> = summary["workers"]
        .as_array()
        .expect("a workers list")
        .iter()
        .map(|w| {
            (
                u64_of(&w["rank"]),
                w["host"].as_str().expect("a host").to_string(),
                u64_of(&w["pid"]),
            )
        })
        .collect();
    let listed: Vec<u64> = workers.iter().map(|w| w.0).collect();
    assert_eq!(listed, (1..ranks as u64).collect::<Vec<_>>(), "{summary}");
    assert!(workers.iter().all(|w| !w.1.is_empty()), "{summary}");
    let pids: BTreeSet<u64> = workers.iter().map(|w| w.2).collect();
    assert_eq!(pids.len(), workers.len(), "distinct PIDs: {summary}");
    workers
}

/// Runs a pool subcommand with `--backend mpi --json` on `ranks` ranks, checks
/// that it succeeded, and returns its results, summary and workers.
fn pool_on_mpi(ranks: u32, args: &[&str]) -> (Vec<Value>, Value, Vec<(u64, String, u64)>) {
    let mut all = vec!["--backend", "mpi", "--json"];
    all.extend_from_slice(args);
    let out = mpirun(ranks, &all);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let (results, summary) = results_and_summary(&out);
    let workers = workers(&summary, ranks);
    (results, summary, workers)
}

fn assert_gone(pids: impl IntoIterator<Item = u64>) {
    let pids: Vec<u32> = pids.into_iter().map(|p| p as u32).collect();
    assert_eq!(
        wait_gone(&pids, 10.0),
        Vec::<u32>::new(),
        "ranks left behind"
    );
}

#[test]
fn square_on_the_mpi_backend_is_in_order_and_tagged_with_rank_host_and_pid() {
    for ranks in 2..=4 {
        let (results, summary, workers) =
            pool_on_mpi(ranks, &["--chunksize", "2", "square", "0..25"]);
        assert_eq!(summary["backend"], "mpi");
        assert_eq!(u64_of(&summary["processes"]), ranks as u64 - 1);
        assert_eq!(
            (u64_of(&summary["ok"]), u64_of(&summary["tasks"])),
            (25, 25)
        );
        for (i, result) in results.iter().enumerate() {
            let i = i as u64;
            assert_eq!(u64_of(&result["index"]), i, "in input order: {result}");
            assert_eq!(u64_of(&result["output"]), i * i, "{result}");
            let tag = (
                u64_of(&result["rank"]),
                result["host"].as_str().unwrap_or_default().to_string(),
                u64_of(&result["pid"]),
            );
            assert!(workers.contains(&tag), "{tag:?} is not a worker rank");
        }
        assert_eq!(results.len(), 25);
        assert_gone(workers.iter().map(|w| w.2));
    }
}

#[test]
fn square_on_the_mpi_backend_prints_the_tutorials_squares() {
    let out = mpirun(3, &["--backend", "mpi", "square", "0..6"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(stdout(&out), "0\n1\n4\n9\n16\n25\n");
}

#[test]
fn every_worker_rank_takes_work_and_reports_its_own_pid() {
    for ranks in [3, 4] {
        let args = ["--chunksize", "1", "whoami", "0..16", "--max-delay-ms", "5"];
        let (results, _, workers) = pool_on_mpi(ranks, &args);
        let mut xs: Vec<u64> = Vec::new();
        let mut used = BTreeSet::new();
        for result in &results {
            // The task itself reports the process it ran in.
            assert_eq!(result["output"]["pid"], result["pid"], "{result}");
            assert_eq!(result["output"]["x"], result["index"], "{result}");
            xs.push(u64_of(&result["index"]));
            used.insert(u64_of(&result["rank"]));
        }
        xs.sort_unstable();
        assert_eq!(xs, (0..16).collect::<Vec<_>>());
        let all: BTreeSet<u64> = workers.iter().map(|w| w.0).collect();
        assert_eq!(used, all, "every worker rank ran tasks");
    }
}

#[test]
fn a_failing_task_on_the_mpi_backend_fails_alone_with_exit_1() {
    let out = mpirun(3, &["--backend", "mpi", "square", "2", "3037000500", "3"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(stdout(&out), "4\nerror\n9\n", "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("procpool: task 1 (input 3037000500)") && stderr.contains("overflows"),
        "{}",
        show(&out)
    );
}

/// Runs the binary directly, with no MPI launcher's variables about.
fn without_mpirun(args: &[&str]) -> Output {
    let mut command = procpool();
    for var in procpool::mpi::LAUNCHER_VARS {
        command.env_remove(var);
    }
    command
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("procpool runs")
}

#[test]
fn without_mpirun_the_mpi_backend_and_examples_say_what_is_missing() {
    for args in [
        &["--backend", "mpi", "square", "1"][..],
        &["mpi", "hello"][..],
    ] {
        let out = without_mpirun(args);
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "one line: {}", show(&out));
        assert!(
            stderr.starts_with("procpool: ")
                && stderr.contains("not started by an MPI launcher")
                && stderr.contains("mpirun -n 4 procpool")
                && stderr.contains("OMPI_COMM_WORLD_SIZE"),
            "{}",
            show(&out)
        );
        assert!(out.stdout.is_empty(), "{}", show(&out));
    }
}

#[test]
fn a_pool_needs_two_ranks_and_send_needs_two() {
    for args in [
        &["--backend", "mpi", "square", "1"][..],
        &["mpi", "send"][..],
    ] {
        let out = mpirun(1, args);
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("needs at least 2 MPI ranks, but this job has 1")
                && stderr.contains("mpirun -n 2"),
            "{}",
            show(&out)
        );
    }
}

#[test]
fn the_mpi_backend_refuses_what_mpi_cannot_do() {
    let cases: [(&[&str], &str); 3] = [
        (&["--timeout", "1"], "no task timeout (--timeout)"),
        (&["--retries", "1"], "no retries (--retries)"),
        (
            &["-p", "5"],
            "2 here (mpirun -n 3), not the 5 processes asked for",
        ),
    ];
    for (options, expected) in cases {
        let mut args = vec!["--backend", "mpi"];
        args.extend_from_slice(options);
        args.extend(["square", "1"]);
        let out = mpirun(3, &args);
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        // Rank 0's one line; mpirun adds its own notes, in no set order.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ours: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("procpool: "))
            .collect();
        assert_eq!(ours.len(), 1, "{}", show(&out));
        assert!(
            ours[0].starts_with("procpool: mpi backend: ") && ours[0].contains(expected),
            "{}",
            show(&out)
        );
        assert!(out.stdout.is_empty(), "{}", show(&out));
    }
}

#[test]
fn mpi_hello_lists_every_rank_once() {
    for ranks in 1..=4 {
        let out = mpirun(ranks, &["--json", "mpi", "hello"]);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let mut hellos = json_lines(&out);
        hellos.sort_by_key(|h| u64_of(&h["rank"]));
        let listed: Vec<u64> = hellos.iter().map(|h| u64_of(&h["rank"])).collect();
        assert_eq!(
            listed,
            (0..ranks as u64).collect::<Vec<_>>(),
            "{}",
            show(&out)
        );
        assert!(hellos.iter().all(|h| u64_of(&h["size"]) == ranks as u64));
        assert!(
            hellos
                .iter()
                .all(|h| h["host"].as_str().is_some_and(|s| !s.is_empty()))
        );
        let pids: BTreeSet<u64> = hellos.iter().map(|h| u64_of(&h["pid"])).collect();
        assert_eq!(pids.len(), ranks as usize, "one process per rank");
        assert_gone(pids);
    }
    let out = mpirun(2, &["mpi", "hello"]);
    let mut lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    lines.sort();
    assert_eq!(lines.len(), 2, "{}", show(&out));
    for (rank, line) in lines.iter().enumerate() {
        let prefix = format!("Hello from rank {rank} of 2 on ");
        assert!(
            line.starts_with(&prefix) && line.contains(" (PID "),
            "{line}"
        );
    }
}

#[test]
fn mpi_send_delivers_hello_world_to_rank_1() {
    for ranks in 2..=4 {
        let out = mpirun(ranks, &["mpi", "send"]);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let mut lines: Vec<&str> = Vec::new();
        let text = stdout(&out);
        lines.extend(text.lines());
        lines.sort_unstable();
        // The other ranks take no part and print nothing.
        assert_eq!(
            lines,
            [
                "rank 0 sent \"Hello, world\" to rank 1",
                "rank 1 received \"Hello, world\" from rank 0",
            ],
            "{}",
            show(&out)
        );
    }
    let out = mpirun(3, &["--json", "mpi", "send"]);
    let received: Vec<Value> = json_lines(&out)
        .into_iter()
        .filter(|l| l["did"] == "received")
        .collect();
    assert_eq!(received.len(), 1, "{}", show(&out));
    assert_eq!(received[0]["rank"], 1);
    assert_eq!(received[0]["from"], 0);
    assert_eq!(received[0]["message"], "Hello, world");
}

#[test]
fn mpi_bcast_gives_every_rank_the_record_with_its_own_rank_appended() {
    for ranks in 2..=4 {
        let out = mpirun(ranks, &["--json", "mpi", "bcast"]);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let mut seen = Vec::new();
        for line in json_lines(&out) {
            let rank = u64_of(&line["rank"]);
            let record = &line["record"];
            assert_eq!(record["key1"], serde_json::json!([7.0, 2.72]), "{line}");
            assert_eq!(record["key2"], serde_json::json!(["abc", "xyz"]), "{line}");
            assert_eq!(record["ranks"], serde_json::json!([rank]), "{line}");
            seen.push(rank);
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..ranks as u64).collect::<Vec<_>>(),
            "{}",
            show(&out)
        );
    }
}

/// Runs `mpi scatter` and returns each rank's average, by rank, and the summary.
fn scatter(ranks: u32, extra: &[&str]) -> (Vec<f64>, Value) {
    let mut args = vec!["--json", "mpi", "scatter", "--per-rank", "2000"];
    args.extend_from_slice(extra);
    let out = mpirun(ranks, &args);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let mut shares = Vec::new();
    let mut summaries = Vec::new();
    for line in json_lines(&out) {
        match line.get("summary") {
            Some(summary) => summaries.push(summary.clone()),
            None => {
                assert_eq!(u64_of(&line["count"]), 2000, "{line}");
                shares.push((u64_of(&line["rank"]), line["average"].as_f64().unwrap()));
            }
        }
    }
    assert_eq!(summaries.len(), 1, "rank 0 alone sums up: {}", show(&out));
    shares.sort_by_key(|s| s.0);
    let listed: Vec<u64> = shares.iter().map(|s| s.0).collect();
    assert_eq!(
        listed,
        (0..ranks as u64).collect::<Vec<_>>(),
        "{}",
        show(&out)
    );
    (
        shares.into_iter().map(|s| s.1).collect(),
        summaries.remove(0),
    )
}

#[test]
fn mpi_scatter_gathers_averages_whose_average_is_about_10() {
    for ranks in 2..=4 {
        let (averages, summary) = scatter(ranks, &["--seed", "7"]);
        // Rank 0 gathered exactly what each rank computed.
        let gathered: Vec<f64> = summary["averages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_f64().unwrap())
            .collect();
        assert_eq!(gathered, averages);
        assert_eq!(u64_of(&summary["values"]), 2000 * ranks as u64);
        let full = summary["average"].as_f64().unwrap();
        let mean = averages.iter().sum::<f64>() / averages.len() as f64;
        assert!((full - mean).abs() < 1e-9, "{full} vs {mean}");
        // 4,000 to 8,000 draws of N(10, 5): the standard error is below 0.08.
        assert!((full - 10.0).abs() < 0.5, "average {full}");
        // Ranks got different values.
        assert!(averages.windows(2).all(|w| w[0] != w[1]), "{averages:?}");
    }
}

#[test]
fn mpi_scatter_repeats_with_its_seed() {
    let (first, summary) = scatter(2, &[]);
    let seed = u64_of(&summary["seed"]).to_string();
    let (again, _) = scatter(2, &["--seed", &seed]);
    assert_eq!(first, again);
}

/// A long `whoami` on 3 ranks, once its first result is out: mpirun, every
/// rank's PID and the PID of the worker that sent that result.
fn long_run_under_way(
    tmp: &tempfile::TempDir,
    max_delay_ms: &str,
) -> (std::process::Child, Vec<u32>, u32) {
    use std::io::{BufRead, BufReader};
    let mut mpirun = mpirun_command(3, tmp)
        .args(["--backend", "mpi", "--json", "--chunksize", "1"])
        .args(["whoami", "0..400", "--max-delay-ms", max_delay_ms])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mpirun starts");
    let mut first = String::new();
    BufReader::new(mpirun.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .expect("a first result");
    let first: Value = serde_json::from_str(&first).expect("a JSON result");
    let ranks = crate::util::children(mpirun.id());
    assert_eq!(ranks.len(), 3, "mpirun runs the 3 ranks itself");
    (mpirun, ranks, u64_of(&first["pid"]) as u32)
}

/// Waits up to a minute for mpirun; kills it and fails if it is still running.
fn finish(mut mpirun: std::process::Child) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = mpirun.try_wait().expect("mpirun can be waited on") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = mpirun.kill();
            let _ = mpirun.wait();
            panic!("mpirun still running a minute after the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    let _ = mpirun.stderr.take().unwrap().read_to_string(&mut stderr);
    (status, stderr)
}

#[test]
fn ctrl_c_at_mpirun_stops_every_rank() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let (mpirun, ranks, _) = long_run_under_way(&tmp, "200");
    procpool::sys::kill(mpirun.id(), libc::SIGINT).unwrap();
    // Rank 0 then prints what finished, but whether mpirun still forwards
    // that line while it tears the job down is up to mpirun.
    let (status, stderr) = finish(mpirun);
    assert!(!status.success(), "{status}\n{stderr}");
    assert_eq!(
        wait_gone(&ranks, 10.0),
        Vec::<u32>::new(),
        "ranks left behind"
    );
}

#[test]
fn a_worker_rank_that_dies_ends_the_job_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let (mpirun, ranks, worker) = long_run_under_way(&tmp, "200");
    procpool::sys::kill(worker, libc::SIGKILL).unwrap();
    let (status, stderr) = finish(mpirun);
    assert!(!status.success(), "{status}\n{stderr}");
    assert!(
        stderr.contains("signal 9"),
        "mpirun names the death: {stderr}"
    );
    assert_eq!(
        wait_gone(&ranks, 10.0),
        Vec::<u32>::new(),
        "ranks left behind"
    );
}

/// The MPI rank a process was started as, from its environment.
fn rank_of_process(pid: u32) -> Option<u32> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ
        .split(|&b| b == 0)
        .find_map(|var| var.strip_prefix(b"OMPI_COMM_WORLD_RANK="))
        .and_then(|rank| std::str::from_utf8(rank).ok()?.parse().ok())
}

#[test]
fn sigterm_to_rank_0_ends_the_job_with_143_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    // Tasks of up to 4 s: when the signal comes, ranks are busy past the
    // 0.5 s grace period, and rank 0 aborts the job rather than wait.
    let (mpirun, ranks, _) = long_run_under_way(&tmp, "4000");
    let root = *ranks
        .iter()
        .find(|&&pid| rank_of_process(pid) == Some(0))
        .expect("rank 0 among mpirun's children");
    procpool::sys::kill(root, libc::SIGTERM).unwrap();
    let (status, stderr) = finish(mpirun);
    assert_eq!(status.code(), Some(143), "{status}\n{stderr}");
    assert_eq!(
        wait_gone(&ranks, 10.0),
        Vec::<u32>::new(),
        "ranks left behind"
    );
}
