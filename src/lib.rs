//! procpool: Python's `multiprocessing.Pool` for Rust, with real OS processes.
//!
//! A supervisor starts N copies of a worker program (by default itself),
//! sends them tasks by name with serde-encoded inputs over `ipc-channel`, and
//! gives back results in input order, each tagged with its index, the PID of
//! the worker that ran it, and its timing. A worker that panics, crashes or
//! stalls costs one result an error, never the pool.
//!
//! ```
//! #[procpool::task]
//! fn square(x: i64) -> i64 {
//!     x * x
//! }
//!
//! fn main() -> Result<(), procpool::PoolError> {
//!     procpool::init(); // a worker is this program started again: it serves here
//!     let pool = procpool::Pool::new(2)?;
//!     assert_eq!(pool.map(square, [1, 2, 3])?, [1, 4, 9]);
//!     // Each output tagged with its index and the worker that ran it:
//!     for outcome in pool.map_outcomes(square, [1, 2, 3])? {
//!         println!("{} -> {:?} (pid {})", outcome.index, outcome.result, outcome.pid);
//!     }
//!     Ok(())
//! }
//! ```
#![deny(missing_docs, missing_debug_implementations)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The pool stands on Linux: workers die with their supervisor by the
// parent-death signal (prctl), and it reads /proc and the monotonic clock
// every process of the machine shares.
#[cfg(not(target_os = "linux"))]
compile_error!("procpool runs on Linux only: it needs prctl(PR_SET_PDEATHSIG) and /proc");

// The pool core: private modules, exported through the list below.
mod backend;
mod callback;
mod chunks;
mod driver;
mod error;
mod events;
mod outcome;
mod pool;
mod progress;
mod registry;
// Reusable shared-memory regions for large frames.
mod region;
mod task;
mod worker;

// The wire protocol, the codec and the platform calls are private; this
// crate's own tests reach them through the `test-support` feature.
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod codec;
#[cfg(not(feature = "test-support"))]
mod codec;
#[cfg(feature = "test-support")]
#[doc(hidden)]
#[allow(missing_debug_implementations)]
pub mod protocol;
#[cfg(not(feature = "test-support"))]
mod protocol;
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod sys;
#[cfg(not(feature = "test-support"))]
mod sys;

#[cfg(feature = "mpi")]
pub mod mpi;
pub mod signal;

pub use backend::{MpiRank, WorkerInfo};
pub use chunks::auto_chunksize;
pub use error::{MapError, PoolError, TaskError};
pub use events::PoolEvent;
pub use outcome::Outcome;
pub use pool::{
    AsCompleted, Handle, Imap, ImapOutcomes, MapHandle, Pool, PoolBuilder, as_completed, wait_any,
};
pub use progress::Progress;
pub use sys::ExitCause;
pub use task::{Failure, Initializer, Task};
pub use worker::{at_exit, init};

/// Makes a plain function a task: `#[procpool::task] fn square(x: i64) ->
/// i64` defines `square`, a value that [`Pool::map`] and the other calls
/// take (`pool.map(square, 0..6)`), registered at link time under its module
/// path and name.
///
/// - Several parameters make the input a tuple, as Python's `starmap`.
/// - A function returning `Result<T, E>` with `E: Display` fails that input
///   with the error's message ([`TaskError::Failed`]); a panic is
///   [`TaskError::Panicked`], as for any task.
/// - `#[procpool::task(name = "square")]` gives it a name of its own (a
///   stable name for another program's workers).
/// - A first parameter that is a reference, `fn predict(model: &Model,
///   row: Row)`, borrows the state the pool's [`initializer`] made in this
///   worker; the input is the rest (see [`PoolBuilder::initializer`]).
/// - `square.call(x)` runs the function here, as a plain call.
///
/// ```
/// #[procpool::task]
/// fn add(a: i64, b: i64) -> i64 {
///     a + b
/// }
///
/// #[procpool::task(name = "parse")]
/// fn parse(text: String) -> Result<u32, std::num::ParseIntError> {
///     text.parse()
/// }
///
/// procpool::init();
/// let pool = procpool::Pool::new(2).unwrap();
/// assert_eq!(pool.map(add, [(1, 2), (3, 4)]).unwrap(), [3, 7]);
/// let outcomes = pool.map_outcomes(parse, ["7".to_string(), "x".to_string()]).unwrap();
/// assert_eq!(outcomes[0].result, Ok(7));
/// assert_eq!(
///     outcomes[1].result.as_ref().unwrap_err().to_string(),
///     "failed: invalid digit found in string"
/// );
/// assert_eq!(add.call(2, 3), 5);
/// ```
pub use procpool_macros::task;

/// Makes a plain function an [`Initializer`]: `#[procpool::initializer] fn
/// load_model(path: String) -> Result<Model, E>` defines `load_model`, a
/// value that [`PoolBuilder::initializer`] takes with its arguments (several
/// parameters take a tuple). It runs once in each worker; what it returns
/// is the state that tasks borrow. An `Err` (with `E: Display`) or a panic
/// fails the worker's start, and the pool's.
///
/// ```
/// #[procpool::initializer]
/// fn make_greeting(word: String, times: usize) -> String {
///     word.repeat(times)
/// }
///
/// #[procpool::task]
/// fn greet(greeting: &String, name: String) -> String {
///     format!("{greeting}, {name}")
/// }
///
/// procpool::init();
/// let pool = procpool::Pool::builder()
///     .processes(1)
///     .initializer(make_greeting, ("ho".to_string(), 2))
///     .build()
///     .unwrap();
/// assert_eq!(pool.map(greet, ["Ann".to_string()]).unwrap(), ["hoho, Ann"]);
/// assert_eq!(greet.call(&"hi".to_string(), "Bo".to_string()), "hi, Bo");
/// ```
pub use procpool_macros::initializer;

