//! The public [`Pool`], its [`PoolBuilder`], and the typed calls on it:
//! `map`, `imap`, `imap_unordered`, `apply`, `submit`.

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use crate::backend::{Backend, Choice, WorkerInfo};
use crate::backend::{Body, CallId, Config, Delivery, Encoded};
use crate::chunks::{AUTO_CHUNK_BYTES, Feed, Feeder, auto_chunksize};
use crate::codec;
use crate::driver::{Link, READY, Settled};
use crate::error::{MapError, PoolError, TaskError};
use crate::outcome::{Outcome, unpack, unpack_values};
use crate::progress::{Progress, Report, Tally};
use crate::protocol::InitCall;
use crate::signal::InterruptFlag;
use crate::task::{Initializer, Task};

/// Configures and builds a [`Pool`], as rayon's `ThreadPoolBuilder` does.
///
/// ```
/// # procpool::doctest::serve();
/// let pool = procpool::Pool::builder()
///     .processes(2)
///     .chunksize(4)
///     .build()
///     .unwrap();
/// assert_eq!(pool.pids().len(), 2);
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct PoolBuilder {
    processes: Option<usize>,
    program: Option<PathBuf>,
    startup_timeout: Duration,
    window: Option<usize>,
    tune_allocator: bool,
    pin_workers: bool,
    timeout: Option<Duration>,
    grace: Duration,
    retries: u32,
    max_tasks_per_child: Option<u64>,
    chunksize: Option<usize>,
    interrupt: Option<InterruptFlag>,
    initializer: Option<Result<InitCall, (String, String)>>,
    progress: Option<Report>,
    backend: Choice,
}

impl Default for PoolBuilder {
    fn default() -> Self {
        PoolBuilder {
            processes: None,
            program: None,
            startup_timeout: Duration::from_secs(10),
            window: None,
            tune_allocator: false,
            pin_workers: true,
            timeout: None,
            grace: Duration::from_millis(500),
            retries: 0,
            max_tasks_per_child: None,
            chunksize: None,
            interrupt: None,
            initializer: None,
            progress: None,
            backend: Choice::Local,
        }
    }
}

impl PoolBuilder {
    /// How many worker processes; default: the machine's available parallelism.
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n);
        self
    }

    /// The program to run as a worker; default: this program
    /// (`std::env::current_exe`). It must call
    /// [`init`](crate::init) first thing in `main`.
    /// Under `cargo test` the current program is the test harness, so tests
    /// name a real worker program here.
    pub fn worker_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = Some(program.into());
        self
    }

    /// How long a worker may take to start and shake hands (default 10 s).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// How many chunks each worker holds at once, so a worker never waits
    /// for the supervisor between chunks. Default: adaptive, 8 while chunks
    /// take under half a millisecond (the channel's latency then matters) and
    /// 2 otherwise (so long tasks are not queued behind each other); and
    /// none waits behind a running chunk that may be long (before any chunk
    /// came back, one of another task, or one running four times as long as
    /// chunks do), so a short call never waits for a long one while another
    /// worker could take it.
    pub fn window(mut self, chunks: usize) -> Self {
        self.window = Some(chunks);
        self
    }

    /// The longest one task may run; its worker is then stopped (SIGTERM, then
    /// SIGKILL after the grace period) and replaced.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long a stopped worker gets between SIGTERM and SIGKILL (default 0.5 s).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How many times a task whose worker died or timed out is tried again
    /// (default 0). A chunk whose worker dies is first split and retried one
    /// input at a time, so one poisonous input never takes its neighbours down.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Replaces each worker after it ran this many tasks, like Python's
    /// `maxtasksperchild`.
    pub fn max_tasks_per_child(mut self, tasks: u64) -> Self {
        self.max_tasks_per_child = Some(tasks);
        self
    }

    /// Inputs per message; default: automatic for `map` (as Python's), 1 for `imap`.
    pub fn chunksize(mut self, chunksize: usize) -> Self {
        self.chunksize = Some(chunksize);
        self
    }

    /// A flag that, once set to a signal number, stops the pool: calls return
    /// [`PoolError::Interrupted`]. See [`signal::install`](crate::signal::install).
    pub fn interrupt_flag(mut self, flag: InterruptFlag) -> Self {
        self.interrupt = Some(flag);
        self
    }

    /// Runs `init` with `args` once in each worker, replacements included,
    /// before its first task (Python's `initializer` and `initargs`); tasks
    /// borrow what it makes as their first parameter. The start-up timeout
    /// covers it. If it fails, `build()` fails with
    /// [`PoolError::Initializer`] (the worker's PID and the message); if it
    /// starts failing in a replacement, the pool stops and the call under
    /// way returns that error, instead of starting workers without end.
    ///
    /// ```
    /// use std::collections::HashMap;
    ///
    /// #[procpool::initializer]
    /// fn load_prices(currency: String) -> Result<HashMap<String, f64>, String> {
    ///     match currency.as_str() {
    ///         "EUR" => Ok(HashMap::from([("apple".into(), 0.5), ("pear".into(), 0.75)])),
    ///         other => Err(format!("no price list for {other}")),
    ///     }
    /// }
    ///
    /// #[procpool::task]
    /// fn price(prices: &HashMap<String, f64>, item: String) -> Result<f64, String> {
    ///     prices.get(&item).copied().ok_or(format!("no price for {item}"))
    /// }
    ///
    /// procpool::init();
    /// let pool = procpool::Pool::builder()
    ///     .processes(2)
    ///     .initializer(load_prices, "EUR".to_string())
    ///     .build()
    ///     .unwrap();
    /// let items = ["pear".to_string(), "apple".to_string()];
    /// assert_eq!(pool.map(price, items).unwrap(), [0.75, 0.5]);
    ///
    /// let error = procpool::Pool::builder()
    ///     .initializer(load_prices, "USD".to_string())
    ///     .build()
    ///     .unwrap_err();
    /// assert!(error.to_string().ends_with(": no price list for USD"), "{error}");
    /// ```
    pub fn initializer<I: Initializer>(mut self, init: I, args: I::Args) -> Self {
        let _ = init;
        let mut bytes = Vec::new();
        let call = match codec::encode_into(&args, &mut bytes) {
            Ok(()) => Ok(InitCall {
                name: I::NAME.to_string(),
                types: I::types(),
                args: serde_bytes::ByteBuf::from(bytes),
            }),
            Err(e) => Err((
                I::NAME.to_string(),
                format!("its arguments cannot be encoded: {e}"),
            )),
        };
        self.initializer = Some(call);
        self
    }

    /// Calls `report` as the results of each `map`, `map_outcomes`, `imap`
    /// or `imap_unordered` call come in (once per chunk of results), with
    /// how many are in, how many failed and the call's total when it is
    /// known: enough to draw a progress bar without writing the loop. It is
    /// called from inside the call, so it must not call the pool itself.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// # procpool::doctest::serve();
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// let pool = procpool::Pool::builder()
    ///     .processes(2)
    ///     .chunksize(2)
    ///     .on_progress(move |p| log.lock().unwrap().push(p))
    ///     .build()
    ///     .unwrap();
    /// pool.map_outcomes(procpool::doctest::Square, [1, 2, i64::MAX, 4]).unwrap();
    /// let last = *seen.lock().unwrap().last().unwrap();
    /// assert_eq!(last, procpool::Progress { done: 4, failed: 1, running: 0, total: Some(4) });
    /// ```
    pub fn on_progress(mut self, report: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Report(std::sync::Arc::new(report)));
        self
    }

    /// Runs the workers on the other ranks of this MPI job instead of local
    /// processes (feature `mpi`); see
    /// [`MpiRoot::init`](crate::backend::mpi::MpiRoot::init). The number of
    /// workers is then the call's size less one.
    #[cfg(feature = "mpi")]
    pub fn mpi(mut self, root: crate::backend::mpi::MpiRoot) -> Self {
        self.backend = Choice::Mpi(crate::backend::TakeOnce::new(root));
        self
    }

    /// Whether to tune glibc's allocator in this process, the supervisor
    /// (default off: it is the whole program's, so the program decides; the
    /// `procpool` command turns it on). ipc-channel allocates a buffer of
    /// about 200 KiB for every message it receives, and by default glibc
    /// returns it to the kernel after each message and faults it in again
    /// for the next, which doubles the cost of a round trip; and a large
    /// result vector is mapped fresh, and faulted in page by page, for every
    /// `map`. On, freed memory up to 64 MiB is kept and every block comes
    /// from the heap (`M_TRIM_THRESHOLD`, `M_MMAP_MAX`), so memory is
    /// reused. Worker processes, which do nothing but serve the pool, always
    /// tune it.
    pub fn tune_allocator(mut self, on: bool) -> Self {
        self.tune_allocator = on;
        self
    }

    /// Whether to bind each worker to a CPU of its own (default on). It
    /// applies only when the pool has no more workers than the CPUs this
    /// program may run on (its inherited set: `taskset`, a Slurm
    /// allocation, a cpuset), as MPI and OpenMP runtimes bind their ranks:
    /// workers then never wake on one CPU together nor migrate between
    /// CPUs, which for tasks of a millisecond is most of the difference to
    /// the ideal speedup. A replacement worker takes the CPU of the one it
    /// replaces. Turn it off when tasks start threads of their own, which
    /// would otherwise share their worker's one CPU.
    ///
    /// ```
    /// # procpool::doctest::serve();
    /// let pool = procpool::Pool::builder().processes(1).pin_workers(false).build().unwrap();
    /// assert_eq!(pool.pids().len(), 1);
    /// ```
    pub fn pin_workers(mut self, on: bool) -> Self {
        self.pin_workers = on;
        self
    }

    /// Starts the workers and waits for every handshake.
    ///
    /// # Errors
    ///
    /// [`PoolError::Zero`] for a setting of 0; if the program cannot be
    /// started, or a worker dies or stays silent before the start-up
    /// deadline. No worker is left running.
    pub fn build(self) -> Result<Pool, PoolError> {
        let zero = [
            ("processes", self.processes.map(|n| n as u64)),
            ("chunksize", self.chunksize.map(|n| n as u64)),
            ("window", self.window.map(|n| n as u64)),
            ("max_tasks_per_child", self.max_tasks_per_child),
        ];
        if let Some((setting, _)) = zero.into_iter().find(|(_, n)| *n == Some(0)) {
            return Err(PoolError::Zero { setting });
        }
        let processes = self.backend.processes(self.processes)?;
        let interrupt = self.interrupt.unwrap_or_default();
        let program = match self.program {
            Some(p) => p,
            None => {
                std::env::current_exe().map_err(|e| PoolError::os("cannot find this program", e))?
            }
        };
        let initializer = match self.initializer {
            Some(Err((name, message))) => {
                return Err(PoolError::Initializer {
                    name,
                    pid: None,
                    message,
                });
            }
            Some(Ok(call)) => Some(call),
            None => None,
        };
        let config = Config {
            processes,
            program,
            startup_timeout: self.startup_timeout,
            window: self.window,
            tune_allocator: self.tune_allocator,
            pin_workers: self.pin_workers,
            timeout: self.timeout,
            grace: self.grace,
            retries: self.retries,
            max_tasks_per_child: self.max_tasks_per_child,
            interrupt: Some(interrupt.clone()),
            initializer,
        };
        let backend = Backend::start(self.backend, config)?;
        let clock_zero = backend.book().epoch.instant;
        Ok(Pool {
            link: Arc::new(Link::start(backend)?),
            interrupt,
            closed: false.into(),
            clock_zero,
            processes,
            chunksize: self.chunksize,
            progress: self.progress,
        })
    }
}

