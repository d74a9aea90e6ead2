//! CPython's own tests of `multiprocessing.Pool`, ported (issue 21.7): every
//! test of `_TestPool`, `_TestPoolWorkerErrors`, `_TestPoolWorkerLifetime`,
//! `TestInitializers` and `TestPoolNotLeakOnFailure` in CPython 3.11's
//! `Lib/test/_test_multiprocessing.py`, under the same name, checking what
//! the Python test checks through real worker processes.
//!
//! Python's `sqr`, `mul`, `identity`, `raising`, `raise_large_valuerror`
//! and `exception_throwing_generator` are the tasks and the iterator below;
//! an exception a task raises is an `Err` it returns (or a panic); an
//! exception the input iterable raises is a panic of the input iterator,
//! which reaches the caller as its own panic (Python: the caller's own
//! exception, not a remote one); `with Pool() as p:` is a scope whose end
//! drops the pool; `get(timeout)` is `wait_timeout`; `callback=` and
//! `error_callback=` are `on_done`.
//!
//! | Python test | here |
//! |---|---|
//! | `_TestPool.test_apply` | `test_apply` (no keyword arguments in Rust: `apply(sqr, 3)` twice) |
//! | `_TestPool.test_map` | `test_map` |
//! | `_TestPool.test_starmap` | `test_starmap` (a task of two parameters) |
//! | `_TestPool.test_starmap_async` | `test_starmap_async` |
//! | `_TestPool.test_map_async` | `test_map_async` |
//! | `_TestPool.test_map_async_callbacks` | `test_map_async_callbacks` (`MapHandle::on_done`) |
//! | `_TestPool.test_map_unplicklable` | `test_map_unplicklable`: an input whose `Serialize` fails is that input's `TaskError::Encode`, no hang |
//! | `_TestPool.test_map_chunksize` | `test_map_chunksize` |
//! | `_TestPool.test_map_handle_iterable_exception` | `test_map_handle_iterable_exception` (a panicking input iterator) |
//! | `_TestPool.test_async` | `test_async` |
//! | `_TestPool.test_async_timeout` | `test_async_timeout` (`wait_timeout`) |
//! | `_TestPool.test_imap` | `test_imap` |
//! | `_TestPool.test_imap_handle_iterable_exception` | `test_imap_handle_iterable_exception` |
//! | `_TestPool.test_imap_unordered` | `test_imap_unordered` |
//! | `_TestPool.test_imap_unordered_handle_iterable_exception` | `test_imap_unordered_handle_iterable_exception` |
//! | `_TestPool.test_make_pool` | `test_make_pool` (`Pool(-1)` cannot be written: `usize`) |
//! | `_TestPool.test_terminate` | `test_terminate` |
//! | `_TestPool.test_empty_iterable` | `test_empty_iterable` |
//! | `_TestPool.test_context` | `test_context` (the scope's end, then `terminate`) |
//! | `_TestPool.test_traceback` | `test_traceback`: a panic's message and its `file:line:column` in this file; the input iterator's panic is the caller's own |
//! | `_TestPool.test_wrapped_exception` | `test_wrapped_exception` |
//! | `_TestPool.test_map_no_failfast` | `test_map_no_failfast` (see there: `map` abandons the rest, so `join` has nothing to wait for) |
//! | `_TestPool.test_release_task_refs` | `test_release_task_refs`: a value that counts its live copies, none left after `map` |
//! | `_TestPool.test_enter` | `test_enter`: after `terminate` (what `__exit__` does) no call is taken |
//! | `_TestPool.test_resource_warning` | `test_resource_warning`: a running pool that is dropped kills and reaps its workers (no warning to give) |
//! | `_TestPoolWorkerErrors.test_async_error_callback` | `test_async_error_callback` (`Handle::on_done`) |
//! | `_TestPoolWorkerErrors.test_unpickleable_result` | `test_unpickleable_result`: an output whose `Serialize` fails |
//! | `_TestPoolWorkerLifetime.test_pool_worker_lifetime` | `test_pool_worker_lifetime` (`max_tasks_per_child`) |
//! | `_TestPoolWorkerLifetime.test_pool_worker_lifetime_early_close` | `test_pool_worker_lifetime_early_close` |
//! | `_TestPoolWorkerLifetime.test_pool_maxtasksperchild_invalid` | `test_pool_maxtasksperchild_invalid` (only 0 can be written: `-1`, `0.5` and `"12"` are not a `u64`) |
//! | `_TestPoolWorkerLifetime.test_worker_finalization_via_atexit_handler_of_multiprocessing` | `test_worker_finalization_via_atexit_handler_of_multiprocessing`: this harness run again with a pool in a `static`, never dropped |
//! | `TestInitializers.test_manager_initializer` | does not apply: procpool has no `Manager` |
//! | `TestInitializers.test_pool_initializer` | `test_pool_initializer` (`initializer=1`, a `TypeError`, does not compile in Rust) |
//! | `TestPoolNotLeakOnFailure.test_release_unused_processes` | `test_release_unused_processes`: the fourth worker's initializer fails, no worker is left |

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use procpool::{Pool, PoolError, TaskError};
use serde::{Deserialize, Serialize};

