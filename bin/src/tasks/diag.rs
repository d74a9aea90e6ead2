//! Tasks that sleep or misbehave on purpose: for tests, benchmarks and for
//! seeing how the pool handles a worker that fails, panics, exits or crashes.

use nix::sys::signal::{self, SigHandler, Signal};
use serde::{Deserialize, Serialize};

use procpool::{Failure, Task};

/// Sleeps for the given milliseconds, then returns them.
///
/// ```
/// use procpool::Task;
/// use procpool_cli::tasks::Sleep;
/// assert_eq!(Sleep::run(1).unwrap(), 1);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Sleep;

impl Task for Sleep {
    const NAME: &'static str = "sleep";
    type Input = u64;
    type Output = u64;
    fn run(ms: u64) -> Result<u64, Failure> {
        std::thread::sleep(std::time::Duration::from_millis(ms));
        Ok(ms)
    }
}
procpool::register!(Sleep);

/// One way for a task to go wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Misbehavior {
    /// Succeed, returning the input's `value`.
    Behave,
    /// Return a failure.
    Fail,
    /// Panic.
    Panic,
    /// Exit the worker process with this status.
    Exit(i32),
    /// Abort the worker process (SIGABRT).
    Abort,
    /// Die of a segmentation fault (SIGSEGV), as a crashing native library
    /// would: the signal is raised, no memory is touched.
    Segfault,
    /// Send the worker process this signal.
    Signal(i32),
    /// Sleep this many milliseconds, then succeed.
    Hang(u64),
}

/// Misbehaves as asked; `value` comes back on success.
///
/// ```
/// use procpool::Task;
/// use procpool_cli::tasks::{Misbehave, Misbehavior};
/// assert_eq!(Misbehave::run((Misbehavior::Behave, 7)).unwrap(), 7);
/// assert!(Misbehave::run((Misbehavior::Fail, 7)).is_err());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Misbehave;

impl Task for Misbehave {
    const NAME: &'static str = "misbehave";
    type Input = (Misbehavior, u64);
    type Output = u64;
    fn run((how, value): (Misbehavior, u64)) -> Result<u64, Failure> {
        match how {
            Misbehavior::Behave => Ok(value),
            Misbehavior::Fail => Err(Failure::msg(format!("input {value} failed on purpose"))),
            Misbehavior::Panic => panic!("input {value} panicked on purpose"),
            Misbehavior::Exit(code) => std::process::exit(code),
            Misbehavior::Abort => std::process::abort(),
            Misbehavior::Segfault => {
                // Rust's own SIGSEGV handler (for stack overflows) would ignore
                // a raised signal: restore the default action first.
                // SAFETY: SIG_DFL runs no handler code.
                let _ = unsafe { signal::signal(Signal::SIGSEGV, SigHandler::SigDfl) };
                let _ = signal::raise(Signal::SIGSEGV);
                std::process::abort()
            }
            Misbehavior::Signal(signal) => {
                if let Ok(signal) = Signal::try_from(signal) {
                    let _ = signal::raise(signal);
                }
                std::thread::sleep(std::time::Duration::from_secs(5));
                Ok(value)
            }
            Misbehavior::Hang(ms) => {
                std::thread::sleep(std::time::Duration::from_millis(ms));
                Ok(value)
            }
        }
    }
}
procpool::register!(Misbehave);
