//! Monte Carlo pi, the tutorial's example 1: the sampling kernel, the
//! statistics over seeds, and the serial-versus-pool timings.
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

use std::ops::Range;
use std::time::{Duration, Instant};

use rand_pcg::rand_core::{Rng, SeedableRng};
use rand_pcg::{Pcg32, Pcg64Mcg};

use crate::tasks::{Pi, PiInput, PiOutput};
use procpool::signal::InterruptFlag;
use procpool::{Pool, PoolError, TaskError};

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

/// Which compiled version of the sampling loop runs; all give the same counts.
///
/// ```
/// use procpool_cli::pi::{Kernel, count_inside_with};
/// let best = Kernel::best();
/// assert!(best.is_supported());
/// assert_eq!(
///     count_inside_with(best, 7, 1_001),
///     count_inside_with(Kernel::Portable, 7, 1_001),
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Built for the baseline of the target: runs anywhere.
    Portable,
    /// Built for x86-64 with AVX2.
    Avx2,
    /// Built for x86-64 with AVX-512 (F, DQ, VL).
    Avx512,
}

impl Kernel {
    /// Every kernel, slowest first.
    pub const ALL: [Kernel; 3] = [Kernel::Portable, Kernel::Avx2, Kernel::Avx512];

    /// Whether this processor can run the kernel.
    pub fn is_supported(self) -> bool {
        match self {
            Kernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The fastest kernel this processor runs.
    pub fn best() -> Kernel {
        Kernel::ALL
            .into_iter()
            .rev()
            .find(|k| k.is_supported())
            .unwrap_or(Kernel::Portable)
    }

    /// A short lowercase name: `portable`, `avx2`, `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512 => "avx512",
        }
    }
}

/// The generators for `seed`: a `Pcg64Mcg` seeded from the seed seeds one
/// `Pcg32` per lane, as the rand book advises for several streams.
fn lanes(seed: u64) -> [Pcg32; LANES] {
    let mut master = Pcg64Mcg::seed_from_u64(seed);
    std::array::from_fn(|_| Pcg32::from_rng(&mut master))
}

/// One 64-bit draw as the point (high half, low half) of a 2^32 x 2^32
/// grid; inside the quarter circle when x^2 + y^2 < 2^64, that is when the
/// 64-bit sum does not carry. Exact integer arithmetic: no rounding, so every
/// kernel agrees bit for bit.
#[inline(always)]
fn is_inside(draw: u64) -> bool {
    let (x, y) = (draw >> 32, draw & 0xffff_ffff);
    !(x * x).overflowing_add(y * y).1
}

/// `rounds` draws from every lane, counting the points inside.
#[inline(always)]
fn count_rounds(lanes: &mut [Pcg32; LANES], rounds: u64) -> u64 {
    let mut counts = [0u64; LANES];
    for _ in 0..rounds {
        for (lane, count) in lanes.iter_mut().zip(&mut counts) {
            *count += u64::from(is_inside(lane.next_u64()));
        }
    }
    counts.iter().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{LANES, Pcg32, count_rounds};

    #[target_feature(enable = "avx2")]
    pub(super) fn count_rounds_avx2(lanes: &mut [Pcg32; LANES], rounds: u64) -> u64 {
        count_rounds(lanes, rounds)
    }

    #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
    pub(super) fn count_rounds_avx512(lanes: &mut [Pcg32; LANES], rounds: u64) -> u64 {
        count_rounds(lanes, rounds)
    }
}

/// How many of `trials` points drawn for `seed` fall inside the quarter
/// circle, with the fastest kernel this processor runs.
///
/// ```
/// let inside = procpool_cli::pi::count_inside(0, 1_000_000);
/// assert!((4.0 * inside as f64 / 1e6 - std::f64::consts::PI).abs() < 0.01);
/// ```
pub fn count_inside(seed: u64, trials: u64) -> u64 {
    count_inside_with(Kernel::best(), seed, trials)
}

