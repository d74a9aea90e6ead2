//! The smallest whole program on procpool: start 2 workers, get one result,
//! print it, exit. `bench/run` times it from exec to exit against the same
//! program on procspawn (its `program` row).
//!
//! ```text
//! cargo run --release --example first_result
//! ```

use procpool::{Failure, Pool, Registry, Task};

/// `x * x`, run by the workers (this same program, see `main`).
struct Square;
impl Task for Square {
    const NAME: &'static str = "square";
    type Input = i64;
    type Output = i64;
    fn run(x: i64) -> Result<i64, Failure> {
        x.checked_mul(x)
            .ok_or_else(|| Failure::msg(format!("{x} squared overflows")))
    }
}

fn main() -> Result<(), procpool::PoolError> {
    procpool::serve_if_requested(&Registry::new().register::<Square>());
    let pool = Pool::new(2)?;
    let outcome = pool.apply(Square, 3)?;
    println!("{}", outcome.into_result()?);
    Ok(())
}
