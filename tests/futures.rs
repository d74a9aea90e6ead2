//! Futures as a hostile user holds them: on several threads, dropped
//! midway, cancelled, waited on after the pool is gone, and a pool stopped
//! from another thread. Every wait here is on an event (a task that holds
//! until the test opens its gate), never on the clock; the long timeouts
//! only turn a hang into a failure.

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use procpool::{Pool, PoolError, TaskError};
use serde::{Deserialize, Serialize};

procpool::test_support!();

/// What a test asks a worker to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Step {
    /// `x * x`.
    Square(i64),
    /// Creates `dir/started`, then holds until `dir/open` exists; returns -1.
    Hold(PathBuf),
    /// Appends `x` to the file, then returns it.
    Record(PathBuf, i64),
    /// Panics.
    Panic,
}

#[procpool::task]
fn step(what: Step) -> i64 {
    match what {
        Step::Square(x) => x * x,
        Step::Hold(dir) => {
            std::fs::write(dir.join("started"), "").unwrap();
            for _ in 0..60_000 {
                if dir.join("open").exists() {
                    return -1;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            panic!("the gate never opened")
        }
        Step::Record(file, x) => {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(file)
                .unwrap();
            writeln!(f, "{x}").unwrap();
            x
        }
        Step::Panic => panic!("asked to"),
    }
}

/// Long enough that only a hang reaches it.
const HANG: Duration = Duration::from_secs(30);

/// Runs `call` on a thread of its own and waits at most [`HANG`] for it,
/// so that a call that hangs fails the test instead of hanging it.
fn within<R: Send + 'static>(call: impl FnOnce() -> R + Send + 'static) -> R {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(call());
    });
    result.recv_timeout(HANG).expect("the call returned")
}

fn wait_for(path: &Path) {
    for _ in 0..30_000 {
        if path.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("{} never appeared", path.display());
}

/// One test's directory for its gate and logs, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A directory for one test's gate, and its `Hold` step.
fn gate() -> (Dir, Step) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("procpool-futures-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hold = Step::Hold(dir.clone());
    (Dir(dir), hold)
}

fn open(dir: &Dir) {
    std::fs::write(dir.path().join("open"), "").unwrap();
}

#[test]
fn a_short_apply_is_not_held_behind_another_threads_long_one() {
    let pool = Pool::new(2).unwrap();
    let (dir, hold) = gate();
    let pool = Arc::new(pool);
    let long = std::thread::spawn({
        let pool = Arc::clone(&pool);
        move || pool.apply(step, hold)
    });
    wait_for(&dir.path().join("started"));
    let short = within({
        let pool = Arc::clone(&pool);
        move || pool.apply(step, Step::Square(7))
    });
    // The long task still holds: the short one returned beside it.
    assert_eq!(short.unwrap(), 49);
    assert!(!long.is_finished());
    open(&dir);
    assert_eq!(long.join().unwrap().unwrap(), -1);
}

#[test]
fn a_handle_moves_to_another_thread_and_outlives_the_call_that_made_it() {
    let pool = Pool::new(1).unwrap();
    let handle = pool.submit(step, Step::Square(12)).unwrap();
    let waited = std::thread::spawn(move || handle.wait());
    assert_eq!(waited.join().unwrap().unwrap(), 144);
    let panics = pool.submit(step, Step::Panic).unwrap();
    assert!(matches!(
        panics.wait(),
        Err(PoolError::Task {
            index: 0,
            error: TaskError::Panicked { .. }
        })
    ));
}

#[test]
fn cancel_is_true_exactly_when_the_task_never_runs() {
    let pool = Pool::builder().processes(1).window(1).build().unwrap();
    let (dir, hold) = gate();
    let log = dir.path().join("ran");
    let mut running = pool.submit(step, hold).unwrap();
    wait_for(&dir.path().join("started"));
    let mut queued: Vec<_> = (0..4)
        .map(|x| pool.submit(step, Step::Record(log.clone(), x)).unwrap())
        .collect();
    let kept = queued.remove(2);
    assert!(!running.cancel(), "it runs");
    for handle in &mut queued {
        assert!(handle.cancel());
        assert!(handle.is_ready());
    }
    // Cancelling twice says it did not cancel it now.
    assert!(!queued[0].cancel());
    for handle in queued {
        assert!(matches!(
            handle.wait(),
            Err(PoolError::Task {
                error: TaskError::Cancelled,
                ..
            })
        ));
    }
    open(&dir);
    assert_eq!(running.wait().unwrap(), -1);
    assert_eq!(kept.wait().unwrap(), 2);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "2\n",
        "only the kept one ran"
    );
}