procpool::test_support!();

/// Long enough that only a hang reaches it.
const HANG: Duration = Duration::from_secs(30);

/// Python's `sqr(x)`.
#[procpool::task]
fn sqr(x: i64) -> i64 {
    x * x
}

/// Python's `sqr(x, wait)`: sleeps `wait_ms` first.
#[procpool::task]
fn sqr_wait(x: i64, wait_ms: u64) -> i64 {
    std::thread::sleep(Duration::from_millis(wait_ms));
    x * x
}

/// Python's `mul`.
#[procpool::task]
fn mul(x: i64, y: i64) -> i64 {
    x * y
}

/// Python's `int` on a string.
#[procpool::task]
fn int(text: String) -> Result<i64, std::num::ParseIntError> {
    text.parse()
}

/// Python's `time.sleep`, which first notes that it runs: creates a file
/// named by its worker's PID in `dir`.
#[procpool::task]
fn sleep_ms(dir: PathBuf, ms: u64) -> u64 {
    std::fs::write(dir.join(std::process::id().to_string()), "").unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// The size of [`raise_large_valuerror`]'s message: Python's `"x" * 1024**2`.
const LARGE: usize = 1 << 20;

/// Python's `raise_large_valuerror(wait)`, which notes in `dir` that it
/// starts (`started-WAIT`, holding its worker's PID) and that it ends
/// (`ended-WAIT`, as it returns).
#[procpool::task]
fn raise_large_valuerror(dir: PathBuf, wait_ms: u64) -> Result<i64, String> {
    let pid = std::process::id().to_string();
    std::fs::write(dir.join(format!("started-{wait_ms}")), pid).unwrap();
    std::thread::sleep(Duration::from_millis(wait_ms));
    std::fs::write(dir.join(format!("ended-{wait_ms}")), "").unwrap();
    Err("x".repeat(LARGE))
}

/// Python's `raising`: `raise KeyError("key")`.
#[procpool::task]
fn raising(_: ()) -> Result<i64, String> {
    Err("KeyError: 'key'".to_string())
}

/// Python's `_test_traceback`: `raise RuntimeError(123) # some comment`.
#[procpool::task]
fn test_traceback_task(_: ()) -> i64 {
    panic!("RuntimeError(123)") // some comment
}

/// The line of the panic in [`test_traceback_task`].
const TRACEBACK_LINE: u32 = line!() - 4;

/// Python's `_test_wrapped_exception`: `raise RuntimeError('foo')`.
#[procpool::task]
fn test_wrapped_exception_task(_: ()) -> Result<i64, String> {
    Err("foo".to_string())
}

/// A value that cannot be encoded, as Python's `A` with a `__reduce__` that
/// raises, and the lambda `unpickleable_result` returns.
#[derive(Debug, Deserialize)]
struct Unpicklable;

impl Serialize for Unpicklable {
    /// Fails, as pickling Python's `A()` does.
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("cannot pickle"))
    }
}

/// Python's `sqr` on an `A()`: never runs, its input cannot be sent.
#[procpool::task]
fn sqr_unpicklable(_: Unpicklable) -> i64 {
    unreachable!("an input that cannot be encoded never reaches a worker")
}

/// Python's `unpickleable_result`: returns what cannot be sent back.
#[procpool::task]
fn unpickleable_result(_: ()) -> Unpicklable {
    Unpicklable
}

/// Live [`Counted`] values in this process.
static COUNTED: AtomicIsize = AtomicIsize::new(0);

/// Python's `CountedObject`: counts its live instances in this process
/// (made, cloned, or decoded from a worker's reply).
#[derive(Debug, Serialize)]
struct Counted(u8);

impl Counted {
    fn new() -> Self {
        COUNTED.fetch_add(1, Ordering::SeqCst);
        Counted(0)
    }
}

