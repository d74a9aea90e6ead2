//! The MPI backend as a Slurm job (feature `mpi`): an sbatch script whose one
//! step is `srun --mpi=pmix procpool --backend mpi ...`, on a real cluster of
//! one node and of two nodes that are two hosts (network namespaces, `.ci/slurm
//! start DIR 2 --netns`). Each test starts its own cluster with [`Slurm`],
//! waits for its job with a bounded wait and stops everything again; where
//! the cluster cannot start, it says SKIPPED on stderr, or fails if
//! `PROCPOOL_REQUIRE_SLURM` is set (or, for the two hosts,
//! `PROCPOOL_REQUIRE_NETNS`). Run with `cargo test --features mpi
//! --test it slurm_mpi`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::slurm::Slurm;
use crate::util::{bin, show};

/// A submitted batch job of one MPI step, in a scratch directory of its own
/// (its script, `out.txt` and `err.txt`).
struct Job {
    dir: tempfile::TempDir,
    id: String,
    submitted: Instant,
}

impl Job {
    /// Submits `srun --mpi=pmix -n RANKS procpool --backend mpi ARGS` on
    /// `nodes` nodes, as many on each (in blocks: the first ones on n1).
    fn submit(slurm: &Slurm, nodes: u32, ranks: u32, args: &[&str]) -> Job {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let per_node = ranks.div_ceil(nodes);
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let script = format!(
            "#!/bin/bash\n\
             #SBATCH --nodes={nodes}\n\
             #SBATCH --ntasks={ranks}\n\
             #SBATCH --ntasks-per-node={per_node}\n\
             #SBATCH --output=out.txt\n\
             #SBATCH --error=err.txt\n\
             # Open MPI's session directory and shared-memory files of its own:\n\
             # the files in /dev/shm are named after the job id, and every test's\n\
             # cluster counts its jobs from 1.\n\
             export TMPDIR=$PWD/tmp OMPI_MCA_btl_vader_backing_directory=$PWD/tmp\n\
             mkdir -p \"$TMPDIR\"\n\
             # -K: a rank that dies ends the step at once, by SIGTERM, so rank 0\n\
             # says what finished (else Slurm's PMIx plugin kills it a second later).\n\
             srun --mpi=pmix --kill-on-bad-exit=1 -n {ranks} '{}' --backend mpi {}\n",
            bin().display(),
            quoted.join(" ")
        );
        let path = dir.path().join("mpi.sh");
        std::fs::write(&path, script).unwrap();
        let submitted = Instant::now();
        let id = slurm.sbatch(&path, dir.path());
        Job { dir, id, submitted }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The step's stdout so far.
    fn out(&self) -> String {
        std::fs::read_to_string(self.path("out.txt")).unwrap_or_default()
    }

    /// The step's and srun's stderr so far.
    fn err(&self) -> String {
        std::fs::read_to_string(self.path("err.txt")).unwrap_or_default()
    }

    /// Waits (at most `within`) for the job to leave the queue; says how long
    /// it took from submit to its last line (for the lead's note; never
    /// asserted) and returns its completion record's `JobState` and
    /// `ExitCode`.
    fn finish(&self, slurm: &Slurm, scenario: &str, within: Duration) -> (String, String) {
        slurm.wait(&self.id, within);
        eprintln!(
            "slurm mpi scenario {scenario:?}: {:.2?} from submit to last line",
            self.submitted.elapsed()
        );
        let record = slurm
            .record(&self.id)
            .unwrap_or_else(|| panic!("no completion record for job {}", self.id));
        (record["JobState"].clone(), record["ExitCode"].clone())
    }

    /// Waits (at most a minute) until the step printed `lines` whole lines;
    /// returns the whole lines printed by then.
    fn printed(&self, lines: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.out();
            let whole = &out[..out.rfind('\n').map_or(0, |end| end + 1)];
            if whole.lines().count() >= lines {
                return whole.lines().map(String::from).collect();
            }
            assert!(
                Instant::now() < deadline,
                "job {}: {lines} lines not printed within a minute:\n{out}\n{}",
                self.id,
                self.err()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The PIDs of the step's ranks, by rank (`SLURM_PROCID`): processes
    /// with this job's id and this cluster's `SLURM_CONF` (every cluster
    /// counts its jobs from 1).
    fn ranks(&self, slurm: &Slurm) -> Vec<(u32, u32)> {
        let job = format!("SLURM_JOB_ID={}", self.id);
        let conf = format!("SLURM_CONF={}", slurm.conf().display());
        let mut ranks: Vec<(u32, u32)> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "procpool")
            })
            .filter_map(|pid| {
                let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
                let vars: Vec<&[u8]> = environ.split(|&b| b == 0).collect();
                (vars.contains(&job.as_bytes()) && vars.contains(&conf.as_bytes())).then_some(())?;
                let rank = vars
                    .iter()
                    .find_map(|v| v.strip_prefix(b"SLURM_PROCID="))
                    .and_then(|r| std::str::from_utf8(r).ok()?.parse().ok())?;
                Some((rank, pid))
            })
            .collect();
        ranks.sort_unstable();
        ranks
    }
}

