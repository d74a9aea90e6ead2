//! The library's pool, with the real binary as its worker program.

use std::collections::BTreeSet;

use procpool::{Pool, PoolError, TaskError};
use procpool_cli::tasks::{Misbehave, Misbehavior, Sleep, Square};

use crate::util::{bin, pool, sleeping_in_a_task, wait_gone, wait_until};

#[test]
fn map_returns_results_in_input_order_from_several_workers() {
    let pool = pool(3);
    let outcomes = pool.map_outcomes(Square, (0..200).rev()).unwrap();
    let values: Vec<i64> = outcomes
        .iter()
        .map(|o| *o.result.as_ref().unwrap())
        .collect();
    let expected: Vec<i64> = (0..200i64).rev().map(|x| x * x).collect();
    assert_eq!(values, expected);
    assert!(
        outcomes
            .iter()
            .enumerate()
            .all(|(i, o)| o.index == i as u64)
    );
    let pids: BTreeSet<u32> = outcomes.iter().map(|o| o.pid).collect();
    assert!(!pids.contains(&std::process::id()));
    assert!(pids.iter().all(|p| pool.pids().contains(p)));
}

#[test]
fn at_least_two_workers_take_part() {
    let pool = pool(2);
    let outcomes = pool
        .imap(Sleep, vec![30u64; 6])
        .outcomes()
        .map(Result::unwrap)
        .collect::<Vec<_>>();
    let pids: BTreeSet<u32> = outcomes.iter().map(|o| o.pid).collect();
    assert_eq!(pids.len(), 2, "{outcomes:?}");
}

#[test]
fn imap_unordered_yields_in_completion_order() {
    let pool = pool(2);
    let outcomes: Vec<_> = pool
        .imap_unordered(Sleep, [300u64, 10, 10, 10])
        .outcomes()
        .map(Result::unwrap)
        .collect();
    let order: Vec<u64> = outcomes.iter().map(|o| o.index).collect();
    assert_eq!(order.len(), 4);
    // Each comes when it ends: the slow first one after every short one
    // that ran beside it, not first because it was given first.
    let ends: Vec<_> = outcomes.iter().map(|o| o.started() + o.elapsed()).collect();
    assert!(
        ends.windows(2).all(|w| w[0] <= w[1]),
        "{order:?} ended at {ends:?}"
    );
    assert_ne!(order[0], 0, "{order:?}");
}