impl<'de> Deserialize<'de> for Counted {
    /// A decoded copy is one more instance.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let byte = u8::deserialize(d)?;
        COUNTED.fetch_add(1, Ordering::SeqCst);
        Ok(Counted(byte))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        COUNTED.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Python's `identity`.
#[procpool::task]
fn identity(x: Counted) -> Counted {
    x
}

/// The message of Python's `SayWhenError`.
const SAY_WHEN: &str = "Somebody said when";

/// Python's `exception_throwing_generator(total, when)`: yields `0..total`
/// but panics when it reaches `when` (at once for -1). Its length is not
/// known, as a generator's is not.
fn exception_throwing_generator(total: i64, when: i64) -> impl Iterator<Item = i64> {
    let mut i = 0;
    std::iter::from_fn(move || {
        if when == -1 || i == when {
            panic!("{SAY_WHEN}");
        }
        let next = (i < total).then_some(i);
        i += 1;
        next
    })
}

/// Python's `SpecialIterable`: says its length is 1, then panics.
struct SpecialIterable;

impl Iterator for SpecialIterable {
    type Item = i64;

    fn next(&mut self) -> Option<i64> {
        panic!("{SAY_WHEN}")
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (1, Some(1))
    }
}

/// The message of a caught panic.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message")
}

/// Runs `call`, which must panic with [`SAY_WHEN`], as
/// `assertRaises(SayWhenError)`.
fn assert_says_when<R: std::fmt::Debug>(call: impl FnOnce() -> R) {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(returned) => panic!("no SayWhenError: returned {returned:?}"),
        Err(payload) => assert_eq!(panic_message(&*payload), SAY_WHEN),
    }
}

/// Runs `call` on a thread of its own and waits at most [`HANG`] for it,
/// so that a call that hangs fails the test instead of hanging it.
fn within<R: Send + 'static>(call: impl FnOnce() -> R + Send + 'static) -> R {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(call());
    });
    result
        .recv_timeout(HANG)
        .expect("the call returned in time")
}

