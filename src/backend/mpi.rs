//! The MPI backend (feature `mpi`): the same program runs on every rank of an
//! MPI job; rank 0 runs the caller's code and the pool's supervisor, ranks
//! 1..n-1 serve tasks.
//!
//! Nothing about tasks changes: the supervisor sends the same frames as to a
//! local worker ([`Request::Run`] with the inputs encoded by
//! [`codec`]), and a worker rank answers with the same
//! [`Reply`] its linked task produces. The policy is the local pool's own
//! scheduler (`scheduler.rs`); each worker rank holds one chunk at a time
//! and gets the next when it replies, so faster ranks and hosts take more
//! of the work.
//!
//! MPI cannot stop or replace one rank without ending the job, so this
//! backend takes no task timeout, no retries and no maximum tasks per worker;
//! a rank that dies ends the whole job (mpirun's rule), never with a hang.
//!
//! ```no_run
//! use procpool::mpi::MpiRoot;
//! use procpool::Pool;
//! # use procpool::doctest::Square;
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Ranks 1..n-1 serve tasks in here until rank 0's pool is done.
//!     let Some(root) = MpiRoot::init()? else {
//!         return Ok(());
//!     };
//!     let pool = Pool::builder().mpi(root).build()?;
//!     for outcome in pool.map_outcomes(Square, 0..6)? {
//!         println!("{} -> {:?} (PID {})", outcome.index, outcome.result, outcome.pid);
//!     }
//!     Ok(())
//! }
//! ```

use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

use mpi::Tag;
use mpi::environment::Universe;
use mpi::point_to_point::MatchedReceiveVec;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, Destination, Source};
use serde::{Deserialize, Serialize};

use super::Config;
use super::book::Body;
use super::scheduler::{Policy, Scheduler, WorkerId};
use super::{MpiRank, WorkerInfo};
use crate::codec;
use crate::error::{PoolError, TaskError};
use crate::protocol::{self, Frame, Reply, Request};
use crate::registry::Registry;
use crate::signal::InterruptFlag;

/// A worker rank's first message: who it is and what it can run.
const TAG_HELLO: Tag = 1;
/// Rank 0 to a worker: a framed [`Request`].
const TAG_REQUEST: Tag = 2;
/// A worker to rank 0: a framed [`Reply`].
const TAG_REPLY: Tag = 3;
/// Rank 0 to a worker and back: one clock reading, to measure the offset
/// between their clocks (see [`sync_clocks`]).
const TAG_CLOCK: Tag = 4;
/// Clock exchanges per rank at the handshake; the quickest one counts.
const CLOCK_ROUNDS: usize = 8;

/// Variables that MPI launchers set in every rank's environment: Open MPI's
/// mpirun, PMIx (Open MPI 4+, `srun --mpi=pmix`), and PMI (MPICH's Hydra,
/// Intel MPI, MVAPICH, `srun --mpi=pmi2`).
pub const LAUNCHER_VARS: [&str; 5] = [
    "OMPI_COMM_WORLD_SIZE",
    "PMIX_RANK",
    "PMI_RANK",
    "PMI_SIZE",
    "MV2_COMM_WORLD_RANK",
];

/// Why MPI could not be joined or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MpiError {
    /// The program was not started by an MPI launcher.
    #[error(
        "not started by an MPI launcher{hint}: run it as `mpirun -n 4 {program} ...` \
         (or with srun inside a Slurm allocation); none of {} is set",
        LAUNCHER_VARS.join(", ")
    )]
    NotLaunched {
        /// This program's name, for the example command.
        program: String,
        /// More to say when Slurm started it without an MPI plugin.
        hint: &'static str,
    },
    /// MPI was already initialized in this process (it can be only once).
    #[error("MPI is already initialized in this process; initialize it once")]
    AlreadyInitialized,
    /// The job has fewer ranks than the work needs.
    #[error(
        "{what} needs at least {need} MPI ranks, but this job has {size}{hint}: \
         start it with `mpirun -n {need}` or more"
    )]
    TooFewRanks {
        /// What needs them.
        what: &'static str,
        /// How many it needs.
        need: u32,
        /// How many the job has.
        size: u32,
        /// More to say when Slurm started it without an MPI plugin.
        hint: &'static str,
    },
    /// A message between ranks did not decode.
    #[error("rank {rank}: {message}")]
    Protocol {
        /// The rank that noticed.
        rank: u32,
        /// What was wrong.
        message: String,
    },
}

