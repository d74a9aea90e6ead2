//! The [`Task`] trait, and how a worker runs a chunk of one task's inputs.
//!
//! A task is a function from a serde `Input` to a serde `Output`, known by a
//! name. The supervisor sends only the name and the encoded inputs; the
//! worker looks the name up among its linked tasks (`src/registry.rs`),
//! decodes, runs and encodes the results. `#[procpool::task]` writes the
//! trait's implementation for a plain function.
//!
//! An [`Initializer`] makes, once per worker, the state its tasks borrow
//! (Python's `initializer`); the worker keeps it here until it exits.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{self, CodecError};
use crate::protocol::WireFailure;

/// A unit of work that a worker process can run, known by [`Task::NAME`].
///
/// `#[procpool::task]` implements it for a plain function; implement it by
/// hand for what needs more (a value with its own name for MPI worker
/// programs, a hand-written input type), on a unit struct, and register it
/// with [`register!`](crate::register). The struct value is what you pass to
/// [`Pool::map`](crate::Pool::map), so calls read like Python's
/// `pool.map(square, xs)`.
///
/// ```
/// use procpool::{Failure, Task};
///
/// struct Double;
/// impl Task for Double {
///     const NAME: &'static str = "double";
///     type Input = i64;
///     type Output = i64;
///     fn run(x: i64) -> Result<i64, Failure> {
///         x.checked_mul(2).ok_or_else(|| Failure::msg(format!("{x} * 2 overflows")))
///     }
/// }
/// procpool::register!(Double);
///
/// assert_eq!(Double::run(21).unwrap(), 42);
/// assert_eq!(Double::types(), "i64 -> i64");
/// ```
pub trait Task: 'static {
    /// The name the supervisor sends to the worker; unique in a program.
    const NAME: &'static str;
    /// What one task receives.
    type Input: Serialize + DeserializeOwned;
    /// What one task returns.
    type Output: Serialize + DeserializeOwned;
    /// Runs one task in the worker process.
    ///
    /// # Errors
    ///
    /// A [`Failure`] becomes [`TaskError::Failed`](crate::TaskError::Failed)
    /// for this input only; the worker and the pool go on.
    fn run(input: Self::Input) -> Result<Self::Output, Failure>;

    /// The task's input and output types, as `input -> output`: with
    /// [`NAME`](Self::NAME), its identity, compared between supervisor and
    /// worker before any input is sent.
    fn types() -> String {
        format!(
            "{} -> {}",
            std::any::type_name::<Self::Input>(),
            std::any::type_name::<Self::Output>()
        )
    }
}

/// Why a task failed, as its own code says. Any `std::error::Error` converts
/// into it with `?`, keeping the chain of causes in the message.
///
/// ```
/// use procpool::Failure;
/// let f: Failure = "12x".parse::<u32>().unwrap_err().into();
/// assert_eq!(f.message(), "invalid digit found in string");
/// assert_eq!(Failure::msg("no such seed").message(), "no such seed");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(String);

impl Failure {
    /// A failure with this message.
    pub fn msg(message: impl Into<String>) -> Self {
        Failure(message.into())
    }

