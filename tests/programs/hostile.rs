//! A program that uses the library the wrong ways, for tests/misuse.rs:
//! `HOSTILE=MODE procpool-hostile`, where MODE is
//!
//! - `forget-init`: builds a pool without calling `procpool::init` (each
//!   worker would be the whole program again, building pools of its own);
//! - `late-init`: builds a pool first and calls `procpool::init` after;
//! - `banner`: prints a banner on stdout before `procpool::init`;
//! - `own-sigint`: installs a SIGINT handler of its own that stops its pool
//!   (`interrupt_flag`), maps `slow` over `[1, 1, 1, 60000]` (the last
//!   creates `$HOSTILE_DIR/started`), and prints how many finished;
//! - `fork-returns`: a task forks, and the child returns from the task too;
//! - `fork-lingers`: a task forks a child that sleeps for two minutes;
//! - `fork-exits`: a task forks such a child, then its worker exits (7);
//! - `close-std`: a task closes its stdin and stdout;
//! - `cwd-umask`: tasks change directory and umask;
//! - `signals`: a task ignores SIGTERM, blocks every signal and sleeps, under
//!   a timeout;
//! - `iter-panics`: `map` and `imap` over inputs whose iterator panics midway;
//! - `panic-midway`: the program panics with a pool running a long task;
//! - `thousand`: a thousand pools built, used and dropped;
//! - anything else (or none): a well-behaved worker program.
//!
//! Each mode prints what it got on stdout, one line a result. Its tasks:
//! `double` (`u8 -> u8`, a stale worker program for a supervisor whose
//! `double` takes an `i64`), `nested` (a task that builds a pool of its own
//! on purpose), `square`, and one for each mode above.

use procpool::Pool;

/// Twice `x`, on bytes.
#[procpool::task(name = "double")]
fn double(x: u8) -> u8 {
    x.wrapping_mul(2)
}

/// `x * x`.
#[procpool::task(name = "hostile-square")]
fn square(x: i64) -> i64 {
    x * x
}

/// The sum of the squares below `n`, from a pool this task builds.
#[procpool::task(name = "nested")]
fn nested(n: i64) -> Result<i64, procpool::PoolError> {
    let pool = Pool::new(2)?;
    Ok(pool.map(square, 0..n)?.iter().sum())
}

/// Sleeps `ms` milliseconds; a long sleep first says it started, in
/// `$HOSTILE_DIR/started` if that is set.
#[procpool::task(name = "slow")]
fn slow(ms: u64) -> u64 {
    if ms > 1000
        && let Some(dir) = std::env::var_os("HOSTILE_DIR")
    {
        let _ = std::fs::write(std::path::Path::new(&dir).join("started"), "");
    }
    std::thread::sleep(std::time::Duration::from_millis(ms));
    ms
}

/// Forks; the child returns `x + 100` from the task as well.
#[procpool::task]
fn fork_returns(x: i64) -> i64 {
    // SAFETY: the worker runs one task at a time on this thread; the child
    // only returns from the task (what a careless task does).
    match unsafe { libc::fork() } {
        0 => x + 100,
        _ => x,
    }
}

/// Forks a child that sleeps for two minutes; the worker exits with 7 when
/// `exit` is set.
#[procpool::task]
fn fork_sleeper(x: i64, exit: bool) -> i64 {
    // SAFETY: the child only sleeps and exits.
    if unsafe { libc::fork() } == 0 {
        std::thread::sleep(std::time::Duration::from_secs(120));
        // SAFETY: the child leaves at once, running nothing of the parent's.
        unsafe { libc::_exit(0) }
    }
    if exit {
        std::process::exit(7);
    }
    x
}

/// Closes the worker's stdin and stdout, then returns `x`.
#[procpool::task]
fn close_std(x: i64) -> i64 {
    // SAFETY: closing descriptors 0 and 1 is what is tried here; nothing of
    // this task uses them after.
    unsafe {
        libc::close(0);
        libc::close(1);
    }
    x
}