/// What to add to an error when Slurm's srun started this process without an
/// MPI plugin: each process then finds no launcher, or a job of one rank.
fn slurm_hint() -> &'static str {
    if std::env::var_os("SLURM_PROCID").is_some() {
        " (if srun started it, it needs an MPI plugin: try `srun --mpi=pmix`, see `srun --mpi=list`)"
    } else {
        ""
    }
}

/// This process's place in an MPI job. Dropping it finalizes MPI, which waits
/// for every other rank to finalize too.
pub struct MpiWorld {
    rank: u32,
    size: u32,
    host: String,
    /// Last, so that MPI is finalized after everything else is dropped.
    universe: Universe,
}

impl MpiWorld {
    /// Initializes MPI, once per process.
    ///
    /// # Errors
    ///
    /// [`MpiError::NotLaunched`] if no MPI launcher started this process (MPI
    /// is then not touched), [`MpiError::AlreadyInitialized`] on a second call.
    pub fn init() -> Result<MpiWorld, MpiError> {
        if !LAUNCHER_VARS.iter().any(|v| std::env::var_os(v).is_some()) {
            let program = std::env::args()
                .next()
                .and_then(|p| {
                    std::path::Path::new(&p)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                })
                .unwrap_or_else(|| "program".into());
            return Err(MpiError::NotLaunched {
                program,
                hint: slurm_hint(),
            });
        }
        // Serialized: a pool may be used from any thread, one call at a time.
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Serialized)
            .ok_or(MpiError::AlreadyInitialized)?;
        let world = universe.world();
        let host = mpi::environment::processor_name()
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Ok(MpiWorld {
            rank: world.rank() as u32,
            size: world.size() as u32,
            host,
            universe,
        })
    }

    /// This process's rank, from 0.
    pub fn rank(&self) -> u32 {
        self.rank
    }

    /// How many ranks the job has.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// This rank's host, as `MPI_Get_processor_name` says.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `MPI_COMM_WORLD`.
    pub fn comm(&self) -> SimpleCommunicator {
        self.universe.world()
    }

    /// An error if the job has fewer than `need` ranks; `what` names what
    /// needs them.
    ///
    /// # Errors
    ///
    /// [`MpiError::TooFewRanks`], with a hint when a Slurm step gave one rank.
    pub fn require(&self, what: &'static str, need: u32) -> Result<(), MpiError> {
        if self.size < need {
            return Err(MpiError::TooFewRanks {
                what,
                need,
                size: self.size,
                hint: if self.size == 1 { slurm_hint() } else { "" },
            });
        }
        Ok(())
    }
}

impl fmt::Debug for MpiWorld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MpiWorld")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .field("host", &self.host)
            .finish()
    }
}

/// Rank 0 of an MPI job whose other ranks serve tasks: what
/// [`PoolBuilder::mpi`](crate::PoolBuilder::mpi) takes. Dropped without
/// building a pool, it tells the other ranks to stop.
#[derive(Debug)]
pub struct MpiRoot {
    /// `serving[r]`: rank `r` waits for requests and must be told to stop.
    serving: Vec<bool>,
    world: MpiWorld,
}

