//! An experiment: seeds and trials, run on a pool or serially in this
//! process, and compared or scaled over pool sizes.

use std::ops::Range;
use std::time::Instant;

use crate::tasks::{Pi, PiInput, PiOutput};
use procpool::Pool;
use procpool::signal::InterruptFlag;

use super::Error;
use super::kernel::{Kernel, count_inside, count_inside_until};
use super::timing::{Comparison, Scaling, ScalingPoint, Timing, ratio};

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
        let outcomes = pool.map_outcomes(Pi, self.inputs());
        self.with_timeline(|timeline| {
            timeline.follow(pool);
            let finished = match &outcomes {
                Ok(outcomes) => outcomes,
                Err(stopped) => &stopped.finished,
            };
            for outcome in finished {
                timeline.record(outcome, Some(&format!("seed {}", start + outcome.index)));
            }
            timeline.record_events(pool);
        });
        outcomes
            .map_err(procpool::PoolError::from)?
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
    /// # procpool::init();
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