/// Whether no process has this PID (a reaped worker).
fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits at most [`HANG`] for every PID in `pids` to be gone.
fn assert_all_gone(pids: &[u32]) {
    let deadline = Instant::now() + HANG;
    while !pids.iter().all(|&p| gone(p)) {
        assert!(Instant::now() < deadline, "workers left running: {pids:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One test's scratch directory, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(what: &str) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("procpool-cpython-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Python's `_TestPool` shares one pool of 4 between its tests; each test
/// here has its own, of 2 (the machine has 2 cores).
fn pool() -> Pool {
    Pool::new(2).unwrap()
}

fn squares(n: i64) -> Vec<i64> {
    (0..n).map(|x| x * x).collect()
}

#[test]
fn test_apply() {
    let pool = pool();
    assert_eq!(pool.apply(sqr, 5).unwrap(), 25);
    assert_eq!(pool.apply(sqr, 3).unwrap(), 9);
}

#[test]
fn test_map() {
    let pool = pool();
    assert_eq!(
        pool.map(sqr, (0..10).collect::<Vec<_>>()).unwrap(),
        squares(10)
    );
    let chunked = Pool::builder().processes(2).chunksize(20).build().unwrap();
    assert_eq!(
        chunked.map(sqr, (0..100).collect::<Vec<_>>()).unwrap(),
        squares(100)
    );
}

/// Python's `list(zip(range(n), range(n - 1, -1, -1)))`.
fn tuples(n: i64) -> Vec<(i64, i64)> {
    (0..n).zip((0..n).rev()).collect()
}

fn products(tuples: &[(i64, i64)]) -> Vec<i64> {
    tuples.iter().map(|(x, y)| x * y).collect()
}

#[test]
fn test_starmap() {
    let pool = pool();
    let ten = tuples(10);
    assert_eq!(pool.map(mul, ten.clone()).unwrap(), products(&ten));
    let chunked = Pool::builder().processes(2).chunksize(20).build().unwrap();
    let hundred = tuples(100);
    assert_eq!(
        chunked.map(mul, hundred.clone()).unwrap(),
        products(&hundred)
    );
}

#[test]
fn test_starmap_async() {
    let pool = pool();
    let hundred = tuples(100);
    let handle = pool.map_async(mul, hundred.clone()).unwrap();
    assert_eq!(handle.wait().unwrap(), products(&hundred));
}

#[test]
fn test_map_async() {
    let pool = pool();
    let handle = pool.map_async(sqr, (0..10).collect::<Vec<_>>()).unwrap();
    assert_eq!(handle.wait().unwrap(), squares(10));
}

#[test]
fn test_map_async_callbacks() {
    let pool = pool();
    let (call_args, called) = mpsc::channel();
    let append = call_args.clone();
    let ok = pool.map_async(int, ["1".to_string()]).unwrap();
    ok.on_done(move |result| append.send(result).unwrap());
    assert_eq!(called.recv_timeout(HANG).unwrap().unwrap(), [1]);
    let append = call_args;
    let failing = pool.map_async(int, ["a".to_string()]).unwrap();
    failing.on_done(move |result| append.send(result).unwrap());
    let stopped = called.recv_timeout(HANG).unwrap().unwrap_err();
    // Python's ValueError: int('a') failed, nothing before it.
    assert!(
        matches!(
            &stopped.error,
            PoolError::Task { index: 0, error: TaskError::Failed { message } }
                if message == "invalid digit found in string"
        ),
        "{stopped}"
    );
    assert!(stopped.finished.is_empty());
    // join waits for the callbacks: each ran once, none is left.
    pool.close();
    pool.join().unwrap();
    assert!(matches!(
        called.try_recv(),
        Err(mpsc::TryRecvError::Disconnected)
    ));
}

#[test]
fn test_map_unplicklable() {
    // Issue #19425: failure to pickle should not cause a hang.
    let pool = pool();
    let inputs: Vec<Unpicklable> = (0..10).map(|_| Unpicklable).collect();
    let failed = within(move || pool.map(sqr_unpicklable, inputs)).unwrap_err();
    let PoolError::Task { index: 0, error } = &failed.error else {
        panic!("{failed}");
    };
    assert!(
        matches!(error, TaskError::Encode { message } if message.contains("cannot pickle")),
        "{error:?}"
    );
    assert!(failed.finished.is_empty());
}

#[test]
fn test_map_chunksize() {
    let pool = Pool::builder().processes(2).chunksize(1).build().unwrap();
    let mut handle = pool.map_async(sqr, []).unwrap();
    // Python's TIMEOUT1.
    assert!(
        handle.wait_timeout(Duration::from_millis(820)),
        "pool.map_async with chunksize stalled on null list"
    );
    assert!(handle.wait().unwrap().is_empty());
}

#[test]
fn test_map_handle_iterable_exception() {
    let pool = pool();
    // SayWhenError seen at the very first of the iterable.
    assert_says_when(|| pool.map(sqr, exception_throwing_generator(1, -1)));
    // Again, make sure it's reentrant.
    assert_says_when(|| pool.map(sqr, exception_throwing_generator(1, -1)));
    assert_says_when(|| pool.map(sqr, exception_throwing_generator(10, 3)));
    assert_says_when(|| pool.map(sqr, SpecialIterable));
    assert_says_when(|| pool.map(sqr, SpecialIterable));
    // The pool is whole after them.
    assert_eq!(pool.map(sqr, 0..10).unwrap(), squares(10));
}

#[test]
fn test_async() {
    let pool = pool();
    // Python's TIMEOUT1 is 0.82 s; a tenth of it keeps the test fast.
    let wait = Duration::from_millis(82);
    let handle = pool.submit(sqr_wait, (7, wait.as_millis() as u64)).unwrap();
    let started = Instant::now();
    assert_eq!(handle.wait().unwrap(), 49);
    let elapsed = started.elapsed();
    assert!(elapsed >= wait - Duration::from_millis(10), "{elapsed:?}");
    assert!(elapsed < wait + Duration::from_secs(2), "{elapsed:?}");
}

#[test]
fn test_async_timeout() {
    let pool = Pool::new(3).unwrap();
    // Python's TIMEOUT2; the task runs far longer (TIMEOUT2 + SHORT_TIMEOUT).
    let timeout = Duration::from_millis(350);
    let mut handle = pool.submit(sqr_wait, (6, 30_000)).unwrap();
    let started = Instant::now();
    assert!(
        !handle.wait_timeout(timeout),
        "multiprocessing.TimeoutError"
    );
    let elapsed = started.elapsed();
    assert!(elapsed >= timeout, "{elapsed:?}");
    assert!(elapsed < timeout + Duration::from_secs(2), "{elapsed:?}");
    let started = Instant::now();
    pool.terminate();
    pool.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn test_imap() {
    let pool = pool();
    let all: Vec<i64> = pool
        .imap(sqr, (0..10).collect::<Vec<_>>())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(all, squares(10));

    let mut it = pool.imap(sqr, (0..10).collect::<Vec<_>>());
    for i in 0..10 {
        assert_eq!(it.next().unwrap().unwrap(), i * i);
    }
    assert!(it.next().is_none(), "StopIteration");

    let mut it = pool.imap(sqr, (0..1000).collect::<Vec<_>>()).chunksize(100);
    for i in 0..1000 {
        assert_eq!(it.next().unwrap().unwrap(), i * i);
    }
    assert!(it.next().is_none(), "StopIteration");
}

/// The next output of an imap, which must be there.
fn next_value(it: &mut impl Iterator<Item = Result<i64, PoolError>>) -> i64 {
    it.next().expect("an output").expect("a value")
}

#[test]
fn test_imap_handle_iterable_exception() {
    let pool = pool();
    // SayWhenError seen at the very first of the iterable.
    let mut it = pool
        .imap(sqr, exception_throwing_generator(1, -1))
        .chunksize(1);
    assert_says_when(|| it.next());
    // Again, make sure it's reentrant.
    let mut it = pool
        .imap(sqr, exception_throwing_generator(1, -1))
        .chunksize(1);
    assert_says_when(|| it.next());

    let mut it = pool
        .imap(sqr, exception_throwing_generator(10, 3))
        .chunksize(1);
    for i in 0..3 {
        assert_eq!(next_value(&mut it), i * i);
    }
    assert_says_when(|| it.next());

    // SayWhenError seen at start of problematic chunk's results.
    let mut it = pool
        .imap(sqr, exception_throwing_generator(20, 7))
        .chunksize(2);
    for i in 0..6 {
        assert_eq!(next_value(&mut it), i * i);
    }
    assert_says_when(|| it.next());
    let mut it = pool
        .imap(sqr, exception_throwing_generator(20, 7))
        .chunksize(4);
    for i in 0..4 {
        assert_eq!(next_value(&mut it), i * i);
    }
    assert_says_when(|| it.next());
}

#[test]
fn test_imap_unordered() {
    let pool = pool();
    let mut all: Vec<i64> = pool
        .imap_unordered(sqr, (0..10).collect::<Vec<_>>())
        .collect::<Result<_, _>>()
        .unwrap();
    all.sort();
    assert_eq!(all, squares(10));

    let mut all: Vec<i64> = pool
        .imap_unordered(sqr, (0..1000).collect::<Vec<_>>())
        .chunksize(100)
        .collect::<Result<_, _>>()
        .unwrap();
    all.sort();
    assert_eq!(all, squares(1000));
}

/// Takes outputs of `it` until it panics, each one of `expected` (taken
/// out of it), as Python's loop under `assertRaises(SayWhenError)`.
fn unordered_until_said_when(
    it: &mut impl Iterator<Item = Result<i64, PoolError>>,
    mut expected: Vec<i64>,
) {
    assert_says_when(|| {
        for _ in 0..expected.len() {
            let value = next_value(it);
            let at = expected.iter().position(|&e| e == value);
            expected.remove(at.unwrap_or_else(|| panic!("{value} not expected")));
        }
    });
}

#[test]
fn test_imap_unordered_handle_iterable_exception() {
    let pool = pool();
    // SayWhenError seen at the very first of the iterable.
    let mut it = pool
        .imap_unordered(sqr, exception_throwing_generator(1, -1))
        .chunksize(1);
    assert_says_when(|| it.next());
    // Again, make sure it's reentrant.
    let mut it = pool
        .imap_unordered(sqr, exception_throwing_generator(1, -1))
        .chunksize(1);
    assert_says_when(|| it.next());

    // imap_unordered makes it difficult to anticipate the SayWhenError.
    let mut it = pool
        .imap_unordered(sqr, exception_throwing_generator(10, 3))
        .chunksize(1);
    unordered_until_said_when(&mut it, squares(10));
    let mut it = pool
        .imap_unordered(sqr, exception_throwing_generator(20, 7))
        .chunksize(2);
    unordered_until_said_when(&mut it, squares(20));
}

#[test]
fn test_make_pool() {
    // Python: Pool(-1) and Pool(0) raise ValueError; -1 is no usize.
    let zero = Pool::new(0);
    assert!(zero.is_err(), "Pool::new(0) built {zero:?}");
    assert_eq!(
        zero.unwrap_err().to_string(),
        "processes must be at least 1, not 0"
    );
    let pool = Pool::new(3).unwrap();
    assert_eq!(pool.pids().len(), 3);
    pool.close();
    pool.join().unwrap();
}

#[test]
fn test_terminate() {
    // Simulate slow tasks which take "forever" to complete.
    let pool = Pool::builder().processes(3).chunksize(1).build().unwrap();
    let workers = pool.pids();
    let dir = Dir::new("terminate");
    let args = vec![(dir.0.clone(), 30_000); 10_000];
    let result = pool.map_async(sleep_ms, args).unwrap();
    // Every worker runs a task that takes "forever".
    let deadline = Instant::now() + HANG;
    while std::fs::read_dir(&dir.0).unwrap().count() < 3 {
        assert!(Instant::now() < deadline, "the tasks never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    let started = Instant::now();
    pool.terminate();
    pool.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_all_gone(&workers);
    // The map ends at once, with nothing finished.
    let stopped = within(move || result.wait()).unwrap_err();
    assert!(stopped.finished.is_empty(), "{stopped}");
    // The first input was running: it says it was stopped, not that it never ran.
    assert_eq!(
        stopped.error.to_string(),
        "task 0 stopped by terminate() before it finished"
    );
}

#[test]
fn test_empty_iterable() {
    // See Issue 12157.
    let pool = Pool::new(1).unwrap();
    assert!(pool.map(sqr, []).unwrap().is_empty());
    assert_eq!(pool.imap(sqr, []).count(), 0);
    assert_eq!(pool.imap_unordered(sqr, []).count(), 0);
    assert!(pool.map_async(sqr, []).unwrap().wait().unwrap().is_empty());
    pool.close();
    pool.join().unwrap();
}

#[test]
fn test_context() {
    let expected = squares(10);
    let workers = {
        let pool = Pool::new(2).unwrap();
        let r = pool.map_async(sqr, 0..10).unwrap();
        assert_eq!(r.wait().unwrap(), expected);
        pool.pids()
    };
    // The scope's end (`__exit__`) stopped and reaped the workers.
    assert_all_gone(&workers);
    // What is left of a pool after `__exit__` (its terminate) takes no work.
    let pool = Pool::new(2).unwrap();
    pool.terminate();
    pool.join().unwrap();
    assert!(matches!(pool.map_async(sqr, 0..10), Err(PoolError::Closed)));
}

#[test]
fn test_traceback() {
    // The child's traceback is in the error the caller gets: the panic's
    // message and where in this file it was raised.
    let error = {
        let pool = Pool::new(1).unwrap();
        pool.apply(test_traceback_task, ()).unwrap_err()
    };
    let PoolError::Task {
        error: TaskError::Panicked { message, location },
        ..
    } = &error
    else {
        panic!("expected RuntimeError: {error:?}");
    };
    assert_eq!(message, "RuntimeError(123)");
    let location = location.as_deref().expect("the panic's location");
    assert!(
        location.starts_with(&format!("tests/cpython_pool.rs:{TRACEBACK_LINE}:")),
        "{location}"
    );
    assert!(error.to_string().contains(location), "{error}");

    // The input iterator's panic is not made a remote error: it is the
    // caller's own panic, with its own payload.
    let pool = Pool::new(1).unwrap();
    assert_says_when(|| pool.map(sqr, exception_throwing_generator(1, -1)));
}

#[test]
fn test_wrapped_exception() {
    // Issue #20980: the task's own error, not a wrapper of it.
    let error = {
        let pool = Pool::new(1).unwrap();
        pool.apply(test_wrapped_exception_task, ()).unwrap_err()
    };
    assert!(
        matches!(
            &error,
            PoolError::Task { index: 0, error: TaskError::Failed { message } } if message == "foo"
        ),
        "{error:?}"
    );
}

#[test]
fn test_map_no_failfast() {
    // Issue #23992: an exception in map() made join() deadlock, a worker
    // filling the result queue after the result handler stopped draining it.
    // Python's map raises at the first failure and join then waits for the
    // second task; procpool's map also returns at the first failure, and
    // abandons the rest (its worker's late 1 MiB reply is dropped, or the
    // worker replaced), so join has nothing of it to wait for: what is
    // checked is that the large error arrives whole and join returns.
    let pool = pool();
    let dir = Dir::new("no-failfast");
    let started = Instant::now();
    let failed = pool
        .map(
            raise_large_valuerror,
            [(dir.0.clone(), 0), (dir.0.clone(), 300)],
        )
        .unwrap_err();
    let PoolError::Task {
        index: 0,
        error: TaskError::Failed { message },
    } = &failed.error
    else {
        panic!("{:?}", failed.error);
    };
    assert_eq!(message.len(), LARGE);
    assert!(message.bytes().all(|b| b == b'x'));
    // Python's time.sleep(0.5), long enough for the second task to end:
    // here, until it notes its end (its reply is late) or its worker is gone
    // (replaced), then close and join.
    let worker = || {
        std::fs::read_to_string(dir.0.join("started-300"))
            .ok()
            .and_then(|pid| pid.parse::<u32>().ok())
    };
    let deadline = Instant::now() + HANG;
    while !(dir.0.join("ended-300").exists() || worker().is_some_and(gone)) {
        assert!(
            Instant::now() < deadline,
            "the second task neither ended nor lost its worker"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let workers = pool.pids();
    pool.close();
    within(move || pool.join()).unwrap();
    assert_all_gone(&workers);
    assert!(started.elapsed() < HANG);
}

#[test]
fn test_release_task_refs() {
    // Issue #29861: task arguments and results should not be kept alive
    // after we are done with them.
    let pool = pool();
    let objs: Vec<Counted> = (0..10).map(|_| Counted::new()).collect();
    assert_eq!(COUNTED.load(Ordering::SeqCst), 10);
    let copies = pool.map(identity, objs).unwrap();
    // The inputs are gone; the copies the workers sent back are the 10.
    assert_eq!(COUNTED.load(Ordering::SeqCst), 10);
    drop(copies);
    assert_eq!(COUNTED.load(Ordering::SeqCst), 0);
}

#[test]
fn test_enter() {
    let pool = Pool::new(1).unwrap();
    // `with pool: pass` calls terminate.
    pool.terminate();
    // bpo-35477: the pool is no longer running, and says so.
    assert!(matches!(pool.submit(sqr, 1), Err(PoolError::Closed)));
    pool.join().unwrap();
}

#[test]
fn test_resource_warning() {
    // Python warns of an unclosed running pool when it is collected; a
    // dropped pool needs no warning: its workers are killed and reaped.
    let pool = Pool::new(1).unwrap();
    let workers = pool.pids();
    assert_eq!(workers.len(), 1);
    drop(pool);
    assert_all_gone(&workers);
}

/// Checks that `error` is Python's `MaybeEncodingError` for
/// `unpickleable_result`: the result, not the input, cannot be sent, and why.
fn assert_result_unpicklable(error: &PoolError) {
    let PoolError::Task { index: 0, error } = error else {
        panic!("{error:?}");
    };
    let message = error.to_string();
    assert!(
        message.contains("output") && message.contains("cannot pickle"),
        "{message}"
    );
    assert!(!message.contains("input"), "{message}");
}

#[test]
fn test_unpickleable_result() {
    // Make sure we don't lose pool processes because of encoding errors.
    let pool = pool();
    let workers = pool.pids();
    for _ in 0..20 {
        // Python's res.get() and its error_callback, for one task each.
        assert_result_unpicklable(&pool.apply(unpickleable_result, ()).unwrap_err());
        let (errback, scratchpad) = mpsc::channel();
        let res = pool.submit(unpickleable_result, ()).unwrap();
        res.on_done(move |result| errback.send(result).unwrap());
        let wrapped = scratchpad.recv_timeout(HANG).expect("the callback ran");
        assert_result_unpicklable(&wrapped.unwrap_err());
    }
    assert_eq!(pool.pids(), workers);
    assert_eq!(pool.apply(sqr, 4).unwrap(), 16);
    pool.close();
    pool.join().unwrap();
}

#[test]
fn test_async_error_callback() {
    let pool = pool();
    let (errback, scratchpad) = mpsc::channel();
    let res = pool.submit(raising, ()).unwrap();
    res.on_done(move |result| errback.send(result).unwrap());
    let exc = scratchpad
        .recv_timeout(HANG)
        .expect("the error callback ran");
    // Python's KeyError("key").
    assert!(
        matches!(
            &exc,
            Err(PoolError::Task { index: 0, error: TaskError::Failed { message } })
                if message == "KeyError: 'key'"
        ),
        "{exc:?}"
    );
    // res.get() raises it too.
    assert!(matches!(
        pool.apply(raising, ()),
        Err(PoolError::Task {
            index: 0,
            error: TaskError::Failed { .. }
        })
    ));
    pool.close();
    pool.join().unwrap();
}

#[test]
fn test_pool_worker_lifetime() {
    let pool = Pool::builder()
        .processes(3)
        .max_tasks_per_child(10)
        .build()
        .unwrap();
    let orig = pool.pids();
    assert_eq!(orig.len(), 3);
    // Run many tasks so each worker gets replaced.
    let results: Vec<_> = (0..100).map(|i| pool.submit(sqr, i).unwrap()).collect();
    let mut ran_on = std::collections::BTreeSet::new();
    for (j, res) in (0..).zip(results) {
        let outcome = res.wait_outcome().unwrap();
        assert_eq!(outcome.result, Ok(j * j));
        ran_on.insert(outcome.pid);
    }
    // 100 tasks at 10 a worker: at least 10 workers ran them.
    assert!(ran_on.len() >= 10, "{ran_on:?}");
    let last = pool.pids();
    assert_eq!(last.len(), 3, "all pids assigned: {last:?}");
    assert_ne!(orig, last);
    pool.close();
    pool.join().unwrap();
}

#[test]
fn test_pool_worker_lifetime_early_close() {
    // Issue #10332: closing a pool whose workers have limited lifetimes
    // before all the tasks completed would make join() hang.
    let pool = Pool::builder()
        .processes(3)
        .max_tasks_per_child(1)
        .build()
        .unwrap();
    let results: Vec<_> = (0..6)
        .map(|i| pool.submit(sqr_wait, (i, 50)).unwrap())
        .collect();
    pool.close();
    let pool = std::sync::Arc::new(pool);
    within({
        let pool = std::sync::Arc::clone(&pool);
        move || pool.join()
    })
    .unwrap();
    for (j, res) in (0..).zip(results) {
        assert_eq!(res.wait().unwrap(), j * j);
    }
}

#[test]
fn test_pool_maxtasksperchild_invalid() {
    // Python: 0, -1, 0.5 and "12" raise ValueError; only 0 is a u64.
    let zero = Pool::builder().processes(3).max_tasks_per_child(0).build();
    assert!(zero.is_err(), "max_tasks_per_child(0) built {zero:?}");
    assert_eq!(
        zero.unwrap_err().to_string(),
        "max_tasks_per_child must be at least 1, not 0"
    );
}

/// Set in the harness run again by
/// [`test_worker_finalization_via_atexit_handler_of_multiprocessing`].
const ATEXIT_CHILD: &str = "PROCPOOL_CPYTHON_ATEXIT_CHILD";

#[test]
fn test_worker_finalization_via_atexit_handler_of_multiprocessing() {
    // bpo-38744 and bpo-39360: a pool held by a global at exit. The harness
    // runs this test again as a program of its own (the child), which keeps
    // a pool in a static that is never dropped, maps, and exits.
    const NAME: &str = "test_worker_finalization_via_atexit_handler_of_multiprocessing";
    if std::env::var_os(ATEXIT_CHILD).is_some() {
        static PROBLEM: std::sync::OnceLock<Pool> = std::sync::OnceLock::new();
        let pool = PROBLEM.get_or_init(|| Pool::new(1).unwrap());
        let floats: Vec<i64> = pool.map(sqr, 0..10).unwrap();
        assert_eq!(floats, squares(10));
        println!("workers: {:?}", pool.pids());
        return;
    }
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(ATEXIT_CHILD, "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = within(move || child.wait_with_output()).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| Some(l.split_once("workers: ")?.1))
        .unwrap_or_else(|| panic!("the child ran its pool: {stdout}"));
    let workers: Vec<u32> = line
        .trim_matches(['[', ']'])
        .split(", ")
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(workers.len(), 1, "{line}");
    // Its worker went with it.
    assert_all_gone(&workers);
}

/// Python's `initializer(ns)`: `ns.test += 1`, as a line in the file.
#[procpool::initializer]
fn count_start(log: PathBuf) -> Result<(), String> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .map_err(|e| e.to_string())?;
    writeln!(file, "{}", std::process::id()).map_err(|e| e.to_string())
}

#[test]
fn test_pool_initializer() {
    let dir = Dir::new("initializer");
    let log = dir.0.join("ns.test");
    let pool = Pool::builder()
        .processes(1)
        .initializer(count_start, log.clone())
        .build()
        .unwrap();
    let workers = pool.pids();
    pool.close();
    pool.join().unwrap();
    let ran: Vec<u32> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(ran, workers, "ns.test == 1, in the pool's worker");
}

/// Python's `FailingForkProcess`: each worker takes the first free slot in
/// `dir`, a file named by its number holding the worker's PID (linked in
/// whole, so a slot is never seen empty); the one that gets slot
/// `fail_from` or later fails its start.
#[procpool::initializer]
fn start_or_fail(dir: PathBuf, fail_from: usize) -> Result<(), String> {
    let me = std::process::id();
    let mine = dir.join(format!("pid-{me}"));
    std::fs::write(&mine, me.to_string()).map_err(|e| e.to_string())?;
    for slot in 0.. {
        match std::fs::hard_link(&mine, dir.join(slot.to_string())) {
            Ok(()) if slot < fail_from => return Ok(()),
            Ok(()) => return Err("Manually induced OSError".to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    unreachable!("there is always a free slot")
}

#[test]
fn test_release_unused_processes() {
    // Issue #19675: during pool creation, if we can't create a process,
    // don't leak already created ones.
    let dir = Dir::new("release");
    let error = Pool::builder()
        .processes(5)
        .initializer(start_or_fail, (dir.0.clone(), 3))
        .build()
        .unwrap_err();
    assert!(
        matches!(&error, PoolError::Initializer { message, .. } if message == "Manually induced OSError"),
        "{error:?}"
    );
    let started: Vec<u32> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .parse::<u32>()
                .is_ok()
        })
        .map(|slot| std::fs::read_to_string(slot).unwrap().parse().unwrap())
        .collect();
    assert!(started.len() >= 4, "the fourth start failed: {started:?}");
    // build() returned with no worker left running.
    assert!(started.iter().all(|&p| gone(p)), "{started:?} left running");
}