impl MpiRoot {
    /// Joins the MPI job as a pool. On ranks 1..n-1, serves this program's
    /// tasks until rank 0's pool is done, and returns `None`: return from
    /// `main` then. On rank 0, returns the root for the pool's builder.
    ///
    /// # Errors
    ///
    /// As [`MpiWorld::init`], and [`MpiError::TooFewRanks`] if the job has
    /// one rank: rank 0 supervises, so a pool needs at least two. A worker rank
    /// that cannot go on (a request that does not decode) prints why and
    /// aborts the job: rank 0 would otherwise wait for it forever.
    pub fn init() -> Result<Option<MpiRoot>, MpiError> {
        let world = MpiWorld::init()?;
        world.require("a pool (rank 0 supervises, the others work)", 2)?;
        if world.rank > 0 {
            serve(&world);
            return Ok(None);
        }
        Ok(Some(MpiRoot {
            serving: (0..world.size).map(|rank| rank > 0).collect(),
            world,
        }))
    }

    /// This job's world.
    pub fn world(&self) -> &MpiWorld {
        &self.world
    }

    /// Tells `rank` to stop serving. The message is a few bytes, sent eagerly,
    /// so this never blocks; the rank reads it once its chunk is done.
    fn stop(&mut self, rank: u32) {
        if let Some(serving) = self.serving.get_mut(rank as usize)
            && std::mem::take(serving)
            && let Ok(frame) = protocol::frame(&Request::Shutdown, &[])
        {
            self.world
                .comm()
                .process_at_rank(rank as i32)
                .send_with_tag(&frame[..], TAG_REQUEST);
        }
    }

    fn stop_all(&mut self) {
        for rank in 1..self.world.size {
            self.stop(rank);
        }
    }
}

impl Drop for MpiRoot {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// How many workers a pool on `root` has; `requested` must match if given.
pub(crate) fn worker_count(
    root: Option<&MpiRoot>,
    requested: Option<usize>,
) -> Result<usize, PoolError> {
    let root = root.ok_or_else(|| {
        backend_error("this MPI job already serves a pool; build one pool per job")
    })?;
    let workers = root.world.size as usize - 1;
    match requested {
        Some(n) if n != workers => Err(backend_error(format!(
            "the workers are the job's ranks other than 0: {workers} here (mpirun -n {}), \
             not the {n} processes asked for; leave the number of processes out or make it match",
            root.world.size
        ))),
        _ => Ok(workers),
    }
}

/// A [`PoolError`] about this backend, in one line.
pub(crate) fn backend_error(message: impl Into<String>) -> PoolError {
    PoolError::Backend {
        backend: "mpi",
        message: message.into(),
    }
}

/// What a worker rank tells rank 0 first.
#[derive(Serialize, Deserialize)]
struct WorkerHello {
    /// The procpool version: every rank must run the same build.
    version: String,
    pid: u32,
    host: String,
    tasks: Vec<String>,
}

/// Polls without burning a core: a few yields, then sleeps growing to about 1 ms.
#[derive(Default)]
struct Backoff(u32);

impl Backoff {
    const SPINS: u32 = 32;

    fn reset(&mut self) {
        self.0 = 0;
    }