#[test]
fn dropped_handles_never_run_and_the_next_call_goes_on() {
    let pool = Pool::builder().processes(1).window(1).build().unwrap();
    let (dir, hold) = gate();
    let log = dir.path().join("ran");
    let running = pool.submit(step, hold).unwrap();
    wait_for(&dir.path().join("started"));
    for x in 0..4 {
        drop(pool.submit(step, Step::Record(log.clone(), x)).unwrap());
    }
    // The held task is dropped too, its gate never opened: its worker is
    // replaced, and the next call does not wait for it.
    let held = pool.pids();
    drop(running);
    let pool = Arc::new(pool);
    let next = within({
        let (pool, log) = (Arc::clone(&pool), log.clone());
        move || pool.apply(step, Step::Record(log, 9))
    });
    assert_eq!(next.unwrap(), 9);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "9\n");
    assert_ne!(pool.pids(), held);
}

#[test]
fn a_dropped_imap_stops_its_running_work_and_the_next_call_goes_on() {
    let pool = Pool::builder().processes(1).window(4).build().unwrap();
    let (dir, hold) = gate();
    let mut squares = pool.imap(step, [Step::Square(3), hold, Step::Square(4)]);
    assert_eq!(squares.next().unwrap().unwrap(), 9);
    wait_for(&dir.path().join("started"));
    drop(squares);
    let pool = Arc::new(pool);
    let next = within({
        let pool = Arc::clone(&pool);
        move || pool.apply(step, Step::Square(5))
    });
    assert_eq!(next.unwrap(), 25);
    let (events, _) = pool.take_events();
    let died = events
        .iter()
        .filter(|e| matches!(e, procpool::PoolEvent::WorkerDied { .. }))
        .count();
    assert_eq!(died, 1, "{events:?}");
}

#[test]
fn wait_timeout_and_try_wait_do_not_wait_for_a_held_task() {
    let pool = Pool::new(1).unwrap();
    let (dir, hold) = gate();
    let mut handle = pool.submit(step, hold).unwrap();
    wait_for(&dir.path().join("started"));
    assert!(!handle.wait_timeout(Duration::from_millis(1)));
    assert!(!handle.is_ready());
    let mut handle = handle.try_wait().expect_err("still held");
    open(&dir);
    assert!(handle.wait_timeout(HANG));
    assert!(handle.wait_timeout(HANG), "settled stays settled");
    assert_eq!(handle.try_wait().ok().unwrap().unwrap(), -1);
}

#[test]
fn as_completed_and_wait_any_give_the_settled_first() {
    let pool = Pool::new(2).unwrap();
    let (dir, hold) = gate();
    let mut handles = vec![
        pool.submit(step, hold).unwrap(),
        pool.submit(step, Step::Square(3)).unwrap(),
    ];
    assert_eq!(procpool::wait_any(&mut handles), Some(1));
    assert_eq!(procpool::wait_any::<step>(&mut []), None);
    let mut order = procpool::as_completed(handles);
    assert_eq!(order.next().unwrap().wait().unwrap(), 9);
    open(&dir);
    assert_eq!(order.next().unwrap().wait().unwrap(), -1);
    assert!(order.next().is_none());
}

#[test]
fn a_handle_whose_pool_is_gone_says_so() {
    let pool = Pool::new(1).unwrap();
    let (_dir, hold) = gate();
    let handle = pool.submit(step, hold).unwrap();
    drop(pool);
    assert!(matches!(handle.wait(), Err(PoolError::Closed)));
}

