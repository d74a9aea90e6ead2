//! The statistics over seeds: the mean estimate, its standard error and
//! the distance from pi.

use crate::tasks::PiOutput;

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