/// [`count_inside`] with a chosen kernel, for benchmarks and tests.
///
/// # Panics
///
/// If this processor cannot run `kernel` (see [`Kernel::is_supported`]).
pub fn count_inside_with(kernel: Kernel, seed: u64, trials: u64) -> u64 {
    count_inside_until(kernel, seed, trials, &|| false)
        .expect("a run that is never stopped finishes")
}

/// Rounds (of [`LANES`] points) between two looks at `stop`: a few
/// milliseconds of work, a negligible share of it spent looking.
const ROUNDS_PER_BLOCK: u64 = 1 << 20;

/// [`count_inside_with`] that gives up, returning `None`, when `stop()` says
/// so; it is asked every [`ROUNDS_PER_BLOCK`] rounds. Blocks continue the same
/// generators, so the count does not depend on the block size.
fn count_inside_until(
    kernel: Kernel,
    seed: u64,
    trials: u64,
    stop: &dyn Fn() -> bool,
) -> Option<u64> {
    assert!(
        kernel.is_supported(),
        "this processor cannot run the {} kernel",
        kernel.name()
    );
    let mut lanes = lanes(seed);
    let mut rounds = trials / LANES as u64;
    let mut inside = 0;
    while rounds > 0 {
        if stop() {
            return None;
        }
        let block = rounds.min(ROUNDS_PER_BLOCK);
        inside += match kernel {
            Kernel::Portable => count_rounds(&mut lanes, block),
            // SAFETY: the assert above checked that the CPU has these features.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { x86::count_rounds_avx2(&mut lanes, block) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { x86::count_rounds_avx512(&mut lanes, block) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("only the portable kernel is supported here"),
        };
        rounds -= block;
    }
    // The last trials % LANES points come from the first lanes, in turn.
    let rest = (trials % LANES as u64) as usize;
    let tail: u64 = lanes[..rest]
        .iter_mut()
        .map(|lane| u64::from(is_inside(lane.next_u64())))
        .sum();
    Some(inside + tail)
}

/// One sampled point of the unit square.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// From 0 up to 1.
    pub x: f64,
    /// From 0 up to 1.
    pub y: f64,
    /// Whether it lies inside the quarter circle, as the estimate counts it.
    pub inside: bool,
}

/// The points `seed` draws, in the order the estimate counts them: the first
/// `n` of them hold exactly [`count_inside`]`(seed, n)` points inside.
///
/// ```
/// let first: Vec<_> = procpool_cli::pi::points(3).take(1000).collect();
/// let inside = first.iter().filter(|p| p.inside).count() as u64;
/// assert_eq!(inside, procpool_cli::pi::count_inside(3, 1000));
/// ```
pub fn points(seed: u64) -> impl Iterator<Item = Point> {
    let mut lanes = lanes(seed);
    (0..LANES).cycle().map(move |lane| {
        let draw = lanes[lane].next_u64();
        let scale = 1.0 / 4_294_967_296.0;
        Point {
            x: (draw >> 32) as f64 * scale,
            y: (draw & 0xffff_ffff) as f64 * scale,
            inside: is_inside(draw),
        }
    })
}

/// The seeds and trials of one run: one task per seed, validated.
#[derive(Debug, Clone)]
pub struct Experiment {
    seeds: Range<u64>,
    trials: u64,
    interrupt: Option<InterruptFlag>,
    /// Where runs are recorded, if anywhere.
    timeline: Option<std::sync::Arc<std::sync::Mutex<crate::timeline::Timeline>>>,
}

impl Experiment {
    /// The tutorial's defaults: seeds 0 to 3, 500,000 trials each.
    pub const DEFAULT_SEEDS: Range<u64> = 0..4;
    /// The tutorial's `num_trials`.
    pub const DEFAULT_TRIALS: u64 = 500_000;