/// Makes `main` begin with [`init`], so a worker runs none of it.
///
/// ```
/// #[procpool::task]
/// fn square(x: i64) -> i64 {
///     x * x
/// }
///
/// #[procpool::main]
/// fn main() {
///     let pool = procpool::Pool::new(2).unwrap();
///     assert_eq!(pool.map(square, 0..3).unwrap(), [0, 1, 4]);
/// }
/// ```
pub use procpool_macros::main;

/// Registers a [`Task`] implemented by hand, so this program's workers
/// serve it (`#[procpool::task]` functions are registered by the macro).
///
/// ```
/// use procpool::{Failure, Task};
///
/// struct Cube;
/// impl Task for Cube {
///     const NAME: &'static str = "cube";
///     type Input = i64;
///     type Output = i64;
///     fn run(x: i64) -> Result<i64, Failure> {
///         Ok(x * x * x)
///     }
/// }
/// procpool::register!(Cube);
///
/// procpool::init();
/// let pool = procpool::Pool::new(1).unwrap();
/// assert_eq!(pool.map(Cube, [2, 3]).unwrap(), [8, 27]);
/// ```
#[macro_export]
macro_rules! register {
    ($task:ty) => {
        const _: () = {
            #[$crate::__private::linkme::distributed_slice($crate::__private::TASKS)]
            #[linkme(crate = $crate::__private::linkme)]
            static ENTRY: $crate::__private::TaskEntry =
                $crate::__private::TaskEntry::of::<$task>();
        };
    };
}

/// Registers an [`Initializer`] implemented by hand, so this program's
/// workers can run it (`#[procpool::initializer]` functions are registered
/// by the macro). See [`Initializer`] for an example.
///
/// ```
/// struct Nothing;
/// impl procpool::Initializer for Nothing {
///     const NAME: &'static str = "nothing";
///     type Args = ();
///     type State = ();
///     fn run((): ()) -> Result<(), procpool::Failure> {
///         Ok(())
///     }
/// }
/// procpool::register_initializer!(Nothing);
/// ```
#[macro_export]
macro_rules! register_initializer {
    ($init:ty) => {
        const _: () = {
            #[$crate::__private::linkme::distributed_slice($crate::__private::INITIALIZERS)]
            #[linkme(crate = $crate::__private::linkme)]
            static ENTRY: $crate::__private::InitEntry =
                $crate::__private::InitEntry::of::<$init>();
        };
    };
}

/// Lets the `#[test]` functions of this crate (a library with no binary
/// included) build pools: the test harness is then the worker program, run
/// with only the hidden test `procpool_test_worker` that this adds, which
/// serves. Write it once, at the crate's root or in a test module; outside
/// `cfg(test)` it adds nothing. (The tests below run in a crate's `cargo
/// test`, not here: see `.ci/library-test-support`.)
///
/// ```
/// #[cfg(test)]
/// mod tests {
///     procpool::test_support!();
///
///     #[procpool::task]
///     fn square(x: i64) -> i64 {
///         x * x
///     }
///
///     #[test]
///     fn squares_on_a_pool() {
///         let pool = procpool::Pool::new(2).unwrap();
///         assert_eq!(pool.map(square, 0..4).unwrap(), [0, 1, 4, 9]);
///     }
/// }
/// ```
#[macro_export]
#[allow(clippy::test_attr_in_doctest)]
macro_rules! test_support {
    () => {
        /// Serves as a pool's worker when the harness runs it as one; passes
        /// at once otherwise.
        #[cfg(test)]
        #[test]
        fn procpool_test_worker() {
            $crate::init();
        }

        #[cfg(test)]
        const _: () = {
            #[$crate::__private::linkme::distributed_slice($crate::__private::TEST_WORKERS)]
            #[linkme(crate = $crate::__private::linkme)]
            static WORKER: &'static str = ::core::module_path!();
        };
    };
}

/// What the macros expand to; not an API.
#[doc(hidden)]
pub mod __private {
    pub use crate::registry::{INITIALIZERS, InitEntry, TASKS, TEST_WORKERS, TaskEntry};
    pub use crate::task::worker_state;
    pub use linkme;
}

/// The library guide, `docs/library.md`: its examples (one for each of
/// Python's calls) run with the crate's doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/library.md")]
pub struct LibraryGuide;

// The macros name this crate `::procpool`, here too.
extern crate self as procpool;

/// Tasks and set-up for this crate's doctests: each doctest is its own
/// program and its own worker, as a user's program is.
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod doctest {
    use crate::Pool;

    // The names the crate's doctests and tests use.
    pub use self::{bytesum as ByteSum, sleep as Sleep, square as Square};

    /// `x * x`; overflow is a failure.
    #[crate::task]
    pub fn square(x: i64) -> Result<i64, String> {
        x.checked_mul(x)
            .ok_or_else(|| format!("{x} squared overflows"))
    }

    /// Sleeps for its input in milliseconds and returns it.
    #[crate::task]
    pub fn sleep(ms: u64) -> u64 {
        std::thread::sleep(std::time::Duration::from_millis(ms));
        ms
    }

    /// The sum of a buffer's bytes: a task whose input is large.
    #[crate::task]
    pub fn bytesum(bytes: serde_bytes::ByteBuf) -> u64 {
        bytes.iter().map(|&b| b as u64).sum()
    }

    /// Serves when this doctest runs as a worker.
    pub fn serve() {
        crate::init();
    }

    /// Serves when run as a worker, else a pool of `processes` workers that
    /// are this doctest's program.
    pub fn pool(processes: usize) -> Pool {
        serve();
        Pool::builder()
            .processes(processes)
            .build()
            .expect("a pool for a doctest")
    }
}