    fn wait(&mut self) {
        if self.0 < Self::SPINS {
            thread::yield_now();
        } else {
            let doublings = ((self.0 - Self::SPINS) / 4).min(7);
            thread::sleep(Duration::from_micros(8 << doublings));
        }
        self.0 = self.0.saturating_add(1);
    }
}

/// A worker rank's life: hello, then run chunks until told to stop.
fn serve(world: &MpiWorld) {
    crate::task::install_panic_hook();
    let served = Registry::linked()
        .map_err(|e| e.to_string())
        .and_then(|registry| serve_loop(world, registry));
    if let Err(message) = served {
        eprintln!(
            "procpool: rank {} (PID {}) on {}: {message}; ending the MPI job",
            world.rank,
            std::process::id(),
            world.host
        );
        world.comm().abort(2);
    }
}

fn serve_loop(world: &MpiWorld, registry: &Registry) -> Result<(), String> {
    let comm = world.comm();
    let root = comm.process_at_rank(0);
    let hello = WorkerHello {
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        host: world.host.clone(),
        tasks: registry.names().map(String::from).collect(),
    };
    let mut bytes = Vec::new();
    codec::encode_into(&hello, &mut bytes).map_err(|e| e.to_string())?;
    root.send_with_tag(&bytes[..], TAG_HELLO);

    let mut out = Vec::new();
    let mut backoff = Backoff::default();
    loop {
        if let Some(probed) = root.immediate_matched_probe_with_tag(TAG_CLOCK) {
            // Rank 0 measures our clock against its own: answer at once.
            let _ = probed.matched_receive_vec::<u64>();
            root.send_with_tag(&[crate::sys::monotonic_ns()][..], TAG_CLOCK);
            continue;
        }
        let Some(probed) = root.immediate_matched_probe_with_tag(TAG_REQUEST) else {
            backoff.wait();
            continue;
        };
        backoff.reset();
        let (frame, _) = probed.matched_receive_vec::<u8>();
        let (request, payload) = protocol::unframe::<Request>(&frame)
            .map_err(|e| format!("malformed request from rank 0: {e}"))?;
        let Request::Run {
            chunk,
            task,
            count,
            timed,
        } = request
        else {
            return Ok(());
        };
        let reply =
            crate::worker::answer(registry, chunk, &task, (payload, count, timed), &mut out);
        let frame = protocol::frame(&reply, &out).map_err(|e| e.to_string())?;
        root.send_with_tag(&frame[..], TAG_REPLY);
    }
}

/// Rank 0's side: the transport over the worker ranks, under the pool's
/// one [`Scheduler`]. A rank is worker `rank - 1` to the scheduler; it holds
/// one chunk at a time (the window is 1), which is the dynamic dispatch (a
/// fast rank comes back more often and so gets more) and keeps MPI from
/// deadlocking: a blocking send of a large message waits for its receiver,
/// so rank 0 never sends to a rank that may be sending to it.
pub(crate) struct MpiSupervisor {
    pub(super) sched: Scheduler,
    /// By worker id: rank `id + 1`.
    workers: Vec<WorkerInfo>,
    /// Each rank's clock minus ours, in nanoseconds, by worker id.
    clock_offsets: Vec<i64>,
    interrupt: Option<InterruptFlag>,
    /// How long busy ranks get to finish once the pool is interrupted.
    grace: Duration,
    /// The largest uncertainty of a rank's clock offset.
    clock_uncertainty: Duration,
    backoff: Backoff,
    /// Last: dropped after the supervisor stopped the ranks.
    root: MpiRoot,
}

impl MpiSupervisor {
    /// Waits for every worker rank's hello.
    ///
    /// # Errors
    ///
    /// For the options MPI cannot honour, a rank that stays silent past the
    /// start-up timeout, or one that runs another procpool version. The
    /// worker ranks are then told to stop.
    pub fn start(root: MpiRoot, cfg: Config) -> Result<MpiSupervisor, PoolError> {
        let unsupported: Vec<&str> = [
            (cfg.timeout.is_some(), "task timeout (--timeout)"),
            (cfg.retries > 0, "retries (--retries)"),
            (
                cfg.max_tasks_per_child.is_some(),
                "maximum of tasks per worker (--maxtasksperchild)",
            ),
        ]
        .into_iter()
        .filter_map(|(set, what)| set.then_some(what))
        .collect();
        if !unsupported.is_empty() {
            return Err(backend_error(format!(
                "MPI cannot stop or replace one rank without ending the job, so it takes no {}",
                unsupported.join(" and no ")
            )));
        }
        let hellos = handshake(&root.world, cfg.startup_timeout, cfg.interrupt.as_ref())?;
        let ours = env!("CARGO_PKG_VERSION");
        if let Some((rank, hello)) = hellos
            .iter()
            .zip(1..)
            .map(|(h, r)| (r, h))
            .find(|(_, h)| h.version != ours)
        {
            return Err(backend_error(format!(
                "rank {rank} on {} runs procpool {}, rank 0 runs {ours}: give every host the same build",
                hello.host, hello.version
            )));
        }
        let mut known_tasks = hellos[0].tasks.clone();
        known_tasks.retain(|t| hellos.iter().all(|h| h.tasks.contains(t)));
        let workers: Vec<WorkerInfo> = hellos
            .into_iter()
            .zip(1..)
            .map(|(hello, rank)| WorkerInfo {
                pid: hello.pid,
                mpi: Some(MpiRank {
                    rank,
                    host: hello.host,
                }),
            })
            .collect();
        let mut sched = Scheduler::new(Policy {
            window: Some(1),
            grace: cfg.grace,
            whole_job: true,
            ..Policy::default()
        });
        sched
            .book
            .set_tasks(&std::env::current_exe().unwrap_or_default(), known_tasks);
        let now = Instant::now();
        for (id, worker) in (0..).zip(&workers) {
            sched.started(id, worker.pid, now);
        }
        let (clock_offsets, uncertainties): (Vec<i64>, Vec<Duration>) =
            sync_clocks(&root.world).into_iter().unzip();
        Ok(MpiSupervisor {
            sched,
            workers,
            clock_offsets,
            interrupt: cfg.interrupt,
            grace: cfg.grace,
            clock_uncertainty: uncertainties.into_iter().max().unwrap_or_default(),
            backoff: Backoff::default(),
            root,
        })
    }

    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.workers.iter().map(|w| w.pid).collect();
        pids.sort_unstable();
        pids
    }