    /// The message, causes joined by `": "`.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Failure(message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A child that a task forked has returned from the task into the worker's
/// loop: it is no worker (its channels are closed), so it says so and
/// exits, and the worker itself answers alone.
fn leave_forked_child(task: &str) -> ! {
    eprintln!(
        "procpool: process {} (forked by task {task:?}) returned from the task; it exits here",
        std::process::id()
    );
    // SAFETY: _exit ends this process at once, running nothing of the
    // worker's (no exit hooks, no flushing of its buffers twice).
    unsafe { libc::_exit(0) }
}

/// Decodes `count` inputs of `T` from `payload`, runs each (catching panics),
/// and appends to `out` the results, then (when `timed`) each task's time,
/// then the trailer: see [`ChunkLayout`]. Returns the chunk's start on the
/// machine's shared clock: input `i` started at that start plus the times of
/// the inputs before it, so one timestamp per chunk places every task on a
/// timeline.
pub(crate) fn run_chunk<T: Task>(
    payload: &[u8],
    count: u32,
    timed: bool,
    out: &mut Vec<u8>,
) -> Result<u64, CodecError> {
    TICKS.with_borrow_mut(|ticks| {
        ticks.clear();
        let mut inputs = codec::Reader::new(payload);
        let mut results = codec::Writer::new(out);
        // One tick per input: each input's time runs from the end of the
        // previous one, so it includes decoding its input (tiny next to a task).
        let started = crate::sys::monotonic_ns();
        let first_tick = crate::sys::ticks();
        let mut last = first_tick;
        for _ in 0..count {
            let input = inputs.read::<T::Input>()?;
            let result = match panic::catch_unwind(AssertUnwindSafe(|| T::run(input))) {
                Ok(Ok(output)) => Ok(output),
                Ok(Err(failure)) => Err(WireFailure::Failed(failure.0)),
                Err(payload) => Err(panic_failure(payload)),
            };
            if crate::sys::forked() {
                leave_forked_child(T::NAME);
            }
            if timed {
                let now = crate::sys::ticks();
                ticks.push(now.wrapping_sub(last));
                last = now;
            }
            let before = results.len();
            if let Err(e) = results.write(&result) {
                // An output that cannot be encoded fails its input alone
                // (Python's MaybeEncodingError); the chunk and worker go on.
                results.truncate(before);
                let failure = format!("its output cannot be encoded: {e}");
                results.write(&Err::<T::Output, _>(WireFailure::Failed(failure)))?;
            }
        }
        let rest = inputs.rest();
        if !rest.is_empty() {
            return Err(CodecError::Trailing(rest.len()));
        }
        let end = results.len();
        if timed {
            // Ticks become nanoseconds at the chunk's own rate: the times of
            // its inputs add up to the chunk's time on the shared clock.
            let nanos = crate::sys::monotonic_ns().saturating_sub(started);
            let total = last.wrapping_sub(first_tick).max(1);
            let scale = nanos as f64 / total as f64;
            for &tick in ticks.iter() {
                results.write(&((tick as f64 * scale) as u64))?;
            }
        }
        ChunkLayout::seal(out, end);
        Ok(started)
    })
}

thread_local! {
    /// Each input's ticks in the chunk being run, kept between chunks.
    static TICKS: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// How a chunk's results are laid out in a reply's payload: the encoded
/// results (a `Result<Output, WireFailure>` per input), then each input's
/// time in nanoseconds (a varint per input, or none for an untimed chunk),
/// then the size of the times in 4 little-endian bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkLayout<'a> {
    /// The encoded results.
    pub results: &'a [u8],
    /// The encoded times; empty for an untimed chunk.
    pub times: &'a [u8],
}

impl<'a> ChunkLayout<'a> {
    /// Ends `out`, whose results end at `results`, with the trailer.
    fn seal(out: &mut Vec<u8>, results: usize) {
        let times = (out.len() - results) as u32;
        out.extend_from_slice(&times.to_le_bytes());
    }

    /// Splits a reply's payload; `None` if the trailer does not fit it.
    pub fn parse(payload: &'a [u8]) -> Option<Self> {
        let split = payload.len().checked_sub(4)?;
        let (body, trailer) = payload.split_at(split);
        let times = u32::from_le_bytes(trailer.try_into().ok()?) as usize;
        let (results, times) = body.split_at(body.len().checked_sub(times)?);
        Some(ChunkLayout { results, times })
    }
}

// Panic capture, all of it: a task's panic is caught where it runs (above)
// and reported as a result; the hook only remembers where it happened.

thread_local! {
    static LAST_PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Panics in tasks are reported as results, so the hook only remembers where.
pub(crate) fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        LAST_PANIC_LOCATION.with(|slot| *slot.borrow_mut() = location);
    }));
}

/// The message a panic was raised with.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Turns a caught panic into the failure sent to the supervisor.
pub(crate) fn panic_failure(payload: Box<dyn Any + Send>) -> WireFailure {
    let message = panic_message(&*payload);
    let location = LAST_PANIC_LOCATION.with(|slot| slot.borrow_mut().take());
    WireFailure::Panicked { message, location }
}