/// A pool of worker processes, like Python's `multiprocessing.Pool`.
///
/// ```
/// # use procpool::doctest::Square;
/// # let pool = procpool::doctest::pool(2);
/// // let pool = procpool::Pool::new(2)?;   // in a program that serves workers
/// assert_eq!(pool.map(Square, 0..6).unwrap(), [0, 1, 4, 9, 16, 25]);
/// ```
///
/// One thread of the pool's own, the supervisor, starts and watches the
/// workers and sends them work; calls talk to it over channels. A pool is
/// `Send` and `Sync`, and calls from several threads proceed independently:
/// a short task is not held up behind another thread's long one.
///
/// Dropping a pool stops and reaps its workers (an idle pool asks them to
/// exit, a busy one kills them); handles on its tasks then say
/// [`PoolError::Closed`].
pub struct Pool {
    link: Arc<Link>,
    interrupt: InterruptFlag,
    /// Set by `close` and `terminate`: new calls are refused at once.
    closed: std::sync::atomic::AtomicBool,
    clock_zero: Instant,
    processes: usize,
    chunksize: Option<usize>,
    progress: Option<Report>,
}

impl Pool {
    /// A pool of `processes` workers running this program.
    ///
    /// # Errors
    ///
    /// As [`PoolBuilder::build`].
    pub fn new(processes: usize) -> Result<Pool, PoolError> {
        Pool::builder().processes(processes).build()
    }

    /// A builder with the defaults.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// How many workers the pool keeps.
    pub fn processes(&self) -> usize {
        self.processes
    }

    /// The process ids of the current workers, sorted.
    pub fn pids(&self) -> Vec<u32> {
        self.link.run(|d| d.backend.pids()).unwrap_or_default()
    }