    pub fn workers(&self) -> Vec<WorkerInfo> {
        self.workers.clone()
    }

    /// How far a rank's times may be off rank 0's clock, at most.
    pub fn clock_uncertainty(&self) -> Duration {
        self.clock_uncertainty
    }

    /// One turn: hand idle ranks work, take at most one reply (or wait a little).
    pub(crate) fn turn(&mut self, interruptible: bool) -> Result<(), PoolError> {
        if interruptible && let Some(signal) = self.interrupted() {
            self.collect_busy();
            return Err(PoolError::Interrupted { signal });
        }
        self.dispatch();
        if !self.sched.usable() && self.sched.book.has_work() {
            return Err(backend_error(
                "every worker rank sent a reply that could not be used; no rank is left to work",
            ));
        }
        self.receive();
        #[cfg(debug_assertions)]
        self.sched.check();
        Ok(())
    }

    /// Sends each idle rank the chunk the scheduler hands it.
    fn dispatch(&mut self) {
        let comm = self.root.world.comm();
        let mut unframed = Vec::new();
        self.sched.dispatch(Instant::now(), |id, chunk_id, book| {
            let Some(chunk) = book.get(chunk_id) else {
                return false;
            };
            let header = chunk.request(chunk_id);
            match protocol::frame(&header, &chunk.work.payload) {
                Ok(frame) => comm
                    .process_at_rank(id as i32 + 1)
                    .send_with_tag(&frame[..], TAG_REQUEST),
                // Held as sent, and failed at once below with the reason.
                Err(e) => unframed.push((id, format!("cannot frame the chunk: {e}"))),
            }
            true
        });
        for (id, message) in unframed {
            self.drop_malformed(id, message);
        }
    }

    fn interrupted(&self) -> Option<i32> {
        self.interrupt.as_ref()?.received()
    }

