//! Monte Carlo pi, the tutorial's example 1: the sampling kernel
//! (`kernel`), an experiment over seeds on a pool or serially
//! (`experiment`), its timings (`timing`) and the statistics over seeds
//! (`summary`).
//!
//! One seed's estimate is `4 * inside / trials`, where `inside` counts the
//! points of the unit square that fall in the quarter circle. The points come
//! from [`LANES`] `rand_pcg` generators seeded from the seed alone, so an
//! estimate never depends on the pool's size, the chunk size or the order in
//! which tasks complete.
//!
//! ```
//! use procpool_cli::pi::{Experiment, Summary};
//! let experiment = Experiment::new(0..4, 100_000).unwrap();
//! let outputs = experiment.run_serial().unwrap();
//! let summary = Summary::of(&outputs).unwrap();
//! assert!((summary.mean - std::f64::consts::PI).abs() < 4.0 * summary.standard_error);
//! ```

mod experiment;
mod kernel;
mod summary;
mod timing;

pub use experiment::Experiment;
pub use kernel::{Kernel, Point, count_inside, count_inside_with, points};
pub use summary::Summary;
pub use timing::{Comparison, Scaling, ScalingPoint, Timing};

use procpool::{PoolError, TaskError};

/// How many independent generators one task draws from, in turn. Eight
/// 64-bit lanes fill one AVX-512 register, so the loop runs as SIMD.
pub const LANES: usize = 8;

/// Why an experiment cannot be set up or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Zero trials per seed.
    #[error("trials must be at least 1, got 0")]
    NoTrials,
    /// The seed range holds no seed.
    #[error("seed range {start}..{end} is empty or reversed: a range a..b runs from a up to b-1")]
    NoSeeds {
        /// First seed asked for.
        start: u64,
        /// One past the last seed asked for.
        end: u64,
    },
    /// More samples in total than a 64-bit count holds.
    #[error("{seeds} seeds x {trials} trials is more samples than fit in 64 bits")]
    TooManySamples {
        /// Number of seeds.
        seeds: u64,
        /// Trials per seed.
        trials: u64,
    },
    /// A signal arrived while seeds ran in this process.
    #[error("interrupted by signal {signal}")]
    Interrupted {
        /// The signal number (SIGINT 2, SIGTERM 15).
        signal: i32,
    },
    /// The pool could not run the map.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// One seed's task failed.
    #[error("seed {seed}: {error}")]
    Task {
        /// The seed whose task failed.
        seed: u64,
        /// Why.
        #[source]
        error: TaskError,
    },
}

#[cfg(test)]
mod tests {
    use super::kernel::*;
    use super::*;

    #[test]
    fn every_supported_kernel_counts_the_same_as_the_portable_one() {
        for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
            for (seed, trials) in [(0, 1), (1, 7), (2, 8), (3, 9), (4, 100_003), (u64::MAX, 64)] {
                assert_eq!(
                    count_inside_with(kernel, seed, trials),
                    count_inside_with(Kernel::Portable, seed, trials),
                    "{} kernel, seed {seed}, {trials} trials",
                    kernel.name()
                );
            }
        }
    }

    #[test]
    fn the_sampled_points_are_the_counted_points() {
        for trials in [1, 5, 8, 13, 4_099] {
            let inside = points(11).take(trials).filter(|p| p.inside).count() as u64;
            assert_eq!(inside, count_inside(11, trials as u64), "{trials} trials");
        }
    }

    #[test]
    fn counting_in_blocks_continues_the_same_points_and_can_stop() {
        let trials = ROUNDS_PER_BLOCK * LANES as u64 + 13;
        let inside = points(21)
            .take(trials as usize)
            .filter(|p| p.inside)
            .count() as u64;
        assert_eq!(count_inside(21, trials), inside);
        let looks = std::cell::Cell::new(0);
        let stop_at_second_look = || {
            looks.set(looks.get() + 1);
            looks.get() == 2
        };
        let stopped = count_inside_until(Kernel::best(), 21, trials, &stop_at_second_look);
        assert_eq!((stopped, looks.get()), (None, 2));
    }

    #[test]
    fn points_fill_the_unit_square_and_inside_means_inside_the_circle() {
        for p in points(5).take(10_000) {
            assert!(
                (0.0..1.0).contains(&p.x) && (0.0..1.0).contains(&p.y),
                "{p:?}"
            );
            let r2 = p.x * p.x + p.y * p.y;
            // Away from the rim, where f64 rounding cannot matter.
            if (r2 - 1.0).abs() > 1e-9 {
                assert_eq!(p.inside, r2 < 1.0, "{p:?}");
            }
        }
    }

    #[test]
    fn different_seeds_draw_different_points_and_the_same_seed_the_same() {
        let a: Vec<Point> = points(1).take(16).collect();
        assert_eq!(a, points(1).take(16).collect::<Vec<_>>());
        assert_ne!(a, points(2).take(16).collect::<Vec<_>>());
        // The lanes of one seed are distinct streams too.
        assert_ne!(a[0], a[1]);
    }

    #[test]
    fn the_summary_of_many_seeds_brackets_pi() {
        let outputs = Experiment::new(0..32, 20_000)
            .unwrap()
            .run_serial()
            .unwrap();
        let summary = Summary::of(&outputs).unwrap();
        assert_eq!(summary.trials, 32 * 20_000);
        assert!(summary.error_in_standard_errors() < 4.0, "{summary:?}");
        // The seed-to-seed spread agrees with the binomial standard error.
        let spread_se = summary.spread.unwrap() / (32f64).sqrt();
        assert!(
            (spread_se / summary.standard_error - 1.0).abs() < 0.5,
            "{summary:?}"
        );
    }

    #[test]
    fn bad_experiments_name_their_cause() {
        let (start, end) = (5, 2);
        let e = Experiment::new(start..end, 10).unwrap_err();
        assert_eq!(
            e.to_string(),
            "seed range 5..2 is empty or reversed: a range a..b runs from a up to b-1"
        );
        assert!(
            Experiment::new(0..1, 0)
                .unwrap_err()
                .to_string()
                .contains("trials must be at least 1")
        );
        let e = Experiment::new(0..3, u64::MAX / 2).unwrap_err();
        assert!(e.to_string().contains("fit in 64 bits"), "{e}");
    }
}