    /// Every worker with its placement: the PID in an [`Outcome`], and on the
    /// MPI backend its rank and host.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        self.link.run(|d| d.backend.workers()).unwrap_or_default()
    }

    /// The zero of the pool's clock (when it was built): [`Outcome::started`]
    /// and the times of [`PoolEvent`](crate::PoolEvent)s are
    /// offsets from it.
    ///
    /// ```
    /// # let pool = procpool::doctest::pool(2);
    /// let outcome = pool.submit(procpool::doctest::Square, 3).unwrap().wait_outcome().unwrap();
    /// // The task ran after the pool started, and has ended by now.
    /// let ran_until = pool.clock_zero() + outcome.started() + outcome.elapsed();
    /// assert!(ran_until <= std::time::Instant::now());
    /// ```
    pub fn clock_zero(&self) -> Instant {
        self.clock_zero
    }

    /// How far a worker's clock may be off the supervisor's after it was
    /// moved onto it: zero on one machine, where every process reads the same
    /// monotonic clock; on MPI, the largest half round trip of the
    /// handshake's best clock exchange with any rank.
    pub fn clock_uncertainty(&self) -> Duration {
        self.link
            .run(|d| d.backend.clock_uncertainty())
            .unwrap_or_default()
    }

    /// Takes what the supervisor saw since the last call that no outcome
    /// tells: workers started and died, and attempts that ended without a
    /// result and were tried again. Also the number of events not kept
    /// (at most 100,000 wait between two calls).
    ///
    /// ```
    /// use procpool::PoolEvent;
    /// # let pool = procpool::doctest::pool(2);
    /// let (events, dropped) = pool.take_events();
    /// let started = events.iter().filter(|e| matches!(e, PoolEvent::WorkerStarted { .. })).count();
    /// assert_eq!((started, dropped), (2, 0));
    /// assert!(pool.take_events().0.is_empty());
    /// ```
    pub fn take_events(&self) -> (Vec<crate::events::PoolEvent>, u64) {
        self.link
            .run(|d| d.backend.take_events())
            .unwrap_or_default()
    }

    /// Stops the pool as a stop signal would: a running call returns
    /// [`PoolError::Interrupted`] (SIGINT) with what had finished (a map's
    /// [`MapError::finished`], an imap's outcomes before the error), and so
    /// does every later call. For a program with signal handlers of its own,
    /// or a thread that decides the work is over. (A handler may rather
    /// raise the [`InterruptFlag`] given to
    /// [`PoolBuilder::interrupt_flag`]: a store, safe in a signal handler.)
    ///
    /// ```
    /// # let pool = procpool::doctest::pool(1);
    /// pool.interrupt();
    /// let error = pool.map(procpool::doctest::Sleep, [10]).unwrap_err().error;
    /// assert!(matches!(error, procpool::PoolError::Interrupted { signal: libc::SIGINT }));
    /// ```
    pub fn interrupt(&self) {
        self.interrupt.raise(libc::SIGINT);
    }

    /// Runs `task` over every input and returns the outputs in input order,
    /// like Python's `pool.map`; the first input (in input order) whose task
    /// failed is the error. The chunk size is the pool's, or else automatic:
    /// Python's, at most 16,384 inputs and about 1 MiB of encoded inputs a
    /// chunk ([`auto_chunksize`](crate::auto_chunksize)). A task of several
    /// parameters maps over tuples (Python's `starmap`).
    ///
    /// ```
    /// # use procpool::doctest::Square;
    /// # let pool = procpool::doctest::pool(2);
    /// assert_eq!(pool.map(Square, 0..6).unwrap(), [0, 1, 4, 9, 16, 25]);
    /// let error = pool.map(Square, [2, i64::MAX, 3]).unwrap_err().error;
    /// assert!(matches!(error, procpool::PoolError::Task { index: 1, .. }));
    /// ```
    ///
    /// # Errors
    ///
    /// A [`MapError`] with the outputs before the first input that has
    /// none: [`PoolError::Task`] for a task that failed, or why the pool
    /// could not go on (interrupted, closed, workers that cannot be started).
    pub fn map<T: Task>(
        &self,
        task: T,
        inputs: impl IntoIterator<Item = T::Input>,
    ) -> Result<Vec<T::Output>, MapError<T::Output>> {
        let _ = task;
        let mut values = Vec::new();
        let take = |delivery, values: &mut _| unpack_values(delivery, values).map(|()| 0);
        match self.map_in_order::<T, _>(inputs, false, &mut values, take) {
            Ok(()) => Ok(values),
            Err(error) => Err(MapError {
                finished: values,
                error,
            }),
        }
    }

    /// Like [`map`](Self::map), but every input's [`Outcome`]: its output
    /// or error, the PID of the worker that ran it, its attempts and times.
    /// A failing task is not an error here but an `Err` in its outcome.
    ///
    /// Each reply is decoded straight into the returned vector when its turn
    /// comes, so a million outcomes are written once.
    ///
    /// ```
    /// # use procpool::doctest::Square;
    /// # let pool = procpool::doctest::pool(2);
    /// let outcomes = pool.map_outcomes(Square, [3, i64::MAX]).unwrap();
    /// assert_eq!(outcomes[0].result, Ok(9));
    /// assert!(outcomes[1].error().is_some());
    /// assert!(pool.pids().contains(&outcomes[0].pid));
    /// ```
    ///
    /// # Errors
    ///
    /// A [`MapError`] with every outcome that came in, in input order, when
    /// the pool cannot go on (interrupted, closed, workers that cannot be
    /// started).
    #[allow(
        clippy::type_complexity,
        reason = "the outcomes, or what finished of them"
    )]
    pub fn map_outcomes<T: Task>(
        &self,
        task: T,
        inputs: impl IntoIterator<Item = T::Input>,
    ) -> Result<Vec<Outcome<T::Output>>, MapError<Outcome<T::Output>>> {
        let _ = task;
        let mut outcomes = Vec::new();
        let result =
            self.map_in_order::<T, _>(inputs, true, &mut outcomes, |delivery, outcomes| {
                let mut failed = 0;
                unpack(delivery, &mut |outcome: Outcome<T::Output>| {
                    failed += u64::from(outcome.result.is_err());
                    outcomes.push(outcome);
                });
                Ok(failed)
            });
        match result {
            Ok(()) => Ok(outcomes),
            Err(error) => Err(MapError {
                finished: outcomes,
                error,
            }),
        }
    }

    /// The loop of `map` and `map_outcomes`: sends the inputs in chunks,
    /// keeping a bounded number out, and hands each delivery to `take` in
    /// input order, with `into` (sized for every input) to fill; `take` says
    /// how many of the delivery's tasks failed. When the
    /// pool stops, what came in is taken too: for outcomes (`timed`) past
    /// the gaps, for bare values up to the first gap.
    fn map_in_order<T: Task, R>(
        &self,
        inputs: impl IntoIterator<Item = T::Input>,
        timed: bool,
        into: &mut Vec<R>,
        mut take: impl FnMut(Delivery, &mut Vec<R>) -> Result<u64, PoolError>,
    ) -> Result<(), PoolError> {
        let inputs = inputs.into_iter();
        // The size of an iterator that knows it (a range, a vector) sets
        // the chunk size; any other is read into a vector first, as Python's
        // map does with an iterable that has no length.
        match inputs.size_hint() {
            (low, Some(high)) if low == high => {
                self.map_sized::<T, R>(inputs, low, timed, into, &mut take)
            }
            _ => {
                let inputs: Vec<T::Input> = inputs.collect();
                let len = inputs.len();
                self.map_sized::<T, R>(inputs.into_iter(), len, timed, into, &mut take)
            }
        }
    }

    fn map_sized<T: Task, R>(
        &self,
        inputs: impl Iterator<Item = T::Input>,
        len: usize,
        timed: bool,
        into: &mut Vec<R>,
        take: &mut impl FnMut(Delivery, &mut Vec<R>) -> Result<u64, PoolError>,
    ) -> Result<(), PoolError> {
        let mut feeder = Feeder::<T, _>::new(inputs, 1, timed);
        match self.chunksize {
            Some(chunksize) => feeder.chunksize = chunksize,
            None => {
                feeder.chunksize = auto_chunksize(len, self.processes);
                feeder.byte_limit = Some(AUTO_CHUNK_BYTES);
            }
        }
        // A size hint is a hint: a vector that grows past it stays correct.
        into.reserve_exact(len);
        // At most four chunks per worker are out (so at most as many inputs
        // as four full chunks each): large inputs, cut into small chunks by
        // bytes, are not all encoded before the first result is in.
        let max_chunks = self.processes * 4;
        // Where each chunk out ends (a chunk split after its worker died
        // comes back in several deliveries).
        let mut ends = VecDeque::new();
        let mut call = self.new_call::<T>(None)?;
        // Deliveries that came before their turn, by first index.
        let mut early: BTreeMap<u64, Delivery> = BTreeMap::new();
        let mut tally = Tally::new(self.progress.clone(), Some(len as u64));
        let mut done = 0u64;
        let mut exhausted = false;
        loop {
            while !exhausted && ends.len() < max_chunks {
                match feeder.next_chunk() {
                    Some(Feed::Ready(work)) => {
                        call.submit(work);
                        ends.push_back(feeder.sent);
                    }
                    Some(Feed::Failed(index, why)) => {
                        early.insert(index, unencodable(index, why));
                    }
                    None => exhausted = true,
                }
            }
            if exhausted && done == feeder.sent {
                return Ok(());
            }
            let next = match early.first_key_value() {
                Some((&first, _)) if first == done => None,
                _ => Some(call.next()),
            };
            match next {
                None => {}
                Some(Ok(delivery)) => {
                    early.insert(delivery.first, delivery);
                }
                Some(Err(error)) => {
                    // What came in before the error came before it on the channel.
                    for (first, delivery) in early {
                        if first != done && !timed {
                            break;
                        }
                        let count = u64::from(delivery.count);
                        done = first + count;
                        let failed = take(delivery, into)?;
                        tally.add(count, failed, feeder.sent);
                    }
                    return Err(error);
                }
            }
            while let Some(entry) = early.first_entry()
                && *entry.key() == done
            {
                let delivery = entry.remove();
                let count = u64::from(delivery.count);
                done += count;
                while ends.front().is_some_and(|&end| end <= done) {
                    ends.pop_front();
                }
                let failed = take(delivery, into)?;
                tally.add(count, failed, feeder.sent);
            }
        }
    }

    /// A new call for `task`, with its one chunk of `work` if it has one
    /// chunk only. (A task the workers lack, or a closed pool, is the error
    /// of its first wait.)
    fn new_call<T: Task>(&self, work: Option<Encoded>) -> Result<Call, PoolError> {
        // A stopped pool takes no new work.
        if let Some(signal) = self.interrupt.received() {
            return Err(PoolError::Interrupted { signal });
        }
        if self.closed.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(PoolError::Closed);
        }
        self.link.check_owner()?;
        let single = work.is_some();
        let (id, deliveries) = self.link.open(T::NAME, work);
        Ok(Call {
            link: Arc::clone(&self.link),
            id,
            deliveries,
            single,
            delivered: false,
        })
    }

    /// A lazy, ordered map, like Python's `imap`: inputs are read and sent
    /// only as results are taken, with a bounded look-ahead, so memory stays
    /// flat on endless input. Yields each output, or [`PoolError::Task`] for
    /// an input whose task failed (and the iteration goes on);
    /// [`outcomes`](Imap::outcomes) yields the [`Outcome`]s instead. If the
    /// input iterator panics, the panic comes out of the `next` after the
    /// outputs of the inputs before it (those of its own chunk are lost), as
    /// Python's `imap` raises the iterable's exception.
    ///
    /// ```
    /// # let pool = procpool::doctest::pool(2);
    /// let first: Vec<i64> = pool
    ///     .imap(procpool::doctest::Square, 0..)
    ///     .take(3)
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(first, [0, 1, 4]);
    /// ```
    pub fn imap<T: Task, I: IntoIterator<Item = T::Input>>(
        &self,
        task: T,
        inputs: I,
    ) -> Imap<'_, T, I::IntoIter> {
        Imap(Stream::new(self, task, inputs.into_iter(), true))
    }

    /// Like [`imap`](Self::imap), but yields outputs as they complete.
    ///
    /// ```
    /// # let pool = procpool::doctest::pool(2);
    /// let mut squares: Vec<i64> = pool
    ///     .imap_unordered(procpool::doctest::Square, 0..4)
    ///     .map(Result::unwrap)
    ///     .collect();
    /// squares.sort();
    /// assert_eq!(squares, [0, 1, 4, 9]);
    /// ```
    pub fn imap_unordered<T: Task, I: IntoIterator<Item = T::Input>>(
        &self,
        task: T,
        inputs: I,
    ) -> Imap<'_, T, I::IntoIter> {
        Imap(Stream::new(self, task, inputs.into_iter(), false))
    }

    /// Sends one task and returns a handle to wait on, like Python's
    /// `apply_async` (and `concurrent.futures`' `submit`). The handle owns
    /// its share of the pool: it can move to another thread, and the task
    /// runs whether or not anyone waits.
    ///
    /// ```
    /// # let pool = procpool::doctest::pool(2);
    /// let a = pool.submit(procpool::doctest::Square, 3).unwrap();
    /// let b = pool.submit(procpool::doctest::Square, 4).unwrap();
    /// let b = std::thread::spawn(move || b.wait().unwrap());
    /// assert_eq!(a.wait_outcome().unwrap().result, Ok(9));
    /// assert_eq!(b.join().unwrap(), 16);
    /// ```
    ///
    /// # Errors
    ///
    /// If the pool was closed or interrupted. (If its workers lack the
    /// task, waiting says so.)
    pub fn submit<T: Task>(&self, task: T, input: T::Input) -> Result<Handle<T>, PoolError> {
        let _ = task;
        let (call, settled) =
            match Feeder::<T, _>::new(std::iter::once(input), 1, true).next_chunk() {
                Some(Feed::Ready(work)) => (self.new_call::<T>(Some(work))?, None),
                Some(Feed::Failed(index, why)) => {
                    (self.new_call::<T>(None)?, Some(Ok(unencodable(index, why))))
                }
                None => unreachable!("one input makes one chunk"),
            };
        Ok(Handle {
            call,
            settled,
            task: PhantomData,
        })
    }

    /// Sends every input now and returns a handle on the whole map, like
    /// Python's `map_async`: the inputs are read and encoded at once, the
    /// results come in while the caller does other things, and
    /// [`MapHandle::wait`] gives what [`map`](Self::map) gives. Like
    /// [`Handle`], the handle is `Send` and `'static`, and dropping it
    /// cancels what has not run.
    ///
    /// ```
    /// # use procpool::doctest::Square;
    /// # let pool = procpool::doctest::pool(2);
    /// let squares = pool.map_async(Square, 0..6).unwrap();
    /// let failing = pool.map_async(Square, [2, i64::MAX]).unwrap();
    /// assert_eq!(squares.wait().unwrap(), [0, 1, 4, 9, 16, 25]);
    /// let outcomes = failing.wait_outcomes().unwrap();
    /// assert!(outcomes[1].error().is_some());
    /// ```
    ///
    /// # Errors
    ///
    /// If the pool was closed or interrupted.
    pub fn map_async<T: Task>(
        &self,
        task: T,
        inputs: impl IntoIterator<Item = T::Input>,
    ) -> Result<MapHandle<T>, PoolError> {
        let _ = task;
        let inputs: Vec<T::Input> = inputs.into_iter().collect();
        let len = inputs.len();
        let mut feeder = Feeder::<T, _>::new(inputs.into_iter(), 1, true);
        match self.chunksize {
            Some(chunksize) => feeder.chunksize = chunksize,
            None => {
                feeder.chunksize = auto_chunksize(len, self.processes);
                feeder.byte_limit = Some(AUTO_CHUNK_BYTES);
            }
        }
        let mut handle = MapHandle {
            call: self.new_call::<T>(None)?,
            len: len as u64,
            got: BTreeMap::new(),
            received: 0,
            stopped: None,
            task: PhantomData,
        };
        while let Some(chunk) = feeder.next_chunk() {
            match chunk {
                Feed::Ready(work) => handle.call.submit(work),
                Feed::Failed(index, why) => handle.take(Ok(unencodable(index, why))),
            }
        }
        Ok(handle)
    }

    /// Runs one task and waits for its output, like Python's `apply`.
    ///
    /// ```
    /// # let pool = procpool::doctest::pool(1);
    /// assert_eq!(pool.apply(procpool::doctest::Square, 7).unwrap(), 49);
    /// ```
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit) and [`Handle::wait`].
    pub fn apply<T: Task>(&self, task: T, input: T::Input) -> Result<T::Output, PoolError> {
        self.submit(task, input)?.wait()
    }

    /// Takes no new work; work already given still runs. Like Python's `close`.
    pub fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.link.run(|d| d.backend.close());
    }

    /// After [`close`](Self::close), waits for the queued work, for the
    /// workers to exit and for the callbacks on its handles
    /// ([`Handle::on_done`]) to run. Like Python's `join`.
    ///
    /// # Errors
    ///
    /// [`PoolError::NotClosed`] before [`close`](Self::close), as Python
    /// raises `ValueError`; otherwise if the pool was interrupted or no
    /// worker could be started to finish the queued work.
    ///
    /// ```
    /// # let pool = procpool::doctest::pool(1);
    /// assert!(matches!(pool.join(), Err(procpool::PoolError::NotClosed)));
    /// pool.close();
    /// pool.join().unwrap();
    /// ```
    pub fn join(&self) -> Result<(), PoolError> {
        self.link.run(|d| {
            if !d.backend.is_closed() {
                return Err(PoolError::NotClosed);
            }
            d.backend.join()
        })??;
        self.link.callbacks.wait_empty();
        Ok(())
    }

    /// Kills every worker now; unfinished tasks end as
    /// [`TaskError::Terminated`](crate::TaskError::Terminated) (those sent to
    /// a worker) or [`TaskError::Cancelled`](crate::TaskError::Cancelled)
    /// (those still queued). Like Python's `terminate`.
    pub fn terminate(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.link.run(|d| d.backend.terminate());
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.link.stop();
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the PIDs: Debug must never wait for the supervisor.
        f.debug_struct("Pool")
            .field("processes", &self.processes)
            .field("chunksize", &self.chunksize)
            .finish_non_exhaustive()
    }
}