#[test]
fn interrupt_from_another_thread_stops_a_map_which_keeps_what_finished() {
    let pool = Pool::builder()
        .processes(1)
        .chunksize(1)
        .window(1)
        .build()
        .unwrap();
    let (dir, hold) = gate();
    let inputs = [
        Step::Square(1),
        Step::Square(2),
        Step::Square(3),
        hold,
        Step::Square(5),
    ];
    let stopped = std::thread::scope(|s| {
        s.spawn(|| {
            wait_for(&dir.path().join("started"));
            pool.interrupt();
        });
        pool.map_outcomes(step, inputs).unwrap_err()
    });
    assert!(
        matches!(
            stopped.error,
            PoolError::Interrupted {
                signal: libc::SIGINT
            }
        ),
        "{}",
        stopped.error
    );
    // The three before the held one, and perhaps the held one's own end.
    let done = &stopped.finished;
    assert!(matches!(done.len(), 3 | 4), "{done:?}");
    for (i, square) in [1, 4, 9].into_iter().enumerate() {
        assert_eq!((done[i].index, &done[i].result), (i as u64, &Ok(square)));
    }
    // Every later call says so too.
    assert!(matches!(
        pool.apply(step, Step::Square(2)),
        Err(PoolError::Interrupted { .. })
    ));
}

#[test]
fn map_async_gives_what_map_gives_on_any_thread_and_dropping_it_stops_its_work() {
    let pool = Pool::new(2).unwrap();
    let squares = pool.map_async(step, (0..100).map(Step::Square)).unwrap();
    let squares = std::thread::spawn(move || squares.wait());
    let want: Vec<i64> = (0..100).map(|x| x * x).collect();
    assert_eq!(squares.join().unwrap().unwrap(), want);
    assert!(pool.map_async(step, []).unwrap().wait().unwrap().is_empty());
    let failing = pool
        .map_async(step, [Step::Square(2), Step::Panic, Step::Square(3)])
        .unwrap();
    let stopped = failing.wait().unwrap_err();
    assert_eq!(stopped.finished, [4]);
    assert!(matches!(stopped.error, PoolError::Task { index: 1, .. }));
    // Dropped while one input holds: its worker is replaced, and the next
    // call does not wait for it.
    let (dir, hold) = gate();
    let log = dir.path().join("ran");
    let mut held = pool
        .map_async(step, [hold, Step::Record(log.clone(), 1)])
        .unwrap();
    wait_for(&dir.path().join("started"));
    assert!(!held.is_ready());
    assert!(!held.wait_timeout(Duration::from_millis(1)));
    drop(held);
    let pool = Arc::new(pool);
    let next = within({
        let pool = Arc::clone(&pool);
        move || pool.map(step, [Step::Square(5), Step::Square(6)])
    });
    assert_eq!(next.unwrap(), [25, 36]);
}

#[test]
fn a_panicking_progress_callback_fails_its_own_call_and_the_pool_goes_on() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let panicked = Arc::new(AtomicBool::new(false));
    let once = Arc::clone(&panicked);
    let pool = Pool::builder()
        .processes(1)
        .on_progress(move |_| {
            if !once.swap(true, Ordering::Relaxed) {
                panic!("the callback panics");
            }
        })
        .build()
        .unwrap();
    let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.map(step, [Step::Square(2), Step::Square(3)])
    }));
    assert!(call.is_err() && panicked.load(Ordering::Relaxed));
    let pool = Arc::new(pool);
    let next = within({
        let pool = Arc::clone(&pool);
        move || pool.map(step, [Step::Square(4)])
    });
    assert_eq!(next.unwrap(), [16]);
}

