//! The tutorial's `pi_mc(seed)`: one seed's Monte Carlo count, as a task.

use serde::{Deserialize, Serialize};

use procpool::{Failure, Task};

/// Counts how many of `trials` random points of the unit square, drawn from
/// generators seeded by `seed`, fall inside the quarter circle. The count
/// depends on the seed and trials only: see [`crate::pi`].
///
/// ```
/// use procpool::Task;
/// use procpool_cli::tasks::{Pi, PiInput};
/// let out = Pi::run(PiInput { seed: 0, trials: 500_000 }).unwrap();
/// assert!((out.estimate() - std::f64::consts::PI).abs() < 0.01);
/// assert!(Pi::run(PiInput { seed: 0, trials: 0 }).is_err());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Pi;

/// The input of [`Pi`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PiInput {
    /// Seeds the generators.
    pub seed: u64,
    /// How many points to draw.
    pub trials: u64,
}

/// The output of [`Pi`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PiOutput {
    /// Points inside the quarter circle.
    pub inside: u64,
    /// Points drawn.
    pub trials: u64,
}

impl PiOutput {
    /// The estimate of pi: `4 * inside / trials`.
    pub fn estimate(&self) -> f64 {
        4.0 * self.inside as f64 / self.trials as f64
    }
}

impl Task for Pi {
    const NAME: &'static str = "pi";
    type Input = PiInput;
    type Output = PiOutput;
    fn run(input: PiInput) -> Result<PiOutput, Failure> {
        if input.trials == 0 {
            return Err(Failure::msg(format!(
                "seed {}: trials must be at least 1, got 0",
                input.seed
            )));
        }
        Ok(input.run())
    }
}
procpool::register!(Pi);