/// One call's work in the pool (a map, an imap, a submit) and the channel
/// its deliveries come on; abandoned when dropped: its queued chunks are
/// dropped, and so are late replies.
struct Call {
    link: Arc<Link>,
    id: CallId,
    deliveries: Receiver<Settled>,
    /// One chunk only, which the supervisor forgets once it is delivered.
    single: bool,
    delivered: bool,
}

impl Call {
    /// Queues `work` for this call.
    fn submit(&self, work: Encoded) {
        self.link.submit(self.id, work);
    }

    /// Waits for the call's next delivery.
    fn next(&mut self) -> Result<Delivery, PoolError> {
        let settled = self.deliveries.recv().unwrap_or(Err(PoolError::Closed));
        self.note(settled)
    }

    /// Notes what came: after a single call's delivery there is nothing to abandon.
    fn note(&mut self, settled: Settled) -> Settled {
        self.delivered |= settled.is_ok();
        settled
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !(self.single && self.delivered) {
            self.link.abandon(self.id);
        }
    }
}

/// A handle on one submitted task (a future); see [`Pool::submit`]. It is
/// `Send` and `'static`: it may wait on any thread, after the call that
/// made it returned. Dropping it cancels the task if it has not started.
#[must_use = "a submitted task's result is lost unless the handle is waited on"]
pub struct Handle<T: Task> {
    call: Call,
    /// What settled the task, once it came (or was made here).
    settled: Option<Settled>,
    task: PhantomData<fn() -> T>,
}

