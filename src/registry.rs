//! The tasks this program knows: every `#[procpool::task]` function and
//! every [`register!`](crate::register)ed [`Task`], collected at link time
//! (`linkme`), so there is no list to keep in sync with the code; and its
//! initializers (`#[procpool::initializer]`), collected the same way.
//!
//! A task's identity is its name and the description of its input and
//! output types ([`Task::types`]); a worker tells its supervisor both in the
//! handshake, and a name whose types differ on the two sides stops the pool
//! before any input is sent.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use linkme::distributed_slice;

use crate::codec::CodecError;
use crate::error::PoolError;
use crate::protocol::{InitCall, TaskSignature};
use crate::task::{Initializer, Task, run_chunk, run_initializer};

/// Runs a chunk of encoded inputs and appends encoded results to `out`
/// (timed or not); returns when the chunk started, in
/// [`monotonic_ns`](crate::sys::monotonic_ns).
pub(crate) type ChunkFn = fn(&[u8], u32, bool, &mut Vec<u8>) -> Result<u64, CodecError>;

/// One registered task, as [`register!`](crate::register) makes it.
#[doc(hidden)]
pub struct TaskEntry {
    name: &'static str,
    types: fn() -> String,
    run: ChunkFn,
}

impl TaskEntry {
    /// The entry of `T`.
    pub const fn of<T: Task>() -> TaskEntry {
        TaskEntry {
            name: T::NAME,
            types: T::types,
            run: run_chunk::<T>,
        }
    }
}

impl fmt::Debug for TaskEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, (self.types)())
    }
}

/// Every task linked into this program.
#[doc(hidden)]
#[distributed_slice]
pub static TASKS: [TaskEntry];

/// One registered initializer, as
/// [`register_initializer!`](crate::register_initializer) makes it.
#[doc(hidden)]
pub struct InitEntry {
    name: &'static str,
    types: fn() -> String,
    run: fn(&[u8]) -> Result<(), String>,
}

impl InitEntry {
    /// The entry of `I`.
    pub const fn of<I: Initializer>() -> InitEntry {
        InitEntry {
            name: I::NAME,
            types: I::types,
            run: run_initializer::<I>,
        }
    }
}

impl fmt::Debug for InitEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, (self.types)())
    }
}

/// Every initializer linked into this program.
#[doc(hidden)]
#[distributed_slice]
pub static INITIALIZERS: [InitEntry];

/// Runs the initializer a supervisor asked for in the handshake, after
/// checking that this program has it with the same types; the error is
/// the message for the supervisor.
pub(crate) fn initialize(call: &InitCall) -> Result<(), String> {
    let mut found = INITIALIZERS.iter().filter(|entry| entry.name == call.name);
    let entry = found
        .next()
        .ok_or_else(|| "this worker program has no such initializer".to_string())?;
    if found.next().is_some() {
        return Err("this worker program has two initializers of this name".to_string());
    }
    let types = (entry.types)();
    if types != call.types {
        return Err(format!(
            "it has types {} in the supervisor but {types} in the worker program",
            call.types
        ));
    }
    (entry.run)(&call.args)
}

/// The test that serves as a worker in a test harness, by its path in the
/// harness (`procpool::test_support!()` adds it): at most one.
#[doc(hidden)]
#[distributed_slice]
pub static TEST_WORKERS: [&'static str];

/// The arguments that make this program's test harness run only its
/// worker test, if it is a harness with one (`procpool::test_support!()`);
/// `module` is the macro's `module_path!()`, whose first part (the crate)
/// the harness leaves out of its test names.
pub(crate) fn test_worker_args() -> Option<Vec<String>> {
    let module = TEST_WORKERS.first()?;
    let name = match module.split_once("::") {
        Some((_, path)) => format!("{path}::procpool_test_worker"),
        None => "procpool_test_worker".to_string(),
    };
    Some(vec![
        name,
        "--exact".into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
    ])
}

/// The linked tasks by name, checked once: two tasks of one name are an
/// error, since a worker could not tell which one a supervisor means.
pub(crate) struct Registry {
    tasks: BTreeMap<&'static str, &'static TaskEntry>,
}

impl Registry {
    /// This program's tasks.
    ///
    /// # Errors
    ///
    /// [`PoolError::DuplicateTask`] when two tasks share a name.
    pub fn linked() -> Result<&'static Registry, PoolError> {
        static LINKED: OnceLock<Result<Registry, (String, String, String)>> = OnceLock::new();
        match LINKED.get_or_init(|| Registry::of(&TASKS)) {
            Ok(registry) => Ok(registry),
            Err((name, first, second)) => Err(PoolError::DuplicateTask {
                name: name.clone(),
                first: first.clone(),
                second: second.clone(),
            }),
        }
    }

    fn of(entries: &'static [TaskEntry]) -> Result<Registry, (String, String, String)> {
        let mut tasks = BTreeMap::new();
        for entry in entries {
            if let Some(first) = tasks.insert(entry.name, entry) {
                return Err((entry.name.to_string(), (first.types)(), (entry.types)()));
            }
        }
        Ok(Registry { tasks })
    }

    /// The name and types of every task, for the handshake.
    pub fn signatures(&self) -> Vec<TaskSignature> {
        self.tasks
            .values()
            .map(|entry| TaskSignature {
                name: entry.name.to_string(),
                types: (entry.types)(),
            })
            .collect()
    }

    /// The registered names, sorted.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.tasks.keys().copied()
    }

    /// The chunk runner of the task `name`.
    pub fn handler(&self, name: &str) -> Option<ChunkFn> {
        self.tasks.get(name).map(|entry| entry.run)
    }

    /// Checks a worker's tasks against ours: a name both know must have the
    /// same types on both sides.
    ///
    /// # Errors
    ///
    /// [`PoolError::TaskTypes`] for the first task whose types differ.
    pub fn check(
        &self,
        worker: &[TaskSignature],
        program: &std::path::Path,
    ) -> Result<(), PoolError> {
        for theirs in worker {
            if let Some(ours) = self.tasks.get(theirs.name.as_str()) {
                let here = (ours.types)();
                if here != theirs.types {
                    return Err(PoolError::TaskTypes {
                        name: theirs.name.clone(),
                        here,
                        there: theirs.types.clone(),
                        program: program.to_path_buf(),
                    });
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.tasks.values()).finish()
    }
}
