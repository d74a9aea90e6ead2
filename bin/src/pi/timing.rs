//! The wall times of repeated runs, and what an experiment's comparison
//! and scaling runs report from them.

use std::time::{Duration, Instant};

use super::experiment::Experiment;

/// `a / b` in seconds; 0 when `b` is 0.
pub(super) fn ratio(a: Duration, b: Duration) -> f64 {
    if b.is_zero() {
        0.0
    } else {
        a.as_secs_f64() / b.as_secs_f64()
    }
}

/// The wall times of repeated runs of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// Every timed run, in the order they ran.
    pub runs: Vec<Duration>,
}

impl Timing {
    /// Runs `f` once untimed (to warm caches and workers), then `repeats`
    /// times timed (at least once).
    ///
    /// # Errors
    ///
    /// The first error `f` returns.
    pub fn measure<E>(repeats: usize, mut f: impl FnMut() -> Result<(), E>) -> Result<Timing, E> {
        let [timing] = Timing::measure_rounds(repeats, [&mut f])?;
        Ok(timing)
    }

    /// Times several cases in rounds, each round one run of every case in
    /// turn, after one untimed warm-up round: a change in the machine's load
    /// then weighs on every case alike, rather than on whichever ran last.
    ///
    /// ```
    /// use procpool_cli::pi::Timing;
    /// let (mut a, mut b) = (0, 0);
    /// let mut case_a = || -> Result<(), ()> { a += 1; Ok(()) };
    /// let mut case_b = || -> Result<(), ()> { b += 1; Ok(()) };
    /// let [ta, tb] = Timing::measure_rounds(3, [&mut case_a, &mut case_b]).unwrap();
    /// assert_eq!((ta.runs.len(), tb.runs.len(), a, b), (3, 3, 4, 4));
    /// ```
    ///
    /// # Errors
    ///
    /// The first error a case returns.
    pub fn measure_rounds<E, const N: usize>(
        repeats: usize,
        mut cases: [&mut dyn FnMut() -> Result<(), E>; N],
    ) -> Result<[Timing; N], E> {
        for case in &mut cases {
            case()?;
        }
        let mut timings: [Timing; N] = std::array::from_fn(|_| Timing { runs: Vec::new() });
        for _ in 0..repeats.max(1) {
            for (case, timing) in cases.iter_mut().zip(&mut timings) {
                let start = Instant::now();
                case()?;
                timing.runs.push(start.elapsed());
            }
        }
        Ok(timings)
    }

    /// The median run (the mean of the middle two for an even count).
    ///
    /// ```
    /// use std::time::Duration;
    /// let ms = |n| Duration::from_millis(n);
    /// let timing = procpool_cli::pi::Timing { runs: vec![ms(9), ms(1), ms(4), ms(2)] };
    /// assert_eq!(timing.median(), ms(3));
    /// ```
    pub fn median(&self) -> Duration {
        let mut runs = self.runs.clone();
        runs.sort();
        match runs.len() {
            0 => Duration::ZERO,
            n if n % 2 == 1 => runs[n / 2],
            n => (runs[n / 2 - 1] + runs[n / 2]) / 2,
        }
    }

    /// The fastest run.
    pub fn min(&self) -> Duration {
        self.runs.iter().copied().min().unwrap_or_default()
    }

    /// The slowest run.
    pub fn max(&self) -> Duration {
        self.runs.iter().copied().max().unwrap_or_default()
    }
}

/// The tutorial's serial-versus-pool comparison; see [`Experiment::compare`].
#[derive(Debug, Clone)]
pub struct Comparison {
    /// What ran.
    pub experiment: Experiment,
    /// The pool's worker count.
    pub processes: usize,
    /// The first seed alone, in this process.
    pub one_seed: Timing,
    /// Every seed, one after another, in this process.
    pub serial: Timing,
    /// Every seed on the pool.
    pub pool: Timing,
}

impl Comparison {
    /// Median serial time over median pool time.
    pub fn speedup(&self) -> f64 {
        ratio(self.serial.median(), self.pool.median())
    }

    /// Speedup per worker process: 1 is perfect.
    pub fn efficiency(&self) -> f64 {
        self.speedup() / self.processes as f64
    }
}

/// One pool size of a [`Scaling`] run.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingPoint {
    /// Worker processes.
    pub processes: usize,
    /// Every seed, one after another, in this process, in rounds with `pool`.
    pub serial: Timing,
    /// Every seed on a pool of that size.
    pub pool: Timing,
    /// Median serial time over median pool time.
    pub speedup: f64,
    /// Speedup per worker process.
    pub efficiency: f64,
}

/// Speedup against pool size; see [`Experiment::scaling`].
#[derive(Debug, Clone)]
pub struct Scaling {
    /// What ran.
    pub experiment: Experiment,
    /// One entry per pool size, in the order asked.
    pub points: Vec<ScalingPoint>,
}
