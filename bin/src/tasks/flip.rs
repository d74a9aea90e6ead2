//! The tutorial's example 2 as a task: flip one image by 180 degrees and
//! convert it. Only the paths and the options travel to the worker.

use crate::flip::{FlipJob, Flipped, flip_file};
use procpool::{Failure, Task};

/// Flips one image file and writes the output named in its [`FlipJob`];
/// see [`flip_file`].
///
/// ```
/// use procpool_cli::flip::{FlipOptions, Plan, samples};
/// use procpool_cli::tasks::Flip;
/// # let pool = procpool_cli::doctest_pool(2);
/// let dir = tempfile::tempdir().unwrap();
/// for i in 0..3 {
///     std::fs::write(dir.path().join(samples::file_name(i)), samples::jpeg(i)).unwrap();
/// }
/// let plan = Plan::new(&[dir.path()], None, FlipOptions::default()).unwrap();
/// for outcome in pool.map_outcomes(Flip, plan.jobs).unwrap() {
///     let flipped = outcome.result.unwrap();
///     assert!(flipped.path.ends_with(format!("sample_0{}_flipped.pdf", outcome.index + 1)));
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Flip;

impl Task for Flip {
    const NAME: &'static str = "flip";
    type Input = FlipJob;
    type Output = Flipped;
    fn run(job: FlipJob) -> Result<Flipped, Failure> {
        flip_file(&job).map_err(Failure::from)
    }
}
procpool::register!(Flip);