#[test]
fn errors_and_panics_belong_to_their_index_and_the_pool_goes_on() {
    let pool = pool(2);
    let inputs = [
        (Misbehavior::Behave, 0),
        (Misbehavior::Fail, 1),
        (Misbehavior::Panic, 2),
        (Misbehavior::Behave, 3),
    ];
    let outcomes = pool.map_outcomes(Misbehave, inputs).unwrap();
    assert_eq!(outcomes[0].result, Ok(0));
    assert!(
        matches!(outcomes[1].error(), Some(TaskError::Failed { message }) if message.contains("input 1"))
    );
    match outcomes[2].error() {
        Some(TaskError::Panicked { message, location }) => {
            assert!(message.contains("input 2 panicked"));
            assert!(location.as_deref().unwrap().contains("diag.rs"));
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(outcomes[3].result, Ok(3));
    assert!(
        outcomes
            .iter()
            .all(|o| o.pid != 0 && o.pid != std::process::id())
    );
    assert_eq!(pool.apply(Square, 9).unwrap(), 81);
}

#[test]
fn submit_and_apply_wait_on_one_task() {
    let pool = pool(2);
    let slow = pool.submit(Sleep, 50).unwrap();
    let fast = pool.submit(Square, 5).unwrap().wait_outcome().unwrap();
    assert_eq!(fast.result, Ok(25));
    assert_eq!(slow.wait_outcome().unwrap().result, Ok(50));
}

#[test]
fn a_task_the_worker_lacks_is_a_clear_error() {
    struct Cube;
    impl procpool::Task for Cube {
        const NAME: &'static str = "cube";
        type Input = i64;
        type Output = i64;
        fn run(x: i64) -> Result<i64, procpool::Failure> {
            Ok(x * x * x)
        }
    }
    let pool = pool(1);
    let err = pool.map_outcomes(Cube, [1, 2]).unwrap_err().error;
    assert!(
        matches!(err, PoolError::UnknownTask { ref name, .. } if name == "cube"),
        "{err}"
    );
    assert!(
        err.to_string().contains("square"),
        "lists what it knows: {err}"
    );
}

#[test]
fn a_program_that_is_not_a_worker_fails_the_build_quickly() {
    let start = std::time::Instant::now();
    let err = Pool::builder()
        .processes(2)
        .worker_program("/bin/true")
        .build()
        .expect_err("fails");
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    let text = err.to_string();
    assert!(
        text.contains("/bin/true") && text.contains("exited with status 0"),
        "{text}"
    );
    let err = Pool::builder()
        .processes(1)
        .worker_program("/no/such/program")
        .build()
        .err()
        .unwrap();
    assert!(matches!(err, PoolError::Spawn { .. }), "{err}");
}

#[test]
fn a_worker_killed_mid_map_costs_its_task_an_error_naming_pid_and_signal() {
    let pool = pool(2);
    let victim = pool.pids()[0];
    // Killed while it runs one of the map's tasks, not between two.
    let killer = std::thread::spawn(move || {
        assert!(
            wait_until(10.0, || sleeping_in_a_task(victim)),
            "worker {victim} never ran a task"
        );
        procpool::sys::kill(victim, libc::SIGKILL).unwrap();
    });
    let start = std::time::Instant::now();
    let outcomes: Vec<_> = pool
        .imap(Sleep, vec![100u64; 12])
        .chunksize(1)
        .outcomes()
        .map(Result::unwrap)
        .collect();
    killer.join().unwrap();
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    let died: Vec<_> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    assert_eq!(
        died.len(),
        1,
        "only the running task is charged: {outcomes:?}"
    );
    assert_eq!(
        died[0].error(),
        Some(&TaskError::WorkerDied {
            pid: victim,
            cause: procpool::ExitCause::Signal(9)
        })
    );
    assert_eq!(outcomes.iter().filter(|o| o.result.is_ok()).count(), 11);
    assert!(
        !pool.pids().contains(&victim),
        "the dead worker was replaced"
    );
    assert_eq!(pool.pids().len(), 2);
    assert_eq!(pool.apply(Square, 4).unwrap(), 16);
}

#[test]
fn dropping_a_pool_leaves_no_worker() {
    let pool = pool(3);
    let pids = pool.pids();
    drop(pool);
    assert!(wait_gone(&pids, 2.0).is_empty());
}

#[test]
fn close_join_and_terminate_like_python() {
    let pool = pool(2);
    let pids = pool.pids();
    let pending = pool.submit(Sleep, 20).unwrap();
    pool.close();
    assert!(matches!(pool.apply(Square, 1), Err(PoolError::Closed)));
    assert_eq!(pending.wait_outcome().unwrap().result, Ok(20));
    pool.join().unwrap();
    assert!(wait_gone(&pids, 2.0).is_empty());

    let pool = crate::util::pool(2);
    let pids = pool.pids();
    pool.terminate();
    assert!(wait_gone(&pids, 1.0).is_empty());
    let _ = bin();
}

#[test]
fn imap_over_ten_million_items_keeps_the_supervisors_memory_flat() {
    // The supervisor is the example program, so no other test shares its memory.
    let example = bin()
        .parent()
        .unwrap()
        .join("examples")
        .join("endless_imap");
    let out = std::process::Command::new(example)
        .args(["10000000", bin().to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", crate::util::show(&out));
    let growth_kib: u64 = stdout
        .lines()
        .last()
        .and_then(|l| l.split("growth ").nth(1))
        .and_then(|g| g.split_whitespace().next()?.parse().ok())
        .expect("a growth figure");
    eprintln!("{}", stdout.trim_end());
    assert!(
        growth_kib < 16 * 1024,
        "peak memory grew by {growth_kib} KiB over 10 million items"
    );
}

#[test]
fn large_chunks_travel_through_shared_memory_and_come_back_whole() {
    let pool = pool(2);
    let outcomes = pool
        .imap(Square, 0..200_000i64)
        .chunksize(50_000)
        .map(Result::unwrap);
    let mut n = 0i64;
    for o in outcomes {
        assert_eq!(o, n * n);
        n += 1;
    }
    assert_eq!(n, 200_000);
    // A chunk of 50,000 encoded integers is far above the shared-memory threshold.
    let mut bytes = Vec::new();
    for x in 0..50_000i64 {
        procpool::codec::encode_into(&x, &mut bytes).unwrap();
    }
    assert!(bytes.len() > procpool::protocol::SHARED_MEMORY_THRESHOLD);
}

#[test]
fn map_over_many_chunks_gives_values_in_order_or_the_first_failure() {
    let pool = pool(2);
    let n = 100_000i64;
    let values = pool.map(Square, 0..n).unwrap();
    assert_eq!(values.len(), n as usize);
    assert!(
        values
            .iter()
            .enumerate()
            .all(|(i, &v)| v == (i as i64) * (i as i64))
    );
    // Two failures in different chunks: the first in input order is the error.
    let inputs = (0..n).map(|x| match x {
        70_000 | 90_000 => i64::MAX,
        x => x,
    });
    match pool.map(Square, inputs).map_err(|stopped| stopped.error) {
        Err(PoolError::Task {
            index: 70_000,
            error: TaskError::Failed { message },
        }) => assert!(message.contains("overflows"), "{message}"),
        other => panic!("expected task 70000 to fail, got {other:?}"),
    }
}
