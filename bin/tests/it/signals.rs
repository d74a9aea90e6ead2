//! Interruption and supervisor death: one signal is enough, finished results
//! are printed, and no worker outlives its supervisor.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{bin, children, sleeping_in_a_task, wait_gone, wait_until};

/// Starts `procpool ARGS` with piped output; waits until it has `workers` children.
/// The caller reaps the child (see `finish`).
#[allow(clippy::zombie_processes)]
fn start(args: &[&str], workers: usize) -> (Child, Vec<u32>) {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let kids = children(child.id());
        if kids.len() >= workers {
            return (child, kids);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("workers did not start");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// As `start`, then waits until each of the `workers` runs one of its
/// sleeping tasks, so that a signal comes mid-task, not during start-up.
fn start_running(args: &[&str], workers: usize) -> (Child, Vec<u32>) {
    let (mut child, pids) = start(args, workers);
    if !wait_until(10.0, || pids.iter().all(|&pid| sleeping_in_a_task(pid))) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the workers {pids:?} did not all start a task");
    }
    (child, pids)
}

fn signal(child: &Child, signal: i32) {
    procpool::sys::kill(child.id(), signal).unwrap();
}

/// Waits for the child with a deadline, so a hang fails the test instead of stalling it.
fn finish(mut child: Child, within: Duration) -> (Option<i32>, String, String) {
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("procpool did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn sigint_stops_at_once_with_130_and_leaves_no_worker() {
    let (child, workers) = start_running(&["-p", "2", "sleep", "30000", "30000", "30000"], 2);
    signal(&child, libc::SIGINT);
    let (code, _, stderr) = finish(child, Duration::from_secs(3));
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted by signal 2 (SIGINT)"),
        "{stderr}"
    );
    assert!(wait_gone(&workers, 1.0).is_empty());
}

#[test]
fn sigterm_stops_at_once_with_143() {
    let (child, workers) = start(&["-p", "2", "sleep", "30000", "30000"], 2);
    signal(&child, libc::SIGTERM);
    let (code, _, stderr) = finish(child, Duration::from_secs(3));
    assert_eq!(code, Some(143), "{stderr}");
    assert!(wait_gone(&workers, 1.0).is_empty());
}

#[test]
fn results_finished_before_an_interrupt_are_printed() {
    let mut child = Command::new(bin())
        .args([
            "-p",
            "2",
            "--unordered",
            "--json",
            "sleep",
            "10",
            "10",
            "30000",
            "30000",
            "10",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.push(lines.next().unwrap().unwrap());
    }
    signal(&child, libc::SIGINT);
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let (code, _, _) = finish(child, Duration::from_secs(3));
    assert_eq!(code, Some(130));
    let summary: serde_json::Value = serde_json::from_str(rest.last().unwrap()).unwrap();
    assert_eq!(summary["summary"]["exit_code"], 130);
    assert!(summary["summary"]["ok"].as_u64().unwrap() >= 2, "{rest:?}");
    for line in &seen {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["output"], 10);
    }
}

#[test]
fn a_supervisor_killed_with_sigkill_takes_its_workers_with_it() {
    let (child, workers) = start(&["-p", "3", "sleep", "30000", "30000", "30000"], 3);
    signal(&child, libc::SIGKILL);
    let _ = finish(child, Duration::from_secs(3));
    assert_eq!(
        wait_gone(&workers, 1.0),
        Vec::<u32>::new(),
        "workers outlived their supervisor"
    );
}

#[test]
fn worker_mode_by_hand_or_with_a_stale_name_exits_with_a_clear_message() {
    let by_hand = Command::new(bin())
        .env("PROCPOOL_WORKER", "")
        .output()
        .unwrap();
    assert_eq!(by_hand.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&by_hand.stderr);
    assert!(
        stderr.contains("started by a procpool supervisor, not by hand"),
        "{stderr}"
    );

    // Our child, but nobody on the other end of its stdin: it removes its
    // socket and says so.
    let me = std::process::id().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let alone = Command::new(bin())
        .env("PROCPOOL_WORKER", format!("{me}:1"))
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert_eq!(alone.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&alone.stderr);
    assert!(
        stderr.contains("no supervisor completed the handshake"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);

    let foreign = Command::new(bin())
        .env("PROCPOOL_WORKER", "1:1")
        .output()
        .unwrap();
    assert_eq!(foreign.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&foreign.stderr).contains("is not this process's parent"));
}

#[test]
fn chaos_every_result_comes_back_correct_and_in_order() {
    // 10,000 tasks while random workers are SIGKILLed every few milliseconds.
    let mut args: Vec<String> = [
        "--json",
        "-p",
        "4",
        "--chunksize",
        "1",
        "--retries",
        "1000",
        "misbehave",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(std::iter::repeat_n("hang=1".to_string(), 10_000));
    let mut child = Command::new(bin())
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let supervisor = child.id();
    let reader = std::thread::spawn({
        let stdout = child.stdout.take().unwrap();
        move || {
            BufReader::new(stdout)
                .lines()
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        }
    });
    let mut kills = 0;
    let mut seen = std::collections::BTreeSet::new();
    let mut first_seen = std::collections::HashMap::new();
    let mut seed = 12345u64;
    let mut round = 0u32;
    while child.try_wait().unwrap().is_none() {
        round += 1;
        // Kill workers, not processes still starting up: a run of kills at
        // start-up is a different case (the pool gives up after five).
        let workers: Vec<u32> = children(supervisor)
            .into_iter()
            .filter(|&pid| round - *first_seen.entry(pid).or_insert(round) >= 3)
            .collect();
        if !workers.is_empty() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let victim = workers[(seed >> 33) as usize % workers.len()];
            if procpool::sys::kill(victim, libc::SIGKILL).is_ok() {
                kills += 1;
                seen.insert(victim);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let lines = reader.join().unwrap();
    let (code, _, stderr) = finish(child, Duration::from_secs(1));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(lines.len(), 10_001);
    let mut retried = 0;
    for (i, line) in lines[..10_000].iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["index"], i, "in order");
        assert_eq!(v["output"], i, "correct");
        if v["attempts"].as_u64().unwrap() > 1 {
            retried += 1;
        }
    }
    eprintln!("chaos: {kills} kills, {retried} tasks recovered by retry");
    assert!(kills >= 10, "the chaos was real: {kills} kills");
    let seen: Vec<u32> = seen.into_iter().collect();
    assert!(wait_gone(&seen, 1.0).is_empty());
    assert!(children(supervisor).is_empty());
}
