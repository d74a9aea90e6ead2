//! The built-in tasks: the tutorial's demonstrations, and diagnostics that
//! misbehave on purpose so failure handling can be seen and tested.

mod diag;
mod flip;
mod job;
mod payload;
mod pi;

pub use diag::{Misbehave, Misbehavior, Sleep};
pub use flip::Flip;
pub use job::{
    CANNOT_START, JOB_ID_VAR, JOB_TOKEN_VAR, JobReport, JobSpec, ShellJob, hostname, log_path,
};
pub use payload::ByteSum;
pub use pi::{Pi, PiInput, PiOutput};

use serde::{Deserialize, Serialize};

use procpool::{Failure, Task};

/// `x * x`, the tutorial's `pool.map(np.square, foo)`; overflow is a failure.
///
/// ```
/// use procpool::Task;
/// use procpool_cli::tasks::Square;
/// assert_eq!(Square::run(-7).unwrap(), 49);
/// assert!(Square::run(i64::MAX).is_err());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Square;

impl Task for Square {
    const NAME: &'static str = "square";
    type Input = i64;
    type Output = i64;
    fn run(x: i64) -> Result<i64, Failure> {
        x.checked_mul(x)
            .ok_or_else(|| Failure::msg(format!("{x} squared overflows a 64-bit integer")))
    }
}
procpool::register!(Square);

/// The tutorial's `parallel_test`: reports `x` and the worker's PID after a
/// short random pause, so completion order visibly differs from input order.
///
/// ```
/// use procpool::Task;
/// use procpool_cli::tasks::{Whoami, WhoamiInput};
/// let me = Whoami::run(WhoamiInput { x: 2, max_delay_ms: 0 }).unwrap();
/// assert_eq!((me.x, me.pid), (2, std::process::id()));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Whoami;

/// The input of [`Whoami`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct WhoamiInput {
    /// The number to report.
    pub x: u64,
    /// The pause is drawn uniformly from `0..max_delay_ms` milliseconds.
    pub max_delay_ms: u64,
}

/// The output of [`Whoami`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoamiOutput {
    /// The input number.
    pub x: u64,
    /// The process that ran it.
    pub pid: u32,
}

impl Task for Whoami {
    const NAME: &'static str = "whoami";
    type Input = WhoamiInput;
    type Output = WhoamiOutput;
    fn run(input: WhoamiInput) -> Result<WhoamiOutput, Failure> {
        if input.max_delay_ms > 0 {
            let ms = pause_ms(input.x) % input.max_delay_ms;
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        Ok(WhoamiOutput {
            x: input.x,
            pid: std::process::id(),
        })
    }
}
procpool::register!(Whoami);

/// A pause that differs from task to task and run to run (a hash of the
/// input, the process and the clock), so no two runs complete alike; it
/// needs no random number generator in the pool's core.
fn pause_ms(x: u64) -> u64 {
    use std::hash::{BuildHasher, RandomState};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    RandomState::new().hash_one((x, std::process::id(), nanos))
}
