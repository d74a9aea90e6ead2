//! Measures how long after a worker's death its task runs again elsewhere:
//! a task is started, its worker is SIGKILLed, and the retry's completion
//! time minus the retry's own run time is the detection + re-dispatch latency.
//!
//! `cargo run --release --example redispatch_latency -- [REPEATS]`

use std::time::{Duration, Instant};

use procpool::Pool;

/// Sleeps for its input in milliseconds.
#[procpool::task]
fn sleep(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    procpool::init();
    let repeats: usize = std::env::args().nth(1).map_or(Ok(15), |a| a.parse())?;
    let pool = Pool::builder()
        .processes(2)
        .retries(1)
        .chunksize(1)
        .build()?;
    let mut latencies = Vec::new();
    for _ in 0..repeats {
        let handle = pool.submit(sleep, 100)?;
        // The task goes to one of the two workers; kill both candidates' chance
        // by killing whichever is running it: the one whose CPU state shows it sleeping.
        std::thread::sleep(Duration::from_millis(30));
        let victim = pool.pids().into_iter().find(|&p| is_sleeping_in_task(p));
        let Some(victim) = victim else { continue };
        // SAFETY: kill(2) has no memory effects; victim is our own worker.
        if unsafe { libc::kill(victim as libc::pid_t, libc::SIGKILL) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let killed = Instant::now();
        let outcome = handle.wait_outcome()?;
        if outcome.attempts == 2 && outcome.result.is_ok() {
            latencies.push(killed.elapsed().saturating_sub(outcome.elapsed()));
        }
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "re-dispatch after a worker's death: median {:.2} ms, min {:.2} ms, max {:.2} ms over {} kills",
        ms(latencies[latencies.len() / 2]),
        ms(latencies[0]),
        ms(latencies[latencies.len() - 1]),
        latencies.len()
    );
    Ok(())
}

/// A worker running `sleep` sits in nanosleep: its wchan says so.
fn is_sleeping_in_task(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).is_ok_and(|w| w.contains("nanosleep"))
}
