//! OS signals turned into one shutdown flag, at one boundary.
//!
//! [`install`] registers SIGINT and SIGTERM handlers that only store the
//! signal's number in a flag; the supervisor's loop reads it between turns
//! (at most every 20 ms), stops dispatching and returns
//! [`PoolError::Interrupted`](crate::PoolError::Interrupted). Workers ignore
//! SIGINT, so a Ctrl-C at the terminal reaches only the supervisor, which
//! decides how to shut down; one Ctrl-C is always enough.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The flag a pool watches; 0 until a signal arrives, then its number.
pub type InterruptFlag = Arc<AtomicUsize>;

/// Installs SIGINT and SIGTERM handlers that set the returned flag.
///
/// ```
/// let flag = procpool::signal::install().unwrap();
/// assert_eq!(procpool::signal::received(&flag), None);
/// ```
///
/// # Errors
///
/// If the handlers cannot be registered.
pub fn install() -> std::io::Result<InterruptFlag> {
    let flag = InterruptFlag::default();
    for signal in [libc::SIGINT, libc::SIGTERM] {
        signal_hook::flag::register_usize(signal, Arc::clone(&flag), signal as usize)?;
    }
    Ok(flag)
}

/// The signal that arrived, if any.
pub fn received(flag: &InterruptFlag) -> Option<i32> {
    match flag.load(Ordering::Relaxed) {
        0 => None,
        signal => Some(signal as i32),
    }
}
