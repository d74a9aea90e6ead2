//! What the supervisor sees that no [`Outcome`](crate::Outcome) tells:
//! workers that start and die, attempts lost with them. A
//! timeline drawn from them (the `procpool` command's `--timeline`) shows them; any program can read them with
//! [`Pool::take_events`](crate::Pool::take_events).

use std::time::Duration;

use crate::error::TaskError;
use crate::sys::ExitCause;

/// What the supervisor saw that no [`Outcome`](crate::Outcome) tells; see
/// [`Pool::take_events`](crate::Pool::take_events). Times are offsets from
/// [`Pool::clock_zero`](crate::Pool::clock_zero).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PoolEvent {
    /// A worker finished its handshake and took work.
    WorkerStarted {
        /// Its process id.
        pid: u32,
        /// When.
        at: Duration,
    },
    /// A worker ended without being asked to (killed, crashed, stopped
    /// after a timeout).
    WorkerDied {
        /// Its process id.
        pid: u32,
        /// When the supervisor saw it.
        at: Duration,
        /// How it ended.
        cause: ExitCause,
    },
    /// Inputs `first..first + count` were running when their worker died
    /// or timed out, and went back to the queue: whole, as a retry, or one
    /// by one (a chunk is split to find the input that kills its worker).
    AttemptLost {
        /// The first input's index.
        first: u64,
        /// How many inputs.
        count: u32,
        /// The worker it ran on.
        pid: u32,
        /// Which attempt this was, from 1.
        attempt: u32,
        /// When it started, as the supervisor saw it.
        started: Duration,
        /// How long it ran until its worker was gone.
        elapsed: Duration,
        /// Why it ended.
        error: TaskError,
    },
}