/// What a worker runs once, before its first task, to make the state its
/// tasks borrow (load a model, open a connection): Python's
/// `initializer` and `initargs`. `#[procpool::initializer]` implements it
/// for a plain function; [`PoolBuilder::initializer`](crate::PoolBuilder::initializer)
/// gives it to a pool with its arguments, which travel in each worker's
/// handshake. A task borrows the state as its first parameter.
///
/// ```
/// use procpool::{Failure, Initializer};
///
/// struct Offset;
/// impl Initializer for Offset {
///     const NAME: &'static str = "offset";
///     type Args = i64;
///     type State = i64;
///     fn run(by: i64) -> Result<i64, Failure> {
///         Ok(by)
///     }
/// }
/// procpool::register_initializer!(Offset);
///
/// #[procpool::task]
/// fn shift(by: &i64, x: i64) -> i64 {
///     x + by
/// }
///
/// procpool::init();
/// let pool = procpool::Pool::builder()
///     .processes(2)
///     .initializer(Offset, 100)
///     .build()
///     .unwrap();
/// assert_eq!(pool.map(shift, [1, 2]).unwrap(), [101, 102]);
/// assert_eq!(Offset::types(), "i64 -> i64");
/// ```
pub trait Initializer: 'static {
    /// The name the supervisor sends to the worker; unique in a program.
    const NAME: &'static str;
    /// What the supervisor passes to it (Python's `initargs`).
    type Args: Serialize + DeserializeOwned;
    /// What it makes, kept by the worker for its tasks to borrow.
    type State: 'static;
    /// Makes the state, once in each worker (replacements included).
    ///
    /// # Errors
    ///
    /// A [`Failure`] fails the worker's start: `build()` fails with
    /// [`PoolError::Initializer`](crate::PoolError::Initializer), naming the
    /// worker's PID and this message, and so does the call during which a
    /// replacement's initializer fails.
    fn run(args: Self::Args) -> Result<Self::State, Failure>;

    /// Its argument and state types, as `args -> state`: with
    /// [`NAME`](Self::NAME), its identity, checked by the worker.
    fn types() -> String {
        format!(
            "{} -> {}",
            std::any::type_name::<Self::Args>(),
            std::any::type_name::<Self::State>()
        )
    }
}

thread_local! {
    /// The state this worker's initializer made, and its type's name. It
    /// lives as long as the worker (leaked once); tasks run on the thread
    /// that serves, which is the thread that made it.
    static STATE: std::cell::Cell<Option<(&'static dyn Any, &'static str)>> =
        const { std::cell::Cell::new(None) };
}

/// Decodes `args` for `I`, runs it (catching a panic), and keeps its state
/// for [`worker_state`]; the error is the message for the supervisor.
pub(crate) fn run_initializer<I: Initializer>(args: &[u8]) -> Result<(), String> {
    let args = codec::decode_exact::<I::Args>(args)
        .map_err(|e| format!("its arguments do not decode: {e}"))?;
    match panic::catch_unwind(AssertUnwindSafe(|| I::run(args))) {
        Ok(Ok(state)) => {
            let state: &'static dyn Any = Box::leak(Box::new(state));
            STATE.set(Some((state, std::any::type_name::<I::State>())));
            Ok(())
        }
        Ok(Err(failure)) => Err(failure.0),
        Err(payload) => Err(match panic_failure(payload) {
            WireFailure::Panicked {
                message,
                location: Some(at),
            } => format!("panicked at {at}: {message}"),
            WireFailure::Panicked { message, .. } | WireFailure::Failed(message) => {
                format!("panicked: {message}")
            }
        }),
    }
}

/// The state of type `S` that this worker's initializer made, for a task
/// that borrows it (`#[procpool::task] fn predict(model: &Model, row: Row)`
/// calls this).
///
/// # Errors
///
/// A [`Failure`] of that input when the worker has no state of type `S`:
/// its pool has no initializer, or one that makes another type.
#[doc(hidden)]
pub fn worker_state<S: 'static>() -> Result<&'static S, Failure> {
    let wanted = std::any::type_name::<S>();
    match STATE.get() {
        Some((state, made)) => state.downcast_ref::<S>().ok_or_else(|| {
            Failure::msg(format!(
                "this task borrows a state of type {wanted}, but the pool's initializer makes a {made}"
            ))
        }),
        None => Err(Failure::msg(format!(
            "this task borrows a state of type {wanted}, but the pool has no initializer to make one \
             (Pool::builder().initializer(...))"
        ))),
    }
}