impl<T: Task> Handle<T> {
    /// Waits for the task's output, like Python's `AsyncResult.get`.
    ///
    /// ```
    /// # let pool = procpool::doctest::pool(1);
    /// let handle = pool.submit(procpool::doctest::Square, i64::MAX).unwrap();
    /// assert!(matches!(handle.wait(), Err(procpool::PoolError::Task { index: 0, .. })));
    /// ```
    ///
    /// # Errors
    ///
    /// [`PoolError::Task`] if the task failed (or was cancelled); if the
    /// pool was interrupted, dropped, or cannot replace a dead worker.
    pub fn wait(self) -> Result<T::Output, PoolError> {
        self.wait_outcome()?.into_result()
    }

    /// Waits for the task's [`Outcome`]: its output or error, and the worker
    /// that ran it.
    ///
    /// ```
    /// # let pool = procpool::doctest::pool(1);
    /// let outcome = pool.submit(procpool::doctest::Square, 5).unwrap().wait_outcome().unwrap();
    /// assert_eq!((outcome.result, pool.pids()), (Ok(25), vec![outcome.pid]));
    /// ```
    ///
    /// # Errors
    ///
    /// If the pool was interrupted, dropped, or cannot replace a dead worker.
    pub fn wait_outcome(mut self) -> Result<Outcome<T::Output>, PoolError> {
        let delivery = match self.settled.take() {
            Some(settled) => settled?,
            None => self.call.next()?,
        };
        let mut outcome = None;
        unpack(delivery, &mut |o| outcome = Some(o));
        Ok(outcome.expect("a delivery of one input yields one outcome"))
    }

    /// Whether the task has settled (done, failed or cancelled), so that
    /// [`wait`](Self::wait) returns at once. Like Python's `ready()`.
    ///
    /// ```
    /// # let pool = procpool::doctest::pool(1);
    /// let mut handle = pool.submit(procpool::doctest::Sleep, 50).unwrap();
    /// assert!(!handle.is_ready());
    /// assert!(handle.wait_timeout(std::time::Duration::from_secs(10)));
    /// assert!(handle.is_ready());
    /// ```
    pub fn is_ready(&mut self) -> bool {
        if self.settled.is_none() {
            self.settled = match self.call.deliveries.try_recv() {
                Ok(settled) => Some(self.call.note(settled)),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => Some(Err(PoolError::Closed)),
            };
        }
        self.settled.is_some()
    }

