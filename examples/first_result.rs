//! The smallest whole program on procpool: start 2 workers, get one result,
//! print it, exit. `bench/run` times it from exec to exit against the same
//! program on procspawn (its `program` row).
//!
//! ```text
//! cargo run --release --example first_result
//! ```

use procpool::tasks::Square;
use procpool::{Pool, Registry};

fn main() -> Result<(), procpool::PoolError> {
    procpool::serve_if_requested(&Registry::new().register::<Square>());
    let pool = Pool::new(2)?;
    let outcome = pool.apply(Square, 3)?;
    println!("{}", outcome.into_result()?);
    Ok(())
}