/// The real binary's output with `-p 3` (as many workers as 4 ranks have).
fn local(args: &[&str]) -> Output {
    let out = Command::new(bin())
        .args(["-p", "3"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    out
}

/// Every line as JSON; fails the test on a line that is not (a half line).
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not whole JSON ({e}): {l}")))
        .collect()
}

/// `(seed, estimate)` of every result line of a `pi --json` run.
fn estimates(text: &str) -> Vec<(u64, String)> {
    json_lines(text)
        .iter()
        .filter(|l| l.get("summary").is_none())
        .map(|l| (l["seed"].as_u64().unwrap(), l["estimate"].to_string()))
        .collect()
}

/// The summary's workers as `(rank, host)`.
fn workers(text: &str) -> Vec<(u64, String)> {
    let summary = json_lines(text).pop().expect("a summary")["summary"].clone();
    summary["workers"]
        .as_array()
        .unwrap_or_else(|| panic!("a workers list: {summary}"))
        .iter()
        .map(|w| {
            (
                w["rank"].as_u64().unwrap(),
                w["host"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn one_node_an_sbatch_step_prints_what_the_local_pool_prints() {
    let Some(slurm) = Slurm::new(1) else { return };
    let square = ["square", "0..50"];
    let pi = ["--json", "pi", "--seeds", "0..24", "--trials", "200000"];
    let squares = Job::submit(&slurm, 1, 4, &square);
    let (state, code) = squares.finish(&slurm, "square 0..50, 4 ranks", Duration::from_secs(60));
    assert_eq!(
        squares.out(),
        String::from_utf8_lossy(&local(&square).stdout)
    );
    assert_eq!((state.as_str(), code.as_str()), ("COMPLETED", "0:0"));

    let seeds = Job::submit(&slurm, 1, 4, &pi);
    let (state, code) = seeds.finish(&slurm, "pi 24 seeds, 4 ranks", Duration::from_secs(60));
    assert_eq!((state.as_str(), code.as_str()), ("COMPLETED", "0:0"));
    let out = seeds.out();
    let expected = String::from_utf8_lossy(&local(&pi).stdout).into_owned();
    assert_eq!(estimates(&out), estimates(&expected), "{}", seeds.err());
    let ranks: Vec<u64> = workers(&out).into_iter().map(|w| w.0).collect();
    assert_eq!(ranks, [1, 2, 3], "ranks 1-3 work: {out}");
}

#[test]
fn scancel_signal_kill_of_the_step_leaves_only_whole_results_and_every_one_printed_before() {
    let Some(slurm) = Slurm::new(1) else { return };
    // About 60 ms a seed: the step is mid-run for seconds.
    let pi = [
        "--json",
        "--chunksize",
        "1",
        "pi",
        "--seeds",
        "0..200",
        "--trials",
        "3000000",
    ];
    let job = Job::submit(&slurm, 1, 4, &pi);
    let before = job.printed(5);
    let cancelled = Instant::now();
    let out = slurm
        .command("scancel", job.dir.path())
        .args(["--signal=KILL", &format!("{}.0", job.id)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let (state, code) = job.finish(
        &slurm,
        "scancel --signal=KILL mid-run",
        Duration::from_secs(60),
    );
    eprintln!(
        "slurm mpi scenario \"scancel --signal=KILL mid-run\": {:.2?} from scancel to the job's end",
        cancelled.elapsed()
    );
    let after = job.out();
    assert!(
        after.is_empty() || after.ends_with('\n'),
        "a half line: {after:?}"
    );
    let results = estimates(&after);
    assert!(results.len() >= before.len(), "{after}");
    assert!(results.len() < 200, "the step was stopped mid-run: {after}");
    // What was printed before the signal is still there, unchanged; what
    // was printed at all is the local pool's results, in input order.
    let lines: Vec<&str> = after.lines().collect();
    assert_eq!(lines[..before.len()], before[..], "{after}");
    let expected = estimates(&String::from_utf8_lossy(&local(&pi).stdout));
    assert_eq!(results[..], expected[..results.len()], "{}", job.err());
    // Every rank was killed at once; the script's exit is srun's.
    assert!(job.err().contains("tasks 0-3: Killed"), "{}", job.err());
    assert_eq!(
        (state.as_str(), code.as_str()),
        ("FAILED", "137:0"),
        "{}",
        job.err()
    );
    assert_eq!(job.ranks(&slurm), [], "ranks left running");
}

#[test]
fn a_worker_rank_killed_alone_ends_the_step_naming_the_lost_task() {
    let Some(slurm) = Slurm::new(1) else { return };
    let whoami = [
        "--json",
        "--chunksize",
        "1",
        "whoami",
        "0..400",
        "--max-delay-ms",
        "200",
    ];
    let job = Job::submit(&slurm, 1, 4, &whoami);
    job.printed(5);
    let ranks = job.ranks(&slurm);
    assert_eq!(ranks.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1, 2, 3]);
    let victim = ranks[2].1;
    procpool::sys::kill(victim, libc::SIGKILL).unwrap();
    let killed = Instant::now();
    let (state, code) = job.finish(&slurm, "kill -9 of rank 2", Duration::from_secs(60));
    let ended = killed.elapsed();
    eprintln!(
        "slurm mpi scenario \"kill -9 of rank 2\": {ended:.2?} from the kill to the job's end"
    );
    assert!(
        ended < Duration::from_secs(15),
        "the step took {ended:?} to end"
    );
    let (out, err) = (job.out(), job.err());
    // Every line is whole; every task handed out has its line: those that ran to their end their result, the one the dead rank
    // held an error naming that rank.
    let lines: Vec<Value> = json_lines(&out)
        .into_iter()
        .filter(|l| l.get("summary").is_none())
        .collect();
    // (whoami prints each result as it comes.)
    let mut indices: Vec<u64> = lines.iter().map(|l| l["index"].as_u64().unwrap()).collect();
    indices.sort_unstable();
    assert_eq!(
        indices,
        (0..lines.len() as u64).collect::<Vec<_>>(),
        "{out}"
    );
    let (lost, done): (Vec<&Value>, Vec<&Value>) =
        lines.iter().partition(|l| l.get("error").is_some());
    assert!(done.iter().all(|l| l["output"]["x"] == l["index"]), "{out}");
    assert_eq!(lost.len(), 1, "one task lost: {out}");
    assert_eq!(
        (&lost[0]["rank"], &lost[0]["pid"]),
        (&2.into(), &victim.into()),
        "{out}"
    );
    let lost = lost[0]["index"].as_u64().unwrap();
    // On stderr, the lost task with its input and the rank; then what
    // finished and what did not.
    assert!(
        err.contains(&format!(
            "procpool: task {lost} (x = {lost}): worker {victim}: rank 2 on "
        )),
        "the lost task {lost} is named:\n{err}"
    );
    assert!(
        err.contains(&format!(
            "; {} of 400 tasks finished; not finished: {}-399",
            lines.len(),
            lines.len()
        )),
        "rank 0 says what finished:\n{err}"
    );
    // srun names the rank that died, and the job's record is not a success.
    assert!(err.contains("task 2: Killed"), "{err}");
    assert_eq!(state, "FAILED", "{code}");
    assert_ne!(code, "0:0");
    assert_eq!(job.ranks(&slurm), [], "ranks left running");
}

#[test]
fn two_nodes_on_two_hosts_a_step_has_ranks_on_both_and_prints_what_the_local_pool_prints() {
    let Some(slurm) = Slurm::across_hosts() else {
        return;
    };
    let pi = ["--json", "pi", "--seeds", "0..24", "--trials", "200000"];
    let job = Job::submit(&slurm, 2, 4, &pi);
    let (state, code) = job.finish(
        &slurm,
        "pi 24 seeds, 4 ranks on 2 hosts",
        Duration::from_secs(60),
    );
    let out = job.out();
    assert_eq!(
        (state.as_str(), code.as_str()),
        ("COMPLETED", "0:0"),
        "{}",
        job.err()
    );
    let expected = String::from_utf8_lossy(&local(&pi).stdout).into_owned();
    assert_eq!(estimates(&out), estimates(&expected), "{}", job.err());
    // Ranks in blocks: 0 and 1 on h1, 2 and 3 on h2.
    assert_eq!(
        workers(&out),
        [(1, "h1".into()), (2, "h2".into()), (3, "h2".into())],
        "{out}"
    );
    let lines = json_lines(&out);
    let used: BTreeSet<&str> = lines.iter().filter_map(|l| l["host"].as_str()).collect();
    assert_eq!(used, BTreeSet::from(["h1", "h2"]), "both hosts took work");

    let square = ["square", "0..50"];
    let job = Job::submit(&slurm, 2, 4, &square);
    let (state, _) = job.finish(&slurm, "square 0..50 on 2 hosts", Duration::from_secs(60));
    assert_eq!(job.out(), String::from_utf8_lossy(&local(&square).stdout));
    assert_eq!(state, "COMPLETED");
}
