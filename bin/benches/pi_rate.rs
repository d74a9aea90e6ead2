//! Samples per second of `procpool pi`'s kernel: each compiled kernel on one
//! core, then the whole pool (one worker per core, tasks over the pipe), next
//! to numpy's vectorised rate and the tutorial's per-sample Python loop
//! measured in the same run by `bench/pi_numpy.py`. Medians of several runs.
//!
//!     cargo bench --bench pi_rate
//!
//! `PI_BENCH_SAMPLES` (default 200,000,000) sets the samples per timed run,
//! `PI_BENCH_REPEATS` (default 7) the runs per row.

use std::process::Command;
use std::time::Instant;

use procpool::Pool;
use procpool_cli::pi::{Experiment, Kernel, count_inside_with};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Median, min and max of `samples / time` over `repeats` timed runs after
/// one untimed warm-up.
fn rates(samples: u64, repeats: u64, mut run: impl FnMut(u64)) -> [f64; 3] {
    run(u64::MAX);
    let mut rates: Vec<f64> = (0..repeats)
        .map(|i| {
            let start = Instant::now();
            run(i);
            samples as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    [rates[rates.len() / 2], rates[0], rates[rates.len() - 1]]
}

fn row(name: &str, [median, min, max]: [f64; 3], per: &str) {
    println!(
        "{name:<34}{:>10.1}{:>10.1}{:>10.1}  M samples/s{per}",
        median / 1e6,
        min / 1e6,
        max / 1e6
    );
}

fn main() {
    let samples = env_or("PI_BENCH_SAMPLES", 200_000_000);
    let repeats = env_or("PI_BENCH_REPEATS", 7).max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "pi kernel: {samples} samples per run, median of {repeats} runs, {cores} cores \
         (a shared machine: other work may be running)"
    );
    println!("{:<34}{:>10}{:>10}{:>10}", "", "median", "min", "max");

    for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
        let r = rates(samples, repeats, |seed| {
            std::hint::black_box(count_inside_with(kernel, seed, samples));
        });
        let best = if kernel == Kernel::best() {
            ", used"
        } else {
            ""
        };
        row(&format!("rust {} kernel, 1 core", kernel.name()), r, best);
    }

    // The whole path: one task per seed on a pool of one worker per core.
    let pool = Pool::builder()
        .processes(cores)
        .tune_allocator(true)
        .worker_program(env!("CARGO_BIN_EXE_procpool"))
        .build()
        .expect("the pool starts");
    let seeds = 2 * cores as u64;
    let per_seed = samples / 2;
    let r = rates(seeds * per_seed, repeats, |i| {
        let start = (i % 1_000_000) * seeds;
        let experiment = Experiment::new(start..start + seeds, per_seed).unwrap();
        std::hint::black_box(experiment.run_on(&pool).expect("the map runs"));
    });
    row(&format!("rust pool of {cores}, all cores"), r, "");
    row(
        &format!("rust pool of {cores}, per core"),
        r.map(|x| x / cores as f64),
        "",
    );
    drop(pool);

    // Python in the same run, for comparison.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/pi_numpy.py");
    let numpy_samples = (samples / 4).to_string();
    let loop_samples = (samples / 200).max(100_000).to_string();
    let output = Command::new("python3")
        .args([script, "--samples", &numpy_samples])
        .args(["--loop-samples", &loop_samples])
        .args(["--repeats", &repeats.min(5).to_string()])
        .output();
    match output {
        Ok(out) if out.status.success() => {
            let line = String::from_utf8_lossy(&out.stdout);
            let value: serde_json::Value = serde_json::from_str(line.trim()).expect("JSON");
            let rate = |key: &str| value[key].as_f64();
            match rate("numpy_rate") {
                Some(r) => {
                    let version = value["numpy_version"].as_str().unwrap_or("?");
                    row(
                        &format!("numpy {version} vectorised, 1 core"),
                        [r; 3],
                        " (median only)",
                    );
                }
                None => println!("numpy is not installed: pip install numpy"),
            }
            if let Some(r) = rate("loop_rate") {
                row("python per-sample loop, 1 core", [r; 3], " (median only)");
            }
        }
        Ok(out) => println!(
            "bench/pi_numpy.py failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => println!("python3 could not run: {e}"),
    }
}