/// The working directory and umask this task found, after which it moves
/// to `to` and sets umask `mask`.
#[procpool::task]
fn cwd_umask(to: String, mask: u32) -> (String, u32) {
    let cwd = std::env::current_dir().unwrap().display().to_string();
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    std::env::set_current_dir(to).unwrap();
    (cwd, old.bits())
}

/// Ignores SIGTERM, blocks every signal and sleeps `ms` milliseconds.
#[procpool::task]
fn deaf(ms: u64) -> u64 {
    use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
    // SAFETY: ignoring a signal installs no handler.
    let _ = unsafe { signal(Signal::SIGTERM, SigHandler::SigIgn) };
    let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), None);
    std::thread::sleep(std::time::Duration::from_millis(ms));
    ms
}

/// A program with a SIGINT handler of its own, which stops its pool.
fn own_sigint() -> Result<(), procpool::PoolError> {
    let flag = procpool::signal::InterruptFlag::new();
    let raised = flag.clone();
    // SAFETY: the handler only stores a number (an atomic store).
    let registered = unsafe {
        signal_hook::low_level::register(libc::SIGINT, move || raised.raise(libc::SIGINT))
    };
    registered.map_err(|e| procpool::PoolError::Os {
        what: "cannot handle SIGINT".into(),
        source: e,
    })?;
    let pool = Pool::builder()
        .processes(1)
        .chunksize(1)
        .window(1)
        .interrupt_flag(flag)
        .build()?;
    let stopped = match pool.map(slow, [1, 1, 1, 60_000]) {
        Ok(_) => return Ok(()),
        Err(stopped) => stopped,
    };
    println!("finished {:?}", stopped.finished);
    Err(stopped.error)
}

/// Maps `fork_returns` over `[1, 2, 3]` on one worker.
fn fork_returns_mode() -> Result<(), procpool::PoolError> {
    let pool = Pool::builder().processes(1).chunksize(1).build()?;
    println!("{:?}", pool.map(fork_returns, [1, 2, 3])?);
    Ok(())
}

/// Forks sleepers from tasks (one of which exits its worker); prints each
/// outcome.
fn fork_sleepers(exit_on: i64) -> Result<(), procpool::PoolError> {
    let pool = Pool::builder().processes(2).chunksize(1).build()?;
    let inputs = (1..=4).map(|x| (x, x == exit_on));
    for outcome in pool.map_outcomes(fork_sleeper, inputs)? {
        match outcome.result {
            Ok(x) => println!("{x}"),
            Err(e) => println!("input {}: {e}", outcome.index),
        }
    }
    Ok(())
}

/// Runs `close_std` and then more tasks on the same worker.
fn close_std_mode() -> Result<(), procpool::PoolError> {
    let pool = Pool::builder().processes(1).chunksize(1).build()?;
    let pid = pool.pids();
    let closed = pool.apply(close_std, 5)?;
    let after = pool.map(square, [2, 3])?;
    println!("{closed} {after:?} same worker: {}", pool.pids() == pid);
    Ok(())
}

/// Three `cwd_umask` tasks on one worker replaced after two tasks.
fn cwd_umask_mode() -> Result<(), procpool::PoolError> {
    let pool = Pool::builder()
        .processes(1)
        .chunksize(1)
        .max_tasks_per_child(2)
        .build()?;
    let here = std::env::current_dir().unwrap().display().to_string();
    for (to, mask) in [("/", 0o077), ("/tmp", 0o027), ("/", 0o022)] {
        let (cwd, old) = pool.apply(cwd_umask, (to.to_string(), mask))?;
        println!("{} {old:o}", if cwd == here { "start" } else { &cwd });
    }
    let still = std::env::current_dir().unwrap().display().to_string() == here;
    println!("supervisor unmoved: {still}");
    Ok(())
}

