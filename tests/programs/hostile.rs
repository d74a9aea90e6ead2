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
//! - anything else (or none): a well-behaved worker program.
//!
//! Its tasks: `double` (`u8 -> u8`, a stale worker program for a supervisor
//! whose `double` takes an `i64`), `nested` (a task that builds a pool of its
//! own on purpose) and `square`.

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

/// Sleeps `ms` milliseconds; a long sleep first says it started.
#[procpool::task(name = "slow")]
fn slow(ms: u64) -> u64 {
    if ms > 1000 {
        let dir = std::env::var("HOSTILE_DIR").unwrap_or_default();
        let _ = std::fs::write(std::path::Path::new(&dir).join("started"), "");
    }
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
        .in_flight(1)
        .interrupt_flag(flag)
        .build()?;
    let stopped = match pool.map(slow, [1, 1, 1, 60_000]) {
        Ok(_) => return Ok(()),
        Err(stopped) => stopped,
    };
    println!("finished {:?}", stopped.finished);
    Err(stopped.error)
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