    /// Waits at most `timeout` for the task to settle; whether it did.
    /// Like Python's `wait(timeout)`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        if self.settled.is_none() {
            self.settled = match self.call.deliveries.recv_timeout(timeout) {
                Ok(settled) => Some(self.call.note(settled)),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Err(PoolError::Closed)),
            };
        }
        self.settled.is_some()
    }

    /// The task's output if it has settled, without waiting; else the
    /// handle back.
    ///
    /// ```
    /// # let pool = procpool::doctest::pool(1);
    /// let mut handle = pool.submit(procpool::doctest::Square, 6).unwrap();
    /// let output = loop {
    ///     match handle.try_wait() {
    ///         Ok(output) => break output,
    ///         Err(pending) => handle = pending,
    ///     }
    /// };
    /// assert_eq!(output.unwrap(), 36);
    /// ```
    ///
    /// # Errors
    ///
    /// The handle itself while the task has not settled.
    #[allow(
        clippy::result_large_err,
        reason = "the handle itself comes back, not an error"
    )]
    pub fn try_wait(mut self) -> Result<Result<T::Output, PoolError>, Self> {
        match self.is_ready() {
            true => Ok(self.wait()),
            false => Err(self),
        }
    }

    /// Runs `callback` with the task's output (or error) once the task
    /// settles, and returns at once: Python's `callback=` and
    /// `error_callback=` in one closure, `concurrent.futures`'
    /// `add_done_callback`. Callbacks run one at a time on a thread of the
    /// process's own, in the order their tasks settle, each exactly once
    /// (with [`PoolError::Closed`] if the pool is dropped first); keep them
    /// short, as Python says of its own. [`Pool::join`] waits for them.
    ///
    /// ```
    /// # let pool = procpool::doctest::pool(1);
    /// let (sender, results) = std::sync::mpsc::channel();
    /// for x in [3, i64::MAX] {
    ///     let sender = sender.clone();
    ///     let handle = pool.submit(procpool::doctest::Square, x).unwrap();
    ///     handle.on_done(move |result| sender.send(result.is_ok()).unwrap());
    /// }
    /// assert_eq!([results.recv().unwrap(), results.recv().unwrap()], [true, false]);
    /// ```
    pub fn on_done(self, callback: impl FnOnce(Result<T::Output, PoolError>) + Send + 'static) {
        let pending = Arc::clone(&self.call.link.callbacks);
        crate::callback::when_ready(&pending, self, Self::is_ready, |handle| {
            callback(handle.wait());
        });
    }

    /// Cancels the task if it has not started: true exactly when it never
    /// will run, and [`wait`](Self::wait) then gives
    /// [`TaskError::Cancelled`]. A task that runs or ran is left alone
    /// (false), and so is one already sent to a worker that has another
    /// before it ([`window`](PoolBuilder::window)). Like Python's
    /// `cancel()`.
    ///
    /// ```
    /// # procpool::doctest::serve();
    /// let pool = procpool::Pool::builder().processes(1).window(1).build().unwrap();
    /// let running = pool.submit(procpool::doctest::Sleep, 100).unwrap();
    /// let mut queued = pool.submit(procpool::doctest::Sleep, 100).unwrap();
    /// assert!(queued.cancel());
    /// assert!(matches!(
    ///     queued.wait(),
    ///     Err(procpool::PoolError::Task { error: procpool::TaskError::Cancelled, .. })
    /// ));
    /// assert_eq!(running.wait().unwrap(), 100);
    /// ```
    pub fn cancel(&mut self) -> bool {
        if self.is_ready() {
            return false;
        }
        let id = self.call.id;
        let withdrawn = matches!(
            self.call.link.run(move |d| d.backend.withdraw(id)),
            Ok(true)
        );
        if withdrawn {
            self.settled = Some(Ok(cancelled(0)));
        }
        withdrawn
    }
}

impl<T: Task> std::fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("task", &T::NAME)
            .field("call", &self.call.id)
            .field("settled", &self.settled.is_some())
            .finish()
    }
}

/// Waits until any of `handles` has settled and returns its position, like
/// `concurrent.futures.wait(..., return_when=FIRST_COMPLETED)`; `None` for
/// no handles. The handles may be of several pools.
///
/// ```
/// use procpool::doctest::Sleep;
/// # let pool = procpool::doctest::pool(2);
/// let mut handles = vec![pool.submit(Sleep, 2_000).unwrap(), pool.submit(Sleep, 1).unwrap()];
/// assert_eq!(procpool::wait_any(&mut handles), Some(1));
/// ```
pub fn wait_any<T: Task>(handles: &mut [Handle<T>]) -> Option<usize> {
    if handles.is_empty() {
        return None;
    }
    loop {
        let seen = READY.generation();
        if let Some(ready) = handles.iter_mut().position(Handle::is_ready) {
            return Some(ready);
        }
        READY.wait_past(seen, None);
    }
}

/// Yields the handles as they settle, each ready to
/// [`wait`](Handle::wait) on at once, like `concurrent.futures.as_completed`.
///
/// ```
/// use procpool::doctest::Sleep;
/// # let pool = procpool::doctest::pool(2);
/// let handles = [300, 1].map(|ms| pool.submit(Sleep, ms).unwrap());
/// let order: Vec<u64> = procpool::as_completed(handles).map(|h| h.wait().unwrap()).collect();
/// assert_eq!(order, [1, 300]);
/// ```
pub fn as_completed<T: Task>(handles: impl IntoIterator<Item = Handle<T>>) -> AsCompleted<T> {
    AsCompleted {
        pending: handles.into_iter().collect(),
    }
}

/// The iterator of [`as_completed`].
#[must_use = "as_completed yields nothing unless iterated"]
#[derive(Debug)]
pub struct AsCompleted<T: Task> {
    pending: Vec<Handle<T>>,
}

impl<T: Task> Iterator for AsCompleted<T> {
    type Item = Handle<T>;

    fn next(&mut self) -> Option<Handle<T>> {
        let ready = wait_any(&mut self.pending)?;
        Some(self.pending.swap_remove(ready))
    }
}

/// A handle on a whole map sent at once; see [`Pool::map_async`].
#[must_use = "a map's results are lost unless its handle is waited on"]
pub struct MapHandle<T: Task> {
    call: Call,
    len: u64,
    /// The deliveries in, by first index.
    got: BTreeMap<u64, Delivery>,
    /// How many inputs they hold.
    received: u64,
    /// Why the pool stopped before every delivery came.
    stopped: Option<PoolError>,
    task: PhantomData<fn() -> T>,
}

impl<T: Task> MapHandle<T> {
    fn take(&mut self, settled: Settled) {
        match settled {
            Ok(delivery) => {
                self.received += u64::from(delivery.count);
                self.got.insert(delivery.first, delivery);
            }
            Err(error) => self.stopped = Some(error),
        }
    }

    fn settled(&self) -> bool {
        self.received == self.len || self.stopped.is_some()
    }

    fn wait_all(&mut self) {
        while !self.settled() {
            let settled = self.call.next();
            self.take(settled);
        }
    }

    /// Whether every input has settled (or the pool stopped), so that
    /// [`wait`](Self::wait) returns at once. Like Python's `ready()`.
    ///
    /// ```
    /// # let pool = procpool::doctest::pool(1);
    /// let mut sleeps = pool.map_async(procpool::doctest::Sleep, [50, 1]).unwrap();
    /// assert!(!sleeps.is_ready());
    /// assert!(sleeps.wait_timeout(std::time::Duration::from_secs(10)));
    /// assert!(sleeps.is_ready());
    /// ```
    pub fn is_ready(&mut self) -> bool {
        while !self.settled() {
            match self.call.deliveries.try_recv() {
                Ok(settled) => self.take(settled),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.take(Err(PoolError::Closed)),
            }
        }
        self.settled()
    }

