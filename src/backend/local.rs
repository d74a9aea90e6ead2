//! The local transport: worker processes on this machine, their channels and
//! shared-memory regions, under the [`Scheduler`], which holds the policy
//! (the window, deaths, timeouts, retries and recycling). It knows chunks of
//! encoded bytes, not types; [`pool`](crate::pool) puts types on top.
//!
//! One loop serves every worker: their reply channels sit in one
//! `IpcReceiverSet`, where a closed channel is how a dead worker announces
//! itself; what it selects becomes the scheduler's events, and what the
//! scheduler answers becomes messages and signals.

use std::collections::HashMap;
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use ipc_channel::TrySelectError;
use ipc_channel::ipc::{IpcReceiverSet, IpcSelectionResult, IpcSender};

use super::Config;
use super::book::{Body, CallId};
use super::pin::{Claim, Cpus};
use super::scheduler::{Action, Policy, Scheduler};
use super::spawn::{Spawner, WorkerProcess};
use crate::error::{PoolError, TaskError};
use crate::protocol::{self, Message, Reply, Request};
use crate::region::{Inbox, Outbox, Release, Span};
use crate::sys::{self, ExitCause};

/// How many replacement starts may fail in a row before the pool gives up.
const MAX_START_FAILURES: u32 = 5;
/// How long an idle pool being dropped waits for its workers to exit.
const GRACEFUL_EXIT: Duration = Duration::from_millis(200);
/// Open files the supervisor needs: a few of its own, and per worker its two
/// channels plus, while it starts, the handshake socket and the connection.
const FILES_BASE: u64 = 16;
const FILES_PER_WORKER: u64 = 5;
/// Address space the supervisor needs (threads' stacks, the allocator's
/// arenas, message buffers): measured failures below 30 MiB with 8 workers.
const ADDRESS_SPACE_BASE: u64 = 64 << 20;
const ADDRESS_SPACE_PER_WORKER: u64 = 1 << 20;
/// How long the loop sleeps at most between checks of signals and deadlines.
const TICK: Duration = Duration::from_millis(20);

struct Worker {
    pid: u32,
    child: Child,
    requests: IpcSender<Message>,
    /// The region space each chunk out with it took, freed when its reply
    /// comes (the worker is done reading) or it dies.
    leases: HashMap<u64, Span>,
    /// Requests into messages, large ones through our region for this worker.
    outbox: Outbox,
    /// Replies out of messages, large ones through the worker's region,
    /// every place checked.
    inbox: Inbox,
    /// The CPU it is bound to, freed for a replacement when it goes.
    _cpu: Option<Claim>,
    /// It has work to finish at exit (a job guard to reap): asked to exit
    /// at the end rather than killed.
    exit_work: bool,
}

pub(crate) struct Supervisor {
    cfg: Config,
    spawner: Spawner,
    set: IpcReceiverSet,
    /// A channel in `set` that only wakes the loop (see [`waker`](Self::waker)).
    wake: (u64, IpcSender<()>),
    workers: HashMap<u64, Worker>,
    /// The policy, and the calls, chunks and deliveries in its book (the
    /// pool's backend reaches them here).
    pub(crate) sched: Scheduler,
}

impl Supervisor {
    pub fn start(cfg: Config) -> Result<Self, PoolError> {
        let needed = FILES_BASE + FILES_PER_WORKER * cfg.processes as u64;
        sys::ensure_open_files(needed).map_err(|limit| PoolError::Limit {
            what: format!("{} worker processes", cfg.processes),
            needed,
            limit,
            name: "open files (ulimit -n)",
        })?;
        // Under a tight `ulimit -v` an allocation fails deep inside
        // ipc-channel, which aborts the process: refuse up front instead.
        let space = ADDRESS_SPACE_BASE + ADDRESS_SPACE_PER_WORKER * cfg.processes as u64;
        if let Some(limit) = sys::address_space_limit().filter(|&limit| limit < space) {
            return Err(PoolError::Limit {
                what: format!("{} worker processes", cfg.processes),
                needed: space >> 20,
                limit: limit >> 20,
                name: "MiB of address space (ulimit -v)",
            });
        }
        if cfg.tune_allocator {
            sys::keep_freed_memory();
        }
        let spawner = Spawner::new(
            cfg.program.clone(),
            cfg.startup_timeout,
            cfg.interrupt.clone(),
            cfg.initializer.clone(),
            cfg.pin_workers
                .then(|| Cpus::for_workers(cfg.processes))
                .flatten(),
        )?;
        let mut set =
            IpcReceiverSet::new().map_err(|e| PoolError::os("cannot create a receiver set", e))?;
        let (waker, woken) =
            ipc_channel::ipc::channel().map_err(|e| PoolError::os("cannot create a channel", e))?;
        let wake = set
            .add(woken)
            .map_err(|e| PoolError::os("cannot watch a channel", e))?;
        let mut sup = Supervisor {
            spawner,
            set,
            wake: (wake, waker),
            workers: HashMap::new(),
            sched: Scheduler::new(Policy {
                window: cfg.window,
                timeout: cfg.timeout,
                grace: cfg.grace,
                retries: cfg.retries,
                max_tasks_per_child: cfg.max_tasks_per_child,
                whole_job: false,
            }),
            cfg,
        };
        let mut failed = 0;
        for started in sup.spawner.spawn(sup.cfg.processes) {
            match started {
                Ok(process) => sup.adopt(process)?,
                Err(e) if no_retry(&e) => return Err(e),
                Err(_) => failed += 1,
            }
        }
        // A worker lost at start (killed from outside, say) is started again,
        // with the same limit as replacements; a program that is no worker
        // fails with its last start's error. Dropping `sup` kills the others.
        for _ in 0..failed {
            sup.replace_worker().map_err(|e| match e {
                PoolError::WorkersKeepDying { last, .. } => *last,
                other => other,
            })?;
        }
        Ok(sup)
    }