    /// After a signal: no new work goes out, and the chunks the ranks are
    /// running get the grace period to come back, so that what finishes in
    /// it is delivered (and printed) before the job is stopped. What a rank
    /// still holds then is lost with the job, and said so, naming the rank:
    /// under `srun --kill-on-bad-exit` the signal is how rank 0 learns that
    /// a rank died.
    fn collect_busy(&mut self) {
        self.sched.book.close();
        let until = Instant::now() + self.grace;
        while self.sched.busy() && Instant::now() < until {
            self.receive();
        }
        for id in self.sched.busy_workers() {
            let worker = &self.workers[id as usize];
            let rank = worker.mpi.as_ref();
            let message = format!(
                "rank {} on {} was running it when the pool stopped and did not answer \
                 within the {:.1}s grace period (it died, or is still running it); \
                 the MPI job ends without it",
                rank.map_or(id as u32 + 1, |r| r.rank),
                rank.map_or("?", |r| r.host.as_str()),
                self.grace.as_secs_f64()
            );
            let lost = TaskError::Lost {
                pid: worker.pid,
                message,
            };
            self.sched.drop_worker(id, Some(lost), Instant::now());
        }
    }

    /// Takes at most one reply, or waits a little.
    fn receive(&mut self) {
        let comm = self.root.world.comm();
        match comm
            .any_process()
            .immediate_matched_probe_with_tag(TAG_REPLY)
        {
            Some(probed) => {
                let (bytes, status) = probed.matched_receive_vec::<u8>();
                let id = u64::from((status.source_rank() as u32).wrapping_sub(1));
                self.on_reply(id, bytes);
                self.backoff.reset();
            }
            None => self.backoff.wait(),
        }
    }

    /// A rank's reply: its chunk's results (or refusal) go to the
    /// scheduler. One that does not decode, or is for a chunk the rank is not
    /// running, fails that chunk and the rank gets no more work.
    fn on_reply(&mut self, id: WorkerId, frame: Vec<u8>) {
        let Some(&offset) = self.clock_offsets.get(id as usize) else {
            return;
        };
        let pid = self.workers[id as usize].pid;
        let (reply, start) = match protocol::unframe::<Reply>(&frame) {
            Ok((reply, payload)) => (reply, frame.len() - payload.len()),
            Err(e) => return self.drop_malformed(id, format!("malformed reply: {e}")),
        };
        let (chunk, started, body) = match reply {
            // The rank's clock, moved onto ours by the offset measured at
            // the handshake.
            Reply::Done {
                chunk, started_ns, ..
            } => (
                chunk,
                Some(
                    self.sched
                        .book
                        .epoch
                        .offset_ns(started_ns.wrapping_sub(offset as u64)),
                ),
                Body::Done(Frame::from(frame), start),
            ),
            Reply::Refused { chunk, reason } => (
                chunk,
                None,
                Body::Failed(TaskError::Protocol {
                    pid,
                    message: reason,
                }),
            ),
        };
        if let Err(message) = self.sched.done(id, chunk, Instant::now(), started, body) {
            self.drop_malformed(id, message);
        }
    }

    /// Rank `id` cannot be trusted: its chunk fails with `message`, and it
    /// gets no more work (MPI cannot stop it alone).
    fn drop_malformed(&mut self, id: WorkerId, message: String) {
        let now = Instant::now();
        // The scheduler asks for a kill; a rank is dropped instead.
        let _kill = self.sched.malformed(id, message, now);
        self.sched.drop_worker(id, None, now);
    }

    /// Once the book is closed: lets queued work finish, then stops every rank.
    pub fn join(&mut self) -> Result<(), PoolError> {
        while self.sched.book.has_work() {
            self.turn(true)?;
        }
        self.root.stop_all();
        self.workers.clear();
        Ok(())
    }