    /// One task per seed in `seeds`, each drawing `trials` points.
    ///
    /// ```
    /// use procpool_cli::pi::Experiment;
    /// assert!(Experiment::new(0..4, 500_000).is_ok());
    /// assert!(Experiment::new(4..4, 500_000).is_err());
    /// assert!(Experiment::new(0..4, 0).is_err());
    /// assert!(Experiment::new(0..4, u64::MAX).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// If there are no trials, no seeds, or more samples than 64 bits count.
    pub fn new(seeds: Range<u64>, trials: u64) -> Result<Experiment, Error> {
        if trials == 0 {
            return Err(Error::NoTrials);
        }
        if seeds.is_empty() {
            return Err(Error::NoSeeds {
                start: seeds.start,
                end: seeds.end,
            });
        }
        let count = seeds.end - seeds.start;
        if count.checked_mul(trials).is_none() {
            return Err(Error::TooManySamples {
                seeds: count,
                trials,
            });
        }
        Ok(Experiment {
            seeds,
            trials,
            interrupt: None,
            timeline: None,
        })
    }

    /// Stops runs in this process within milliseconds once `flag` is set (see
    /// [`signal::install`](procpool::signal::install)); runs on a pool stop by the pool's own flag.
    ///
    /// ```
    /// let flag = procpool::signal::InterruptFlag::new();
    /// let experiment = procpool_cli::pi::Experiment::new(0..4, 1000).unwrap();
    /// let experiment = experiment.interrupt_flag(flag.clone());
    /// assert!(experiment.run_serial().is_ok());
    /// flag.raise(2);
    /// assert!(experiment.run_serial().is_err());
    /// ```
    pub fn interrupt_flag(mut self, flag: InterruptFlag) -> Self {
        self.interrupt = Some(flag);
        self
    }

    /// Records every run in `timeline`: the pool's tasks on their workers'
    /// lanes, each serial run as a phase of the supervisor's.
    pub fn timeline(
        mut self,
        timeline: std::sync::Arc<std::sync::Mutex<crate::timeline::Timeline>>,
    ) -> Self {
        self.timeline = Some(timeline);
        self
    }

