//! OS signals turned into one shutdown flag, at one boundary.
//!
//! [`install`] registers handlers for the signals that ask a program to stop
//! ([`STOP_SIGNALS`]: Ctrl-C, `kill`, a dropped terminal or SSH session,
//! Ctrl-\, and the warnings a chunk scheduler can send before its SIGKILL)
//! that only store the signal's number in a flag. The supervisor reads it
//! between turns (at most every 20 ms) and while workers start, stops
//! dispatching, collects what the workers had already finished, and returns
//! [`PoolError::Interrupted`](crate::PoolError::Interrupted). Workers ignore
//! the terminal's signals, so a Ctrl-C reaches only the supervisor, which
//! decides how to shut down; one signal is always enough, and a second one
//! ends the process at once with 128 + its number.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub use crate::sys::signal_name;

/// The flag a pool watches: empty until a stop signal arrives, then that
/// signal's number. Clones share one flag.
///
/// ```
/// let flag = procpool::signal::InterruptFlag::new();
/// assert_eq!(flag.received(), None);
/// flag.raise(libc::SIGTERM); // as a signal handler would
/// assert_eq!(flag.clone().received(), Some(libc::SIGTERM));
/// ```
#[derive(Debug, Clone, Default)]
pub struct InterruptFlag(Arc<AtomicUsize>);

impl InterruptFlag {
    /// A flag no signal has set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the flag to `signal` (a pool that watches it then stops), as
    /// the handlers of [`install`] do: for programs that stop a pool for
    /// reasons of their own.
    pub fn raise(&self, signal: i32) {
        self.0.store(signal.max(1) as usize, Ordering::Relaxed);
    }

    /// The signal that arrived, if any.
    pub fn received(&self) -> Option<i32> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            signal => Some(signal as i32),
        }
    }
}

/// The signals [`install`] handles: SIGINT (Ctrl-C), SIGTERM (`kill`, and
/// what Slurm sends at a time limit before SIGKILL), SIGHUP (the terminal or
/// SSH session went away), SIGQUIT (Ctrl-\), and SIGUSR1 and SIGUSR2 (the
/// warnings `sbatch --signal` sends), each of which would otherwise end the
/// process with nothing printed.
pub const STOP_SIGNALS: [i32; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Installs handlers for [`STOP_SIGNALS`] that set the returned flag. A
/// second signal, while the first is being handled, exits the process at
/// once with status 128 + its number.
///
/// ```
/// let flag = procpool::signal::install().unwrap();
/// assert_eq!(flag.received(), None);
/// ```
///
/// # Errors
///
/// If the handlers cannot be registered.
pub fn install() -> std::io::Result<InterruptFlag> {
    let flag = InterruptFlag::default();
    let armed = Arc::new(AtomicBool::new(false));
    for signal in STOP_SIGNALS {
        // The order matters: the exit is checked before the first signal arms it.
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, Arc::clone(&armed))?;
        signal_hook::flag::register(signal, Arc::clone(&armed))?;
        signal_hook::flag::register_usize(signal, Arc::clone(&flag.0), signal as usize)?;
    }
    Ok(flag)
}