    /// Fails queued work with `Cancelled`, waits for the chunks the ranks are
    /// running, then stops every rank. MPI cannot stop one rank, and a rank
    /// must be heard before it is stopped (or its reply blocks it and
    /// `MPI_Finalize` waits forever); so once the pool is interrupted, busy
    /// ranks get the grace period and then the whole job is aborted, with
    /// exit status 128 + the signal's number.
    pub fn terminate(&mut self) {
        self.sched.book.close();
        self.sched.book.cancel_queued();
        let mut abort_at = None;
        while self.sched.busy() {
            if let Some(signal) = self.interrupted() {
                let at = *abort_at.get_or_insert_with(|| Instant::now() + self.grace);
                if Instant::now() >= at {
                    self.root.world.comm().abort(128 + signal);
                }
            }
            let _ = self.turn(false);
        }
        self.root.stop_all();
        self.workers.clear();
    }
}

impl Drop for MpiSupervisor {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Collects one hello from every worker rank, in rank order.
fn handshake(
    world: &MpiWorld,
    timeout: Duration,
    interrupt: Option<&InterruptFlag>,
) -> Result<Vec<WorkerHello>, PoolError> {
    let comm = world.comm();
    let deadline = Instant::now() + timeout;
    let mut hellos: Vec<Option<WorkerHello>> = (1..world.size).map(|_| None).collect();
    let mut backoff = Backoff::default();
    while hellos.iter().any(Option::is_none) {
        if let Some(signal) = interrupt.and_then(InterruptFlag::received) {
            return Err(PoolError::Interrupted { signal });
        }
        let Some(probed) = comm
            .any_process()
            .immediate_matched_probe_with_tag(TAG_HELLO)
        else {
            if Instant::now() >= deadline {
                let silent: Vec<String> = (1..)
                    .zip(&hellos)
                    .filter(|(_, h)| h.is_none())
                    .map(|(rank, _)| rank.to_string())
                    .collect();
                return Err(backend_error(format!(
                    "rank {} did not report within {:.1}s: is every rank running this program with --backend mpi?",
                    silent.join(", "),
                    timeout.as_secs_f64()
                )));
            }
            backoff.wait();
            continue;
        };
        backoff.reset();
        let (bytes, status) = probed.matched_receive_vec::<u8>();
        let rank = status.source_rank();
        let hello = codec::decode_exact::<WorkerHello>(&bytes).map_err(|e| {
            backend_error(format!(
                "rank {rank} sent a malformed hello ({e}): is it running the same procpool build?"
            ))
        })?;
        if let Some(slot) = (rank as usize)
            .checked_sub(1)
            .and_then(|i| hellos.get_mut(i))
        {
            *slot = Some(hello);
        }
    }
    Ok(hellos.into_iter().flatten().collect())
}

/// Measures each worker rank's clock against rank 0's, as NTP does: several
/// round trips of one reading each; in the quickest, the rank read its clock
/// about halfway, so its offset is its reading less our midpoint, give or
/// take half that round trip. Returns, by slot (rank - 1), the offset in
/// nanoseconds (theirs minus ours) and that uncertainty.
fn sync_clocks(world: &MpiWorld) -> Vec<(i64, Duration)> {
    let comm = world.comm();
    (1..world.size)
        .map(|rank| {
            let process = comm.process_at_rank(rank as i32);
            let mut best: Option<(u64, i64)> = None;
            for _ in 0..CLOCK_ROUNDS {
                let sent = crate::sys::monotonic_ns();
                process.send_with_tag(&[sent][..], TAG_CLOCK);
                let (theirs, _) = process.receive_vec_with_tag::<u64>(TAG_CLOCK);
                let back = crate::sys::monotonic_ns();
                let Some(&theirs) = theirs.first() else {
                    continue;
                };
                let round_trip = back.saturating_sub(sent);
                let midpoint = sent + round_trip / 2;
                let offset = theirs.wrapping_sub(midpoint) as i64;
                if best.is_none_or(|(quickest, _)| round_trip < quickest) {
                    best = Some((round_trip, offset));
                }
            }
            best.map_or((0, Duration::MAX), |(round_trip, offset)| {
                (offset, Duration::from_nanos(round_trip / 2))
            })
        })
        .collect()
}