    /// Waits at most `timeout` for every input to settle; whether they did.
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.settled() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.call.deliveries.recv_timeout(left) {
                Ok(settled) => self.take(settled),
                Err(RecvTimeoutError::Timeout) => return false,
                Err(RecvTimeoutError::Disconnected) => self.take(Err(PoolError::Closed)),
            }
        }
        true
    }

    /// Runs `callback` with what [`wait`](Self::wait) gives once every
    /// input has settled, and returns at once, like Python's `map_async`
    /// with `callback=` and `error_callback=`; see [`Handle::on_done`].
    ///
    /// ```
    /// # let pool = procpool::doctest::pool(2);
    /// let (sender, squares) = std::sync::mpsc::channel();
    /// let map = pool.map_async(procpool::doctest::Square, 0..4).unwrap();
    /// map.on_done(move |result| sender.send(result.unwrap()).unwrap());
    /// assert_eq!(squares.recv().unwrap(), [0, 1, 4, 9]);
    /// ```
    pub fn on_done(
        self,
        callback: impl FnOnce(Result<Vec<T::Output>, MapError<T::Output>>) + Send + 'static,
    ) {
        let pending = Arc::clone(&self.call.link.callbacks);
        crate::callback::when_ready(&pending, self, Self::is_ready, |map| {
            callback(map.wait());
        });
    }

    /// Waits for the map and gives what [`Pool::map`] gives: the outputs in
    /// input order.
    ///
    /// # Errors
    ///
    /// As [`Pool::map`]: the first failure, with the outputs before it.
    pub fn wait(mut self) -> Result<Vec<T::Output>, MapError<T::Output>> {
        self.wait_all();
        let mut values = Vec::with_capacity(self.len as usize);
        let mut done = 0;
        for (first, delivery) in std::mem::take(&mut self.got) {
            if first != done {
                break;
            }
            done += u64::from(delivery.count);
            if let Err(error) = unpack_values(delivery, &mut values) {
                return Err(MapError {
                    finished: values,
                    error,
                });
            }
        }
        match self.stopped.take() {
            Some(error) => Err(MapError {
                finished: values,
                error,
            }),
            None => Ok(values),
        }
    }

    /// Waits for the map and gives what [`Pool::map_outcomes`] gives: every
    /// input's [`Outcome`], in input order.
    ///
    /// # Errors
    ///
    /// As [`Pool::map_outcomes`]: why the pool stopped, with every outcome
    /// that came in.
    #[allow(
        clippy::type_complexity,
        reason = "the outcomes, or what finished of them"
    )]
    pub fn wait_outcomes(
        mut self,
    ) -> Result<Vec<Outcome<T::Output>>, MapError<Outcome<T::Output>>> {
        self.wait_all();
        let mut outcomes = Vec::with_capacity(self.len as usize);
        for delivery in std::mem::take(&mut self.got).into_values() {
            unpack(delivery, &mut |outcome| outcomes.push(outcome));
        }
        match self.stopped.take() {
            Some(error) => Err(MapError {
                finished: outcomes,
                error,
            }),
            None => Ok(outcomes),
        }
    }
}

impl<T: Task> std::fmt::Debug for MapHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapHandle")
            .field("task", &T::NAME)
            .field("inputs", &self.len)
            .field("settled", &self.received)
            .finish()
    }
}

/// The outcome of an input cancelled before it ran.
fn cancelled(index: u64) -> Delivery {
    settled_here(index, TaskError::Cancelled)
}

/// The outcome of an input that cannot be encoded.
fn unencodable(index: u64, message: String) -> Delivery {
    settled_here(index, TaskError::Encode { message })
}

/// The outcome of one input settled without a worker.
fn settled_here(index: u64, error: TaskError) -> Delivery {
    Delivery {
        first: index,
        count: 1,
        pid: 0,
        attempts: 0,
        started: Duration::ZERO,
        elapsed: Duration::ZERO,
        body: Body::Failed(error),
    }
}

/// The iterator of [`Pool::imap`] and [`Pool::imap_unordered`]: each
/// input's output, or [`PoolError::Task`] for one whose task failed.
///
/// Its length is exact when the inputs' is, so a progress bar shows a total
/// (indicatif's `.progress()`, or `.try_progress()` for inputs such as an
/// `i64` range that std gives an exact size hint but no `ExactSizeIterator`).
/// If the pool stops early (a signal, workers that cannot be started), it
/// ends before that length: the outputs that came in, then the error.
#[must_use = "imap does nothing until its iterator is consumed"]
pub struct Imap<'p, T: Task, I: Iterator<Item = T::Input>>(Stream<'p, T, I>);

/// An [`Imap`] that yields [`Outcome`]s; see [`Imap::outcomes`].
#[must_use = "imap does nothing until its iterator is consumed"]
pub struct ImapOutcomes<'p, T: Task, I: Iterator<Item = T::Input>>(Stream<'p, T, I>);

impl<'p, T: Task, I: Iterator<Item = T::Input>> Imap<'p, T, I> {
    /// Inputs per message (default: the pool's chunk size, else 1).
    ///
    /// ```
    /// # let pool = procpool::doctest::pool(1);
    /// let squares = pool.imap(procpool::doctest::Square, 0..10).chunksize(4);
    /// assert_eq!(squares.count(), 10);
    /// ```
    pub fn chunksize(mut self, chunksize: usize) -> Self {
        self.0.feeder.chunksize = chunksize.max(1);
        self
    }

    /// The most inputs sent or buffered but not yet yielded; default: four
    /// chunks per worker. This bounds the supervisor's memory.
    ///
    /// ```
    /// # let pool = procpool::doctest::pool(1);
    /// let squares = pool.imap(procpool::doctest::Square, 0..10).lookahead(2);
    /// assert_eq!(squares.count(), 10);
    /// ```
    pub fn lookahead(mut self, inputs: usize) -> Self {
        self.0.lookahead = Some(inputs.max(1));
        self
    }

    /// Yields every input's [`Outcome`] (output or error, PID, times)
    /// instead of bare outputs.
    ///
    /// ```
    /// # let pool = procpool::doctest::pool(1);
    /// let outcome = pool.imap(procpool::doctest::Square, [5]).outcomes().next();
    /// assert_eq!(outcome.unwrap().unwrap().result, Ok(25));
    /// ```
    pub fn outcomes(mut self) -> ImapOutcomes<'p, T, I> {
        self.0.feeder.timed = true;
        ImapOutcomes(self.0)
    }
}

impl<T: Task, I: Iterator<Item = T::Input>> Iterator for Imap<'_, T, I> {
    type Item = Result<T::Output, PoolError>;

    /// After a stop (a signal, workers that cannot be started), the outputs
    /// that had already come back are still yielded, then the error once.
    fn next(&mut self) -> Option<Self::Item> {
        Some(self.0.next()?.and_then(Outcome::into_result))
    }

    /// Exact when the inputs' length is known (a range, a vector).
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// `pool.imap(task, inputs).progress()` (indicatif) shows the total.
impl<T: Task, I: ExactSizeIterator<Item = T::Input>> ExactSizeIterator for Imap<'_, T, I> {}

impl<T: Task, I: Iterator<Item = T::Input>> Iterator for ImapOutcomes<'_, T, I> {
    type Item = Result<Outcome<T::Output>, PoolError>;

    /// After a stop (a signal, workers that cannot be started), the outcomes
    /// that had already come back are still yielded, then the error once.
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }

    /// Exact when the inputs' length is known (a range, a vector).
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// `pool.imap(task, inputs).outcomes().progress()` (indicatif) shows the total.
impl<T: Task, I: ExactSizeIterator<Item = T::Input>> ExactSizeIterator for ImapOutcomes<'_, T, I> {}

