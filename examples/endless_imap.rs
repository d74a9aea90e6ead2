//! Streams `square` over N integers (default 10 million) through `imap` and
//! prints the supervisor's resident memory along the way: it stays flat,
//! because `imap` reads its input only as results are taken.
//!
//! `cargo run --release --example endless_imap -- [N]`

use procpool::Pool;

/// `x * x`, run by the workers (this same program, see `main`).
#[procpool::task]
fn square(x: i64) -> Result<i64, String> {
    x.checked_mul(x)
        .ok_or_else(|| format!("{x} squared overflows"))
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    procpool::init();
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(Ok(10_000_000), |a| a.parse())?;
    let pool = Pool::builder().processes(2).chunksize(1000).build()?;
    let start_rss = rss_kib("VmRSS:");
    let mut checksum: i128 = 0;
    let mut count = 0u64;
    // An endless iterator, cut by take() only on the consuming side.
    for outcome in pool.imap(square, 0i64..).outcomes().take(n as usize) {
        let outcome = outcome?;
        assert_eq!(outcome.index, count, "results come in input order");
        checksum += outcome.result? as i128;
        count += 1;
        if count.is_multiple_of((n / 5).max(1)) {
            println!("items {count:>10}  rss {:>7} KiB", rss_kib("VmRSS:"));
        }
    }
    let expected: i128 = (0..n as i128).map(|x| x * x).sum();
    assert_eq!(checksum, expected);
    println!(
        "done: {count} items, start rss {start_rss} KiB, peak rss {} KiB, growth {} KiB",
        rss_kib("VmHWM:"),
        rss_kib("VmHWM:").saturating_sub(start_rss)
    );
    Ok(())
}
