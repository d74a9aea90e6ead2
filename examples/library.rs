//! The library guide's example (docs/library.md; the README shows its first
//! part): a program that is its own worker.
//!
//! `cargo run --example library`

use procpool::Pool;

#[procpool::task]
fn square(x: i64) -> i64 {
    x * x
}

fn main() -> Result<(), procpool::PoolError> {
    // A worker is this same program, started again: this line serves tasks
    // and exits when the program runs as a worker.
    procpool::init();

    let pool = Pool::builder().processes(4).retries(1).build()?;
    for outcome in pool.map_outcomes(square, 0..6)? {
        println!(
            "{} -> {:?} on {}",
            outcome.index, outcome.result, outcome.pid
        );
    }
    // Lazy and bounded, in input order or as completed:
    let total: i64 = pool.imap(square, 0..1_000_000).map(Result::unwrap).sum();
    println!("sum of squares below 1,000,000: {total}");
    let first_done = pool.imap_unordered(square, [5, 6, 7]).outcomes().next();
    println!("first done: {:?}", first_done.map(|o| o.map(|o| o.index)));
    // One task, like apply_async:
    let handle = pool.submit(square, 12)?;
    assert_eq!(handle.wait()?, 144);
    Ok(())
}