#[test]
fn a_pool_used_in_a_forked_child_says_so_instead_of_waiting_forever() {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};
    let pool = Pool::new(1).unwrap();
    // SAFETY: the child only calls what allocates nothing before it fails
    // (the owner check comes first), then _exit.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            let forked =
                matches!(pool.join(), Err(PoolError::Forked { .. })) && pool.pids().is_empty();
            // SAFETY: ends the child without running the harness's exit code.
            unsafe { libc::_exit(if forked { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => {
            let mut status = WaitStatus::StillAlive;
            for _ in 0..30_000 {
                status = waitpid(child, Some(WaitPidFlag::WNOHANG)).unwrap();
                if status != WaitStatus::StillAlive {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            if status == WaitStatus::StillAlive {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::SIGKILL);
                let _ = waitpid(child, None);
            }
            assert_eq!(status, WaitStatus::Exited(child, 0));
        }
    }
    // The parent's pool is untouched.
    assert_eq!(pool.apply(step, Step::Square(3)).unwrap(), 9);
}

#[test]
fn callbacks_run_once_each_in_the_order_tasks_settle_and_join_waits_for_them() {
    let pool = Pool::builder().processes(2).window(1).build().unwrap();
    let (dir, hold) = gate();
    let (sender, called) = mpsc::channel();
    let held = pool.submit(step, hold).unwrap();
    held.on_done({
        let sender = sender.clone();
        move |result| {
            sender
                .send(("held", result.map_err(|e| e.to_string())))
                .unwrap()
        }
    });
    wait_for(&dir.path().join("started"));
    // The other worker runs these while the first holds: their callbacks
    // come first, the failure's with its error (Python's error_callback).
    for (name, what) in [("square", Step::Square(6)), ("panic", Step::Panic)] {
        let sender = sender.clone();
        let handle = pool.submit(step, what).unwrap();
        handle.on_done(move |result| {
            sender
                .send((name, result.map_err(|e| e.to_string())))
                .unwrap()
        });
    }
    let first = called.recv_timeout(HANG).unwrap();
    let second = called.recv_timeout(HANG).unwrap();
    assert_eq!(first, ("square", Ok(36)));
    assert_eq!(second.0, "panic");
    assert!(second.1.unwrap_err().contains("asked to"));
    pool.close();
    open(&dir);
    within({
        let pool = Arc::new(pool);
        move || pool.join().unwrap()
    });
    // join returned: the held task's callback has run, exactly once.
    drop(sender);
    assert_eq!(called.try_iter().collect::<Vec<_>>(), [("held", Ok(-1))]);
}

#[test]
fn a_map_callback_gets_the_values_or_the_first_failure_with_what_came_before() {
    let pool = Pool::new(2).unwrap();
    let (sender, called) = mpsc::channel();
    for inputs in [
        vec![Step::Square(2), Step::Square(3)],
        vec![Step::Square(4), Step::Panic],
    ] {
        let sender = sender.clone();
        let map = pool.map_async(step, inputs).unwrap();
        map.on_done(move |result| {
            let said = result.map_err(|e| (e.finished, e.error.to_string()));
            sender.send(said).unwrap();
        });
    }
    let mut said: Vec<_> = (0..2).map(|_| called.recv_timeout(HANG).unwrap()).collect();
    said.sort_by_key(Result::is_err);
    assert_eq!(said[0], Ok(vec![4, 9]));
    let (finished, error) = said[1].clone().unwrap_err();
    assert_eq!(finished, [16]);
    assert!(
        error.starts_with("task 1 panicked") && error.ends_with("asked to"),
        "{error}"
    );
}

#[test]
fn a_callback_whose_pool_is_dropped_first_is_told_and_a_panicking_one_stops_no_other() {
    let pool = Pool::new(1).unwrap();
    let (_dir, hold) = gate();
    let (sender, called) = mpsc::channel();
    pool.submit(step, Step::Square(1))
        .unwrap()
        .on_done(|_| panic!("a callback that panics"));
    pool.submit(step, hold).unwrap().on_done(move |result| {
        sender
            .send(matches!(result, Err(PoolError::Closed)))
            .unwrap();
    });
    drop(pool);
    assert_eq!(called.recv_timeout(HANG), Ok(true));
}

#[test]
fn a_callback_that_uses_its_pool_and_joins_it_does_not_wait_for_itself() {
    let pool = Arc::new(Pool::new(1).unwrap());
    let (sender, said) = mpsc::channel();
    let inner = Arc::clone(&pool);
    pool.submit(step, Step::Square(2))
        .unwrap()
        .on_done(move |first| {
            // A callback may submit more work, and wait for it...
            let second = inner.apply(step, Step::Square(3));
            inner.close();
            // ...and join its own pool, which cannot wait for this callback.
            let joined = inner.join().map_err(|e| e.to_string());
            sender
                .send((first.unwrap(), second.unwrap(), joined))
                .unwrap();
        });
    assert_eq!(said.recv_timeout(HANG), Ok((4, 9, Ok(()))));
}
