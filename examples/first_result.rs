//! The smallest whole program on procpool: start 2 workers, get one result,
//! print it, exit. `bench/run` times it from exec to exit against the same
//! program on procspawn (its `program` row).
//!
//! ```text
//! cargo run --release --example first_result
//! ```

use procpool::Pool;

/// `x * x`, run by the workers (this same program, see `main`).
#[procpool::task]
fn square(x: i64) -> Result<i64, String> {
    x.checked_mul(x)
        .ok_or_else(|| format!("{x} squared overflows"))
}

fn main() -> Result<(), procpool::PoolError> {
    procpool::init();
    let pool = Pool::new(2)?;
    println!("{}", pool.apply(square, 3)?);
    Ok(())
}
