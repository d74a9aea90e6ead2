//! A program that uses the library the wrong ways, for tests/misuse.rs:
//! `HOSTILE=MODE procpool-hostile`, where MODE is
//!
//! - `forget-init`: builds a pool without calling `procpool::init` (each
//!   worker would be the whole program again, building pools of its own);
//! - `late-init`: builds a pool first and calls `procpool::init` after;
//! - `banner`: prints a banner on stdout before `procpool::init`;
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
