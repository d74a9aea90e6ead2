//! Progress bars over a pool, two ways: indicatif's `.progress()` on an
//! `imap` (its length is exact, so the bar shows the total; `.try_progress()`
//! for inputs such as an `i64` range, which std does not call exact), and the
//! builder's `on_progress` callback driving a bar for a whole `map`. The bars
//! draw on stderr when it is a terminal and stay hidden otherwise.
//!
//! `cargo run --example progress -- [N]` (default 20,000 inputs)

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressIterator, ProgressStyle};
use procpool::Pool;

/// `x * x`, run by the workers (this same program, see `main`).
#[procpool::task]
fn square(x: i64) -> Result<i64, String> {
    x.checked_mul(x)
        .ok_or_else(|| format!("{x} squared overflows"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    procpool::init();
    let n: i64 = std::env::args().nth(1).map_or(Ok(20_000), |a| a.parse())?;
    let style = ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} ETA {eta}")?;

    // 1. The tqdm way: wrap the lazy iterator.
    let pool = Pool::builder().processes(2).chunksize(100).build()?;
    let inputs: Vec<i64> = (0..n).collect();
    let results = pool.imap(square, inputs);
    assert_eq!(results.len(), n as usize, "imap knows its length");
    let mut sum: i128 = 0;
    for value in results.progress_with_style(style.clone()) {
        sum += i128::from(value?);
    }
    // An `i64` range knows its length too, through its size hint.
    let results = pool.imap_unordered(square, 0..n).try_progress();
    let bar = results.expect("a range has a length");
    let again: i128 = bar
        .map(|value| value.map(i128::from))
        .sum::<Result<_, procpool::PoolError>>()?;
    assert_eq!(again, sum);
    drop(pool);

    // 2. A callback on the builder, for calls that return at the end (`map`).
    let bar = Arc::new(ProgressBar::new(0).with_style(style));
    let shown = Arc::clone(&bar);
    let pool = Pool::builder()
        .processes(2)
        .on_progress(move |p| {
            shown.set_length(p.total.unwrap_or(p.done));
            shown.set_position(p.done);
        })
        .build()?;
    let squares = pool.map(square, 0..n)?;
    bar.finish_and_clear();
    assert_eq!(bar.position(), n as u64, "the callback saw every result");
    assert_eq!(squares.iter().map(|&s| i128::from(s)).sum::<i128>(), sum);

    println!("sum of the squares below {n}: {sum}");
    Ok(())
}
