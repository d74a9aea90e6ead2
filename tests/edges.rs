//! The library's edge suite: what users do wrongly inside tasks and around
//! pools, each run as a real program (tests/programs/hostile.rs) built
//! against the library. Each case ends with a clear result, nothing left
//! running (every process of a run carries the run's mark) and nothing
//! lost. The misuses of set-up (no `init`, a banner, a handler of the
//! program's own) are in tests/misuse.rs; futures used after `fork()` in
//! tests/futures.rs.

mod common;

use common::{run, text};

/// Runs `mode`, which must succeed; its stdout.
fn succeeds(mode: &str) -> String {
    let output = run(mode);
    assert!(
        output.status.success(),
        "{mode}: {:?}\n{}",
        output.status,
        text(&output.stderr)
    );
    text(&output.stdout)
}

#[test]
fn a_task_whose_forked_child_returns_too_gets_one_answer_and_the_child_exits() {
    let output = run("fork-returns");
    assert!(output.status.success(), "{}", text(&output.stderr));
    // Never the child's x + 100: the worker alone answers.
    assert_eq!(text(&output.stdout), "[1, 2, 3]\n");
    // A child still on its way out when the pool ends goes with the
    // worker's group before it can say so.
    let stderr = text(&output.stderr);
    assert!(stderr.lines().count() <= 3, "{stderr}");
    for line in stderr.lines() {
        assert!(
            line.starts_with("procpool: process ")
                && line.ends_with(
                    "(forked by task \"procpool_hostile::fork_returns\") returned from the task; it exits here"
                ),
            "{stderr}"
        );
    }
}

#[test]
fn what_a_task_forks_and_leaves_running_ends_with_its_pool() {
    // Four two-minute sleepers, one per task: none outlives the program.
    assert_eq!(succeeds("fork-lingers"), "1\n2\n3\n4\n");
}

#[test]
fn a_worker_that_exits_with_a_forked_child_holding_its_channel_is_seen_dead_at_once() {
    let started = std::time::Instant::now();
    let stdout = succeeds("fork-exits");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!([lines[0], lines[2], lines[3]], ["1", "3", "4"]);
    assert!(
        lines[1].starts_with("input 1: worker ")
            && lines[1].ends_with(" died: exited with status 7"),
        "{stdout}"
    );
    // Not when the child's two minutes are up.
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
}

#[test]
fn a_task_that_closes_stdin_and_stdout_leaves_its_worker_serving() {
    assert_eq!(succeeds("close-std"), "5 [4, 9] same worker: true\n");
}

#[test]
fn directory_and_umask_changes_stay_with_their_worker_and_a_replacement_starts_afresh() {
    // As in Python: a task's change to its process lasts for that worker's
    // next tasks; the replacement (after two tasks) starts where the
    // supervisor is, with its umask; the supervisor never moves.
    let mask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    nix::sys::stat::umask(mask);
    let start = format!("start {:o}", mask.bits());
    assert_eq!(
        succeeds("cwd-umask"),
        format!("{start}\n/ 77\n{start}\nsupervisor unmoved: true\n")
    );
}

#[test]
fn a_task_deaf_to_signals_is_still_stopped_by_its_timeout_and_named() {
    let stdout = succeeds("signals");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("task 0 worker ")
            && lines[0].ends_with(" timed out after 0.300s and was stopped"),
        "{stdout}"
    );
    assert_eq!(lines[1..], ["then 1", "within 5 s: true"]);
}

#[test]
fn an_input_iterator_that_panics_midway_leaves_the_pool_usable() {
    assert_eq!(
        succeeds("iter-panics"),
        "map panicked: true\n[0, 1, 4]\n\
         imap panicked: true after [0, 1, 4]\n[9, 16, 25]\n"
    );
}

#[test]
fn a_program_that_panics_with_a_pool_running_ends_at_once_and_leaves_nothing() {
    let started = std::time::Instant::now();
    let output = run("panic-midway");
    assert_eq!(output.status.code(), Some(101));
    assert_eq!(text(&output.stdout), "[0, 1, 4]\n");
    assert!(
        text(&output.stderr).contains("the program panicked midway"),
        "{}",
        text(&output.stderr)
    );
    // Not the minute of the task the pool was running: none of the map's
    // chunks waited behind it while the other worker was free.
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
}

#[test]
fn a_thousand_pools_built_and_dropped_hold_no_descriptor_and_no_shared_memory() {
    let stdout = succeeds("thousand");
    let (fds, shm) = stdout
        .trim()
        .strip_prefix("descriptors ")
        .and_then(|rest| rest.split_once(", /dev/shm "))
        .expect(&stdout);
    let (before, after) = fds.split_once(" -> ").unwrap();
    assert_eq!(before, after, "{stdout}");
    let (before, after) = shm.split_once(" -> ").unwrap();
    assert_eq!(before, after, "{stdout}");
}

procpool::test_support!();

/// The bytes reversed, each plus one.
#[procpool::task]
fn turn_bytes(bytes: Vec<u8>) -> Vec<u8> {
    bytes.iter().rev().map(|b| b.wrapping_add(1)).collect()
}

#[test]
fn a_64_mib_input_and_output_come_through_whole() {
    const SIZE: usize = 64 << 20;
    let pool = procpool::Pool::new(1).unwrap();
    let bytes: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let outcome = pool
        .submit(turn_bytes, bytes.clone())
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(outcome.len(), SIZE);
    assert!(
        outcome
            .iter()
            .rev()
            .zip(&bytes)
            .all(|(o, b)| *o == b.wrapping_add(1))
    );
    // The pool goes on with small work after it.
    assert_eq!(pool.apply(turn_bytes, vec![1, 2]).unwrap(), [3, 2]);
}