    fn with_timeline(&self, f: impl FnOnce(&mut crate::timeline::Timeline)) {
        if let Some(timeline) = &self.timeline {
            f(&mut timeline.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }

    fn check_interrupt(&self) -> Result<(), Error> {
        match self.interrupt.as_ref().and_then(InterruptFlag::received) {
            Some(signal) => Err(Error::Interrupted { signal }),
            None => Ok(()),
        }
    }

    /// The seeds, one task each.
    pub fn seeds(&self) -> Range<u64> {
        self.seeds.clone()
    }

    /// How many seeds.
    pub fn seed_count(&self) -> u64 {
        self.seeds.end - self.seeds.start
    }

    /// Trials per seed.
    pub fn trials(&self) -> u64 {
        self.trials
    }

    /// Samples over all seeds.
    pub fn samples(&self) -> u64 {
        self.seed_count() * self.trials
    }

    /// The task inputs, one per seed in order.
    pub fn inputs(&self) -> impl Iterator<Item = PiInput> + use<> {
        let trials = self.trials;
        self.seeds.clone().map(move |seed| PiInput { seed, trials })
    }

    /// Runs every seed in this process, one after another: the tutorial's
    /// serial list comprehension.
    ///
    /// # Errors
    ///
    /// [`Error::Interrupted`] soon after the
    /// [`interrupt_flag`](Self::interrupt_flag) is set.
    pub fn run_serial(&self) -> Result<Vec<PiOutput>, Error> {
        let stop = || self.check_interrupt().is_err();
        self.inputs()
            .map(|PiInput { seed, trials }| {
                match count_inside_until(Kernel::best(), seed, trials, &stop) {
                    Some(inside) => Ok(PiOutput { inside, trials }),
                    None => Err(self.check_interrupt().unwrap_err()),
                }
            })
            .collect()
    }

    /// Runs every seed on the pool, one task each, in input order.
    ///
    /// ```
    /// # let pool = procpool_cli::doctest_pool(2);
    /// let experiment = procpool_cli::pi::Experiment::new(0..3, 10_000).unwrap();
    /// assert_eq!(experiment.run_on(&pool).unwrap(), experiment.run_serial().unwrap());
    /// ```
    ///
    /// # Errors
    ///
    /// If the pool stops, or a seed's task fails.
    pub fn run_on(&self, pool: &Pool) -> Result<Vec<PiOutput>, Error> {
        let start = self.seeds.start;
        let outcomes = pool.map(Pi, self.inputs());
        self.with_timeline(|timeline| {
            timeline.follow(pool);
            for outcome in outcomes.iter().flatten() {
                timeline.record(outcome, Some(&format!("seed {}", start + outcome.index)));
            }
            timeline.record_events(pool);
        });
        outcomes?
            .into_iter()
            .map(|outcome| {
                outcome.result.map_err(|error| Error::Task {
                    seed: start + outcome.index,
                    error: *error,
                })
            })
            .collect()
    }

    /// The tutorial's timing cells, each the median of `repeats` runs after
    /// one untimed warm-up: the first seed alone, every seed serially in this
    /// process, and every seed on `pool`.
    ///
    /// ```
    /// # let pool = procpool_cli::doctest_pool(2);
    /// let experiment = procpool_cli::pi::Experiment::new(0..4, 10_000).unwrap();
    /// let comparison = experiment.compare(&pool, 3).unwrap();
    /// assert_eq!(comparison.pool.runs.len(), 3);
    /// assert!(comparison.speedup() > 0.0);
    /// ```
    ///
    /// # Errors
    ///
    /// As [`run_on`](Self::run_on).
    pub fn compare(&self, pool: &Pool, repeats: usize) -> Result<Comparison, Error> {
        let first = self.seeds.start;
        let alone = Experiment {
            seeds: first..first + 1,
            ..self.clone()
        };
        let [one_seed, serial, on_pool] = Timing::measure_rounds(
            repeats,
            [
                &mut || alone.run_serial_quietly(),
                &mut || self.run_serial_quietly(),
                &mut || self.run_on(pool).map(drop),
            ],
        )?;
        Ok(Comparison {
            experiment: self.clone(),
            processes: pool.processes(),
            one_seed,
            serial,
            pool: on_pool,
        })
    }

    /// [`run_serial`](Self::run_serial) for timing: the outputs are dropped
    /// (behind a `black_box`, so the work is not optimised away).
    fn run_serial_quietly(&self) -> Result<(), Error> {
        let start = Instant::now();
        let result = self
            .run_serial()
            .map(|outputs| drop(std::hint::black_box(outputs)));
        self.with_timeline(|timeline| {
            let seeds = self.seeds.end - self.seeds.start;
            let label = format!("serial: {seeds} seed{}", if seeds == 1 { "" } else { "s" });
            timeline.phase(label, start, Instant::now());
        });
        result
    }

    /// Speedup over the serial run for each pool size in `sizes`: for each,
    /// serial and pool runs alternate, `repeats` of each after a warm-up.
    /// Each pool comes from `make_pool` and is dropped before the next.
    ///
    /// ```
    /// # procpool::serve_if_requested(&procpool_cli::tasks::builtin());
    /// let experiment = procpool_cli::pi::Experiment::new(0..4, 10_000).unwrap();
    /// let make_pool = |n| {
    ///     let builder = procpool::Pool::builder().processes(n);
    ///     builder.build().map_err(procpool_cli::pi::Error::from)
    /// };
    /// let scaling = experiment.scaling([1, 2], 2, make_pool).unwrap();
    /// assert_eq!(scaling.points.len(), 2);
    /// assert_eq!(scaling.points[1].processes, 2);
    /// ```
    ///
    /// # Errors
    ///
    /// The first error from `make_pool` or from a run.
    pub fn scaling<E: From<Error>>(
        &self,
        sizes: impl IntoIterator<Item = usize>,
        repeats: usize,
        mut make_pool: impl FnMut(usize) -> Result<Pool, E>,
    ) -> Result<Scaling, E> {
        let mut points = Vec::new();
        for processes in sizes {
            let pool = make_pool(processes)?;
            let [serial, on_pool] = Timing::measure_rounds(
                repeats,
                [&mut || self.run_serial_quietly(), &mut || {
                    self.run_on(&pool).map(drop)
                }],
            )?;
            let speedup = ratio(serial.median(), on_pool.median());
            points.push(ScalingPoint {
                processes,
                serial,
                pool: on_pool,
                speedup,
                efficiency: speedup / processes as f64,
            });
        }
        Ok(Scaling {
            experiment: self.clone(),
            points,
        })
    }
}

impl PiInput {
    /// Runs this seed here, in this process.
    pub fn run(self) -> PiOutput {
        PiOutput {
            inside: count_inside(self.seed, self.trials),
            trials: self.trials,
        }
    }
}

/// `a / b` in seconds; 0 when `b` is 0.
fn ratio(a: Duration, b: Duration) -> f64 {
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

/// The mean estimate over seeds, its standard error and the distance from pi.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// How many seeds.
    pub seeds: usize,
    /// Points drawn over all seeds.
    pub trials: u64,
    /// Points inside over all seeds.
    pub inside: u64,
    /// The mean of the per-seed estimates.
    pub mean: f64,
    /// The standard error of `mean`: each estimate is 4 times a binomial
    /// proportion, whose variance comes from the pooled proportion inside.
    pub standard_error: f64,
    /// The sample standard deviation of the per-seed estimates (needs two seeds).
    pub spread: Option<f64>,
}

impl Summary {
    /// Summarises the outputs of several seeds; `None` for none.
    ///
    /// ```
    /// use procpool_cli::{pi::Summary, tasks::PiOutput};
    /// let outputs = [PiOutput { inside: 785, trials: 1000 }, PiOutput { inside: 787, trials: 1000 }];
    /// let summary = Summary::of(&outputs).unwrap();
    /// assert!((summary.mean - 3.144).abs() < 1e-12);
    /// assert!(summary.standard_error > 0.0);
    /// ```
    pub fn of(outputs: &[PiOutput]) -> Option<Summary> {
        if outputs.is_empty() {
            return None;
        }
        let n = outputs.len() as f64;
        let inside: u64 = outputs.iter().map(|o| o.inside).sum();
        let trials: u64 = outputs.iter().map(|o| o.trials).sum();
        let p = inside as f64 / trials as f64;
        let variance: f64 = outputs
            .iter()
            .map(|o| 16.0 * p * (1.0 - p) / o.trials as f64)
            .sum();
        let mean = outputs.iter().map(PiOutput::estimate).sum::<f64>() / n;
        let spread = (outputs.len() > 1).then(|| {
            let squares: f64 = outputs.iter().map(|o| (o.estimate() - mean).powi(2)).sum();
            (squares / (n - 1.0)).sqrt()
        });
        Some(Summary {
            seeds: outputs.len(),
            trials,
            inside,
            mean,
            standard_error: variance.sqrt() / n,
            spread,
        })
    }

    /// `mean - pi`.
    pub fn error(&self) -> f64 {
        self.mean - std::f64::consts::PI
    }

    /// How many standard errors the mean lies from pi.
    pub fn error_in_standard_errors(&self) -> f64 {
        if self.standard_error > 0.0 {
            self.error().abs() / self.standard_error
        } else {
            f64::INFINITY
        }
    }
}

#[cfg(test)]
mod tests {
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