impl<T: Task, I: Iterator<Item = T::Input>> std::fmt::Debug for Imap<'_, T, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: Task, I: Iterator<Item = T::Input>> std::fmt::Debug for ImapOutcomes<'_, T, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The engine of [`Imap`] and [`ImapOutcomes`].
struct Stream<'p, T: Task, I: Iterator<Item = T::Input>> {
    pool: &'p Pool,
    call: Option<Call>,
    /// The inputs, read and encoded a chunk at a time.
    feeder: Feeder<T, I>,
    ordered: bool,
    lookahead: Option<usize>,
    /// Inputs whose outcome has been yielded.
    yielded: u64,
    /// Chunks of outcomes ready to yield (unordered), or waiting for their
    /// turn by first index (ordered); one map entry per chunk, not per input.
    ready: VecDeque<Vec<Outcome<T::Output>>>,
    reorder: BTreeMap<u64, Vec<Outcome<T::Output>>>,
    /// The chunk being yielded.
    current: std::vec::IntoIter<Outcome<T::Output>>,
    /// Why the pool stopped; yielded after the outcomes that came in before.
    stopped: Option<PoolError>,
    /// The input iterator's panic, raised again once the outcomes of the
    /// inputs before it are yielded (where Python raises the iterable's
    /// exception); nothing more is read after it.
    panicked: Option<Box<dyn std::any::Any + Send>>,
    failed: bool,
    /// What the progress callback is told.
    tally: Tally,
}

impl<'p, T: Task, I: Iterator<Item = T::Input>> Stream<'p, T, I> {
    fn new(pool: &'p Pool, task: T, inputs: I, ordered: bool) -> Self {
        let _ = task;
        let total = match inputs.size_hint() {
            (low, Some(high)) if low == high => Some(low as u64),
            _ => None,
        };
        Stream {
            tally: Tally::new(pool.progress.clone(), total),
            pool,
            call: None,
            feeder: Feeder::new(inputs, pool.chunksize.unwrap_or(1), false),
            ordered,
            lookahead: None,
            yielded: 0,
            ready: VecDeque::new(),
            reorder: BTreeMap::new(),
            current: Vec::new().into_iter(),
            stopped: None,
            panicked: None,
            failed: false,
        }
    }

    fn limit(&self) -> u64 {
        let chunksize = self.feeder.chunksize;
        let default = chunksize * self.pool.processes * 4;
        self.lookahead.unwrap_or(default).max(chunksize) as u64
    }

    /// Sends chunks while the look-ahead allows.
    fn fill(&mut self, call: &Call) {
        while self.panicked.is_none()
            && self.feeder.sent - self.yielded + self.feeder.chunksize as u64 <= self.limit()
        {
            // The look-ahead reads inputs before their turn: a panic of the
            // iterator waits for the outputs of the inputs before it.
            let chunk = std::panic::catch_unwind(AssertUnwindSafe(|| self.feeder.next_chunk()));
            match chunk {
                Ok(Some(Feed::Ready(work))) => call.submit(work),
                Ok(Some(Feed::Failed(index, why))) => self.receive(unencodable(index, why)),
                Ok(None) => break,
                Err(payload) => self.panicked = Some(payload),
            }
        }
    }

    fn pop_ready(&mut self) -> Option<Outcome<T::Output>> {
        if let Some(outcome) = self.current.next() {
            self.yielded += 1;
            return Some(outcome);
        }
        let chunk = if self.ordered {
            let entry = self.reorder.first_entry()?;
            if *entry.key() != self.yielded {
                return None;
            }
            entry.remove()
        } else {
            self.ready.pop_front()?
        };
        self.current = chunk.into_iter();
        let outcome = self.current.next()?;
        self.yielded += 1;
        Some(outcome)
    }

    fn step(&mut self) -> Result<Option<Outcome<T::Output>>, PoolError> {
        let mut call = match self.call.take() {
            Some(call) => call,
            None => self.pool.new_call::<T>(None)?,
        };
        let step = self.step_with(&mut call);
        self.call = Some(call);
        step
    }

    fn step_with(&mut self, call: &mut Call) -> Result<Option<Outcome<T::Output>>, PoolError> {
        loop {
            if let Some(outcome) = self.pop_ready() {
                return Ok(Some(outcome));
            }
            self.fill(call);
            if let Some(outcome) = self.pop_ready() {
                return Ok(Some(outcome));
            }
            if self.feeder.sent == self.yielded {
                if let Some(payload) = self.panicked.take() {
                    std::panic::resume_unwind(payload);
                }
                return Ok(None);
            }
            let delivery = call.next()?;
            self.receive(delivery);
        }
    }

    fn receive(&mut self, delivery: Delivery) {
        let first = delivery.first;
        let mut chunk = Vec::with_capacity(delivery.count as usize);
        unpack(delivery, &mut |o| chunk.push(o));
        if self.tally.wanted() {
            let failed = chunk.iter().filter(|o| o.result.is_err()).count();
            self.tally
                .add(chunk.len() as u64, failed as u64, self.feeder.sent);
        }
        if self.ordered {
            self.reorder.insert(first, chunk);
        } else {
            self.ready.push_back(chunk);
        }
    }

    /// After a stop: the next outcome that came in, in input order where
    /// there are gaps.
    fn pop_salvaged(&mut self) -> Option<Outcome<T::Output>> {
        loop {
            if let Some(outcome) = self.current.next() {
                return Some(outcome);
            }
            let chunk = match self.reorder.pop_first() {
                Some((_, chunk)) => chunk,
                None => self.ready.pop_front()?,
            };
            self.current = chunk.into_iter();
        }
    }

    fn next(&mut self) -> Option<Result<Outcome<T::Output>, PoolError>> {
        if self.failed {
            return None;
        }
        if self.stopped.is_none() {
            match self.step() {
                Ok(outcome) => return outcome.map(Ok),
                // What came in before the stop came before it on the
                // channel, and is received: it is yielded first.
                Err(e) => self.stopped = Some(e),
            }
        }
        if let Some(outcome) = self.pop_salvaged() {
            return Some(Ok(outcome));
        }
        self.failed = true;
        self.stopped.take().map(Err)
    }

    /// Exact when the inputs' length is known (a range, a vector), so a
    /// progress bar shows a total: one item per input. If the pool stops
    /// (a signal, a worker that cannot be started) the call ends early, and
    /// the hint is exact again once the stop is seen: the outcomes that came
    /// in, and the error.
    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            return (0, Some(0));
        }
        if self.stopped.is_some() {
            let chunks = self.reorder.values().chain(&self.ready);
            let left = self.current.len() + chunks.map(Vec::len).sum::<usize>() + 1;
            return (left, Some(left));
        }
        // Read but not yet yielded, and not yet read.
        let out = usize::try_from(self.feeder.sent - self.yielded).unwrap_or(usize::MAX);
        let (low, high) = self.feeder.unread();
        (
            low.saturating_add(out),
            high.and_then(|h| h.checked_add(out)),
        )
    }
}

impl<T: Task, I: Iterator<Item = T::Input>> std::fmt::Debug for Stream<'_, T, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imap")
            .field("task", &T::NAME)
            .field("ordered", &self.ordered)
            .field("chunksize", &self.feeder.chunksize)
            .field("sent", &self.feeder.sent)
            .field("yielded", &self.yielded)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn a_pool_can_be_shared_between_threads() {
        assert_send_sync::<Pool>();
    }
}
