//! A pool's initializer (Python's `initializer`/`initargs`): it runs once in
//! each worker, replacements included, before the worker's first task; its
//! tasks borrow what it made; its failure is one clear error, at `build()`
//! or in a replacement, and never an endless respawn.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use procpool::{Pool, PoolError, PoolEvent};

procpool::test_support!();

/// How often this process ran [`load`].
static LOADS: AtomicUsize = AtomicUsize::new(0);

/// What [`load`] makes: who made it, and how many loads this process had.
#[derive(Debug)]
struct Model {
    pid: u32,
    loads: usize,
    scale: i64,
}

/// Fails with `message` if `stop` exists (so a test can make replacements
/// fail after the first workers started), panics on `"panic"`.
#[procpool::initializer]
fn load(scale: i64, stop: PathBuf, message: String) -> Result<Model, String> {
    if message == "panic" {
        panic!("the model is corrupt");
    }
    if stop.exists() {
        return Err(message);
    }
    Ok(Model {
        pid: std::process::id(),
        loads: LOADS.fetch_add(1, Ordering::SeqCst) + 1,
        scale,
    })
}

/// Its input scaled by the model, with what the model says of its making.
#[procpool::task]
fn predict(model: &Model, x: i64) -> (i64, u32, usize, u32) {
    (x * model.scale, model.pid, model.loads, std::process::id())
}

/// A path no test creates.
fn nowhere() -> PathBuf {
    PathBuf::from("/nonexistent/procpool-initializer-test")
}

#[test]
fn each_worker_runs_the_initializer_once_before_its_tasks() {
    let pool = Pool::builder()
        .processes(2)
        .initializer(load, (3, nowhere(), String::new()))
        .build()
        .unwrap();
    let workers = pool.pids();
    let outcomes = pool.map(predict, 0..20).unwrap();
    for (x, (scaled, made_by, loads, ran_in)) in (0..).zip(outcomes) {
        assert_eq!(scaled, 3 * x);
        // The state was made in the process that ran the task, once.
        assert_eq!(made_by, ran_in);
        assert_eq!(loads, 1);
        assert!(workers.contains(&ran_in), "{ran_in} {workers:?}");
    }
}

#[test]
fn replacements_run_the_initializer_too() {
    let pool = Pool::builder()
        .processes(1)
        .max_tasks_per_child(1)
        .chunksize(1)
        .initializer(load, (2, nowhere(), String::new()))
        .build()
        .unwrap();
    let outcomes = pool.map(predict, 0..4).unwrap();
    let mut pids: Vec<u32> = outcomes.iter().map(|o| o.3).collect();
    for (scaled, made_by, loads, ran_in) in &outcomes {
        assert_eq!((*made_by, *loads), (*ran_in, 1));
        assert_eq!(scaled % 2, 0);
    }
    pids.dedup();
    assert_eq!(pids.len(), 4, "a worker for each task: {outcomes:?}");
}

/// The PID of a failed initializer's worker is reaped: no such process.
fn gone(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_failing_initializer_fails_build_with_the_worker_and_its_message() {
    let stop = std::env::temp_dir(); // exists: every start fails
    let error = Pool::builder()
        .processes(2)
        .initializer(load, (1, stop, "no model at /models/x".to_string()))
        .build()
        .unwrap_err();
    let PoolError::Initializer {
        ref name,
        pid,
        ref message,
    } = error
    else {
        panic!("{error:?}");
    };
    assert_eq!(name, "initializer::load");
    assert_eq!(message, "no model at /models/x");
    let pid = pid.unwrap();
    assert!(gone(pid), "worker {pid} left running");
    assert_eq!(
        error.to_string(),
        format!("initializer initializer::load failed in worker {pid}: no model at /models/x")
    );
}

#[test]
fn a_panicking_initializer_fails_build_with_its_panic() {
    let error = Pool::builder()
        .processes(1)
        .initializer(load, (1, nowhere(), "panic".to_string()))
        .build()
        .unwrap_err();
    let PoolError::Initializer { pid, message, .. } = error else {
        panic!("{error:?}");
    };
    assert!(gone(pid.unwrap()));
    assert!(
        message.starts_with("panicked at tests/initializer.rs:")
            && message.ends_with(": the model is corrupt"),
        "{message}"
    );
}

#[test]
fn an_initializer_that_starts_failing_in_replacements_stops_the_pool() {
    let stop = std::env::temp_dir().join(format!("procpool-init-stop-{}", std::process::id()));
    let pool = Pool::builder()
        .processes(2)
        .max_tasks_per_child(1)
        .chunksize(1)
        .initializer(
            load,
            (1, stop.clone(), "the model server is down".to_string()),
        )
        .build()
        .unwrap();
    assert_eq!(pool.map(predict, [1]).unwrap()[0].0, 1);
    std::fs::write(&stop, b"").unwrap();
    let error = pool.map(predict, 0..10).unwrap_err();
    std::fs::remove_file(&stop).unwrap();
    let message = error.to_string();
    assert!(
        matches!(error.error, PoolError::Initializer { pid: Some(_), .. })
            && message.contains("initializer initializer::load failed in worker ")
            && message.ends_with(": the model server is down"),
        "{message}"
    );
    // What finished before the failure is kept: the workers already up ran
    // one task each (the failure may come before either reply is in).
    assert!(error.finished.len() <= 2, "{:?}", error.finished);
    for (x, (scaled, ..)) in (0..).zip(&error.finished) {
        assert_eq!(*scaled, x);
    }
    // One failed replacement stopped it: no worker started after that one.
    let (events, _) = pool.take_events();
    let started = events
        .iter()
        .filter(|e| matches!(e, PoolEvent::WorkerStarted { .. }))
        .count();
    assert!(started <= 3, "{started} workers started: {events:?}");
    let after = pool.map(predict, [1]).unwrap_err();
    assert!(matches!(after.error, PoolError::Closed), "{after}");
}

#[test]
fn a_task_that_borrows_state_the_pool_does_not_make_fails_that_input() {
    let pool = Pool::new(1).unwrap();
    let error = pool.apply(predict, 1).unwrap_err();
    assert_eq!(
        error.to_string(),
        "task 0 failed: this task borrows a state of type initializer::Model, but the pool has no \
         initializer to make one (Pool::builder().initializer(...))"
    );
}