    fn adopt(&mut self, process: WorkerProcess) -> Result<(), PoolError> {
        let WorkerProcess {
            pid,
            mut child,
            requests,
            replies,
            tasks,
            cpu,
        } = process;
        let id = match self.set.add(replies) {
            Ok(id) => id,
            Err(e) => {
                sys::kill_group(pid, libc::SIGKILL);
                let _ = child.wait();
                return Err(PoolError::os("cannot watch a worker's channel", e));
            }
        };
        self.sched.book.set_tasks(self.spawner.program(), tasks);
        self.sched.started(id, pid, Instant::now());
        self.workers.insert(
            id,
            Worker {
                pid,
                child,
                requests,
                leases: HashMap::new(),
                outbox: Outbox::new(Release::OnDrop),
                inbox: Inbox::new(true),
                _cpu: cpu,
                exit_work: false,
            },
        );
        Ok(())
    }

    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.workers.values().map(|w| w.pid).collect();
        pids.sort_unstable();
        pids
    }

    /// Drops `call`: its queued chunks go, and a worker running one of its
    /// chunks is killed (and replaced), so that no later call waits behind
    /// work nobody wants; its chunks behind that are dropped with it.
    pub fn abandon(&mut self, call: CallId) {
        let actions = self.sched.abandon(call, Instant::now());
        self.act(actions);
    }

    /// What ends the loop's wait at once, so work given from another
    /// thread goes out without waiting for a reply or a tick.
    pub fn waker(&self) -> IpcSender<()> {
        self.wake.1.clone()
    }

    /// One turn of the loop: dispatch, wait for replies or a tick, react.
    pub fn turn(&mut self) -> Result<(), PoolError> {
        if let Some(signal) = self.interrupted() {
            self.stop_and_collect();
            return Err(PoolError::Interrupted { signal });
        }
        // After close() too, a pool with work left keeps a worker to do it.
        if self.workers.is_empty() && self.sched.book.has_work() {
            self.replace_worker()?;
        }
        self.dispatch();
        let wait = self.sched.next_deadline().map_or(TICK, |d| {
            d.saturating_duration_since(Instant::now()).min(TICK)
        });
        let events = match self.set.try_select_timeout(wait) {
            Ok(events) => events,
            Err(TrySelectError::Empty) => Vec::new(),
            Err(TrySelectError::IoError(e)) => {
                return Err(PoolError::os(
                    "waiting for workers",
                    std::io::Error::other(e.to_string()),
                ));
            }
        };
        // Every event is handled, whatever an earlier one did: a reply left
        // unread would leave its chunk out with its worker forever.
        let mut failed = None;
        for event in events {
            match event {
                IpcSelectionResult::MessageReceived(id, _) if id == self.wake.0 => {}
                IpcSelectionResult::MessageReceived(id, message) => match message.to::<Message>() {
                    Ok(message) => self.on_message(id, message),
                    Err(e) => self.on_malformed(id, format!("malformed reply frame: {e}")),
                },
                IpcSelectionResult::ChannelClosed(id) => {
                    if let Err(e) = self.on_closed(id) {
                        failed.get_or_insert(e);
                    }
                }
            }
        }
        let actions = self.sched.tick(Instant::now());
        self.act(actions);
        #[cfg(debug_assertions)]
        self.sched.check();
        failed.map_or(Ok(()), Err)
    }

    fn interrupted(&self) -> Option<i32> {
        self.cfg.interrupt.as_ref()?.received()
    }

    /// Sends the chunks the scheduler hands out.
    pub fn dispatch(&mut self) {
        let workers = &mut self.workers;
        self.sched.dispatch(Instant::now(), |id, chunk_id, book| {
            let (Some(worker), Some(chunk)) = (workers.get_mut(&id), book.get(chunk_id)) else {
                return false;
            };
            let header = chunk.request(chunk_id);
            let Ok((mut message, lease)) = worker.outbox.pack(&header, &chunk.work.payload) else {
                return false;
            };
            message.freed = worker.inbox.freed();
            if worker.requests.send(message).is_err() {
                return false;
            }
            if let Some(lease) = lease {
                worker.leases.insert(chunk_id, lease);
            }
            true
        });
    }

    /// Carries out what the scheduler asked.
    fn act(&mut self, actions: impl IntoIterator<Item = Action>) {
        for action in actions {
            match action {
                Action::Kill { worker, signal } => {
                    if let Some(worker) = self.workers.get(&worker) {
                        sys::kill_group(worker.pid, signal);
                    }
                }
                Action::Retire { worker } => {
                    if let Some(worker) = self.workers.get(&worker) {
                        let _ =
                            protocol::message(&Request::Shutdown).map(|m| worker.requests.send(m));
                    }
                }
            }
        }
    }

    /// A worker's reply: its frame (if every place it names in shared
    /// memory checks out), its chunk, and the delivery.
    fn on_message(&mut self, id: u64, message: Message) {
        let Some(worker) = self.workers.get_mut(&id) else {
            return;
        };
        let frame = match worker.inbox.open(message) {
            Ok(frame) => frame,
            Err(e) => return self.on_malformed(id, format!("bad region reference: {e}")),
        };
        let (reply, payload_len) = match protocol::unframe::<Reply>(&frame) {
            Ok((reply, payload)) => (reply, payload.len()),
            Err(e) => return self.on_malformed(id, format!("malformed reply: {e}")),
        };
        let (chunk_id, exit_work) = match reply {
            Reply::Done {
                chunk, exit_work, ..
            } => (chunk, exit_work),
            Reply::Refused { chunk, .. } => (chunk, false),
        };
        worker.exit_work |= exit_work;
        let pid = worker.pid;
        let (started, body) = match reply {
            Reply::Done { started_ns, .. } => {
                let start = frame.len() - payload_len;
                (
                    Some(self.sched.book.epoch.offset_ns(started_ns)),
                    Body::Done(frame, start),
                )
            }
            Reply::Refused { reason, .. } => (
                None,
                Body::Failed(TaskError::Protocol {
                    pid,
                    message: reason,
                }),
            ),
        };
        match self.sched.done(id, chunk_id, Instant::now(), started, body) {
            Ok(action) => {
                if let Some(worker) = self.workers.get_mut(&id) {
                    worker.leases.remove(&chunk_id);
                }
                self.act(action);
            }
            Err(message) => self.on_malformed(id, message),
        }
    }

    /// A worker that sends bytes we cannot trust is stopped at once.
    fn on_malformed(&mut self, id: u64, message: String) {
        let action = self.sched.malformed(id, message, Instant::now());
        self.act(action);
    }

    /// A worker's channel closed: reap it, settle its chunks, replace it.
    fn on_closed(&mut self, id: u64) -> Result<(), PoolError> {
        let Some(mut worker) = self.workers.remove(&id) else {
            return Ok(());
        };
        let cause = reap(&mut worker.child, self.cfg.grace);
        self.sched.died(id, cause, Instant::now());
        // A closed pool replaces its workers too while work is left, as
        // Python's does; the last one is replaced by `turn` if need be.
        if self.sched.wants_replacement(self.cfg.processes) {
            // Re-dispatch to the survivors first: a replacement takes milliseconds to start.
            self.dispatch();
            self.replace_worker()?;
        }
        Ok(())
    }

    /// After a signal: no new work goes out, every worker is killed, and the
    /// results they had already sent (still in their channels, even from a
    /// worker that is dead) are delivered. Takes at most a second.
    fn stop_and_collect(&mut self) {
        if self.workers.is_empty() {
            return;
        }
        self.sched.book.close();
        for worker in self.workers.values() {
            sys::kill_group(worker.pid, libc::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        while !self.workers.is_empty() && Instant::now() < deadline {
            let events = match self.set.try_select_timeout(TICK) {
                Ok(events) => events,
                Err(TrySelectError::Empty) => continue,
                Err(TrySelectError::IoError(_)) => break,
            };
            for event in events {
                match event {
                    IpcSelectionResult::MessageReceived(id, message) => {
                        if let Ok(message) = message.to::<Message>() {
                            self.on_message(id, message);
                        }
                    }
                    IpcSelectionResult::ChannelClosed(id) => {
                        if let Some(mut worker) = self.workers.remove(&id) {
                            let _ = worker.child.wait();
                        }
                    }
                }
            }
        }
        self.sched.forget_workers();
        for (_, mut worker) in self.workers.drain() {
            let _ = worker.child.wait();
        }
    }

    fn replace_worker(&mut self) -> Result<(), PoolError> {
        let mut failures = 0;
        loop {
            let started = self
                .spawner
                .spawn(1)
                .pop()
                .expect("one spawn asked, one answered");
            match started {
                Ok(process) => return self.adopt(process),
                // An initializer that fails in a replacement would fail in
                // every one: the pool takes no new work, and this call says
                // why (with what finished).
                Err(e @ PoolError::Initializer { .. }) => {
                    self.sched.book.close();
                    return Err(e);
                }
                Err(e) if no_retry(&e) => return Err(e),
                Err(e) => {
                    failures += 1;
                    if failures >= MAX_START_FAILURES {
                        return Err(PoolError::WorkersKeepDying {
                            attempts: failures,
                            last: Box::new(e),
                        });
                    }
                    thread::sleep(Duration::from_millis(10 << failures));
                    if let Some(signal) = self.interrupted() {
                        return Err(PoolError::Interrupted { signal });
                    }
                }
            }
        }
    }

    /// Once the book is closed: lets queued work finish, then asks every
    /// worker to exit and reaps it.
    pub fn join(&mut self) -> Result<(), PoolError> {
        while self.sched.book.has_work() {
            self.turn()?;
        }
        for worker in self.workers.values() {
            let _ = protocol::message(&Request::Shutdown).map(|m| worker.requests.send(m));
        }
        self.sched.forget_workers();
        for (_, mut worker) in self.workers.drain() {
            reap(&mut worker.child, self.cfg.grace);
        }
        Ok(())
    }

    /// Kills every worker now and fails what was queued.
    pub fn terminate(&mut self) {
        self.sched.book.close();
        for worker in self.workers.values() {
            sys::kill_group(worker.pid, libc::SIGKILL);
        }
        self.sched.forget_workers();
        for (_, mut worker) in self.workers.drain() {
            let _ = worker.child.wait();
        }
        self.sched.book.terminate_all();
    }
}

impl Drop for Supervisor {
    /// An idle pool's workers that have work to finish at exit (a job
    /// guard to reap) are asked to exit and given a moment; the others hold
    /// nothing and are killed at once, as a busy pool's are, and any that
    /// linger. Either way every worker is reaped.
    fn drop(&mut self) {
        if !self.sched.book.has_work() {
            for worker in self.workers.values() {
                if worker.exit_work {
                    let _ = protocol::message(&Request::Shutdown).map(|m| worker.requests.send(m));
                } else {
                    sys::kill_group(worker.pid, libc::SIGKILL);
                }
            }
            // Our side of each killed worker (its channel, its regions) is
            // released while the kernel tears the process down; then it is
            // reaped, which takes a fraction of a millisecond.
            let children: Vec<Child> = self
                .workers
                .extract_if(|_, worker| !worker.exit_work)
                .map(|(_, worker)| worker.child)
                .collect();
            for mut child in children {
                let _ = child.wait();
            }
            let deadline = Instant::now() + GRACEFUL_EXIT;
            self.workers.retain(|_, worker| {
                if !sys::wait_exited(worker.pid, deadline) {
                    return true;
                }
                // What its tasks left in its group goes with it.
                sys::kill_group(worker.pid, libc::SIGKILL);
                let _ = worker.child.wait();
                false
            });
        }
        self.terminate();
    }
}

/// A start that must not be tried again: a signal stopped it, no worker
/// can make its handshake socket, or the initializer failed (it would fail
/// in every replacement: CPython's pool respawns such workers forever).
fn no_retry(e: &PoolError) -> bool {
    matches!(
        e,
        PoolError::Interrupted { .. }
            | PoolError::HandshakeDir { .. }
            | PoolError::Initializer { .. }
    )
}

/// Waits for a worker whose channel closed; kills it if it lingers.
fn reap(child: &mut Child, grace: Duration) -> ExitCause {
    let pid = child.id();
    // Either way, before it is reaped: what its tasks left in its group goes
    // too (and, if it lingers, the worker itself).
    sys::wait_exited(pid, Instant::now() + grace);
    sys::kill_group(pid, libc::SIGKILL);
    child
        .wait()
        .map(ExitCause::from_status)
        .unwrap_or(ExitCause::Signal(libc::SIGKILL))
}