/// `deaf` under a 300 ms timeout, then a task on the replacement.
fn deaf_mode() -> Result<(), procpool::PoolError> {
    let pool = Pool::builder()
        .processes(1)
        .timeout(std::time::Duration::from_millis(300))
        .grace(std::time::Duration::from_millis(100))
        .build()?;
    let started = std::time::Instant::now();
    match pool.apply(deaf, 60_000) {
        Ok(ms) => println!("slept {ms}"),
        Err(e) => println!("{e}"),
    }
    println!("then {}", pool.apply(deaf, 1)?);
    println!("within 5 s: {}", started.elapsed().as_secs() < 5);
    Ok(())
}

/// Inputs 0, 1, 2, then a panic.
fn panicking_inputs() -> impl Iterator<Item = i64> {
    (0..10).map(|x| {
        if x == 3 {
            panic!("the inputs ran out midway")
        } else {
            x
        }
    })
}

/// `map` and `imap` over inputs whose iterator panics, each caught; the
/// pool is used again after each.
fn iter_panics_mode() -> Result<(), procpool::PoolError> {
    let pool = Pool::new(2)?;
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mapped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.map(square, panicking_inputs())
    }));
    println!("map panicked: {}", mapped.is_err());
    println!("{:?}", pool.map(square, 0..3)?);
    let mut seen = Vec::new();
    let imapped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for outcome in pool.imap(square, panicking_inputs()) {
            seen.push(outcome.unwrap());
        }
    }));
    std::panic::set_hook(quiet);
    println!("imap panicked: {} after {seen:?}", imapped.is_err());
    println!("{:?}", pool.map(square, 3..6)?);
    Ok(())
}

/// Panics with a pool running a one-minute task.
fn panic_midway() -> Result<(), procpool::PoolError> {
    // Default settings: the map runs beside the long task, never behind it.
    let pool = Pool::new(2)?;
    let _running = pool.submit(slow, 60_000)?;
    println!("{:?}", pool.map(square, 0..3)?);
    panic!("the program panicked midway");
}

/// The descriptors this process has open, and the entries of /dev/shm.
fn held() -> (usize, usize) {
    let count = |dir| std::fs::read_dir(dir).map_or(0, Iterator::count);
    (count("/proc/self/fd"), count("/dev/shm"))
}

/// A thousand pools, each built, used and dropped.
fn thousand() -> Result<(), procpool::PoolError> {
    let before = held();
    for n in 0..1000 {
        let pool = Pool::new(1)?;
        assert_eq!(pool.apply(square, n)?, n * n);
    }
    let after = held();
    println!(
        "descriptors {} -> {}, /dev/shm {} -> {}",
        before.0, after.0, before.1, after.1
    );
    Ok(())
}

fn map_squares() -> Result<(), procpool::PoolError> {
    let pool = Pool::new(2)?;
    println!("{:?}", pool.map(square, 0..4)?);
    Ok(())
}

fn main() -> std::process::ExitCode {
    let mode = std::env::var("HOSTILE").unwrap_or_default();
    let result = match mode.as_str() {
        "forget-init" => map_squares(),
        "late-init" => {
            let result = map_squares();
            procpool::init();
            result
        }
        "own-sigint" => {
            procpool::init();
            own_sigint()
        }
        "fork-returns" | "fork-lingers" | "fork-exits" | "close-std" | "cwd-umask" | "signals"
        | "iter-panics" | "panic-midway" | "thousand" => {
            procpool::init();
            match mode.as_str() {
                "fork-returns" => fork_returns_mode(),
                "fork-lingers" => fork_sleepers(0),
                "fork-exits" => fork_sleepers(2),
                "close-std" => close_std_mode(),
                "cwd-umask" => cwd_umask_mode(),
                "signals" => deaf_mode(),
                "iter-panics" => iter_panics_mode(),
                "panic-midway" => panic_midway(),
                _ => thousand(),
            }
        }
        "banner" => {
            println!("hostile 1.0, starting");
            procpool::init();
            map_squares()
        }
        _ => {
            procpool::init();
            map_squares()
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hostile: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
