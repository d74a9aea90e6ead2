//! The supervisor's event loop: dispatch, the in-flight window, deaths,
//! timeouts, retries and recycling. It knows batches of encoded bytes, not
//! types; [`pool`](crate::pool) puts types on top.
//!
//! One loop serves every worker: their reply channels sit in one
//! `IpcReceiverSet`, where a closed channel is how a dead worker announces
//! itself. A worker runs its batches in the order it receives them, so the
//! front of its in-flight queue is the batch it is running; the rest have not
//! started and are re-dispatched without being charged an attempt.

use std::collections::{HashMap, VecDeque};
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use ipc_channel::TrySelectError;
use ipc_channel::ipc::{IpcReceiverSet, IpcSelectionResult, IpcSender};

use super::Config;
use super::book::Body;
use super::book::Book;
use super::spawn::{Spawner, WorkerProcess};
use crate::error::{PoolError, TaskError};
use crate::events::PoolEvent;
use crate::protocol::{self, Message, Reply, Request};
use crate::region::{Inbox, Outbox, Release, Span};
use crate::sys::{self, ExitCause};

/// How many replacement starts may fail in a row before the pool gives up.
const MAX_START_FAILURES: u32 = 5;
/// The adaptive window: batches shorter than this get the deep window.
const SHORT_BATCH: Duration = Duration::from_micros(500);
const DEEP_WINDOW: usize = 8;
/// A worker gets no more batches while this many bytes of input are out
/// with it (it always gets one).
const WINDOW_BYTES: usize = 2 << 20;
const SHALLOW_WINDOW: usize = 2;
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

enum State {
    Running,
    /// Asked to exit after `max_tasks_per_child`; no more work goes to it.
    Retiring,
    /// Sent SIGTERM; SIGKILL follows at `kill_at`.
    Stopping {
        why: TaskError,
        kill_at: Instant,
    },
}

struct Worker {
    pid: u32,
    child: Child,
    requests: IpcSender<Message>,
    /// The batches sent to it, oldest (running) first.
    in_flight: VecDeque<Sent>,
    /// Requests into messages, large ones through our region for this worker.
    outbox: Outbox,
    /// Replies out of messages, large ones through the worker's region,
    /// every place checked.
    inbox: Inbox,
    /// When the front batch started running.
    running_since: Instant,
    tasks_done: u64,
    state: State,
    /// It has work to finish at exit (a job guard to reap): asked to exit
    /// at the end rather than killed.
    exit_work: bool,
}

/// A batch out with a worker.
struct Sent {
    batch: u64,
    /// Its inputs and its payload's bytes, as sent.
    tasks: u64,
    bytes: usize,
    /// The region space its request took, freed when this is dropped (its
    /// reply came: the worker is done reading).
    _lease: Option<Span>,
}

pub(crate) struct Supervisor {
    cfg: Config,
    spawner: Spawner,
    set: IpcReceiverSet,
    /// A channel in `set` that only wakes the loop (see [`waker`](Self::waker)).
    wake: (u64, IpcSender<()>),
    workers: HashMap<u64, Worker>,
    /// The jobs, batches and deliveries (the pool's backend reaches them here).
    pub(crate) book: Book,
    /// Moving average of how long a batch runs on its worker.
    batch_time: Option<Duration>,
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
            book: Book::default(),
            batch_time: None,
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
        } = process;
        let id = match self.set.add(replies) {
            Ok(id) => id,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(PoolError::os("cannot watch a worker's channel", e));
            }
        };
        self.book.set_tasks(self.spawner.program(), tasks);
        let at = self.book.epoch.offset(Instant::now());
        self.book.log(PoolEvent::WorkerStarted { pid, at });
        self.workers.insert(
            id,
            Worker {
                pid,
                child,
                requests,
                in_flight: VecDeque::new(),
                outbox: Outbox::new(Release::OnDrop),
                inbox: Inbox::new(true),
                running_since: Instant::now(),
                tasks_done: 0,
                state: State::Running,
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
        if self.workers.is_empty() && self.book.has_work() {
            self.replace_worker()?;
        }
        self.dispatch();
        let wait = self.next_deadline().map_or(TICK, |d| {
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
        // unread would leave its batch out with its worker forever.
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
        self.check_deadlines();
        #[cfg(debug_assertions)]
        self.check_books();
        failed.map_or(Ok(()), Err)
    }

    /// What is out is exactly what the workers hold: every batch in the book
    /// and not queued is in one worker's in-flight queue, and every batch in
    /// a worker's queue is in the book and not queued. The sets are compared
    /// while the book is small, their sizes always.
    #[cfg(debug_assertions)]
    fn check_books(&self) {
        let mut held: Vec<u64> = self
            .workers
            .values()
            .flat_map(|w| w.in_flight.iter().map(|sent| sent.batch))
            .collect();
        assert_eq!(held.len(), self.book.out_count(), "batches out vs held");
        if let Some(mut out) = self.book.out(4096) {
            held.sort_unstable();
            out.sort_unstable();
            assert_eq!(held, out, "batches out vs batches workers hold");
        }
    }

    fn interrupted(&self) -> Option<i32> {
        self.cfg.interrupt.as_ref()?.received()
    }

    /// Batches per worker: 1 with a timeout (a batch's clock starts when it is
    /// sent), the builder's number if given, else adaptive: short batches need
    /// a deep window to hide the channel's latency, long ones a shallow one so
    /// that none waits behind another on a busy worker while a worker idles.
    fn window(&self) -> usize {
        if self.cfg.timeout.is_some() {
            return 1;
        }
        match (self.cfg.window, self.batch_time) {
            (Some(window), _) => window.max(1),
            (None, Some(t)) if t < SHORT_BATCH => DEEP_WINDOW,
            (None, _) => SHALLOW_WINDOW,
        }
    }

    /// Fills every worker's window, one batch per worker per round, so work
    /// spreads over all workers before any gets a second batch.
    pub fn dispatch(&mut self) {
        for level in 1..=self.window() {
            self.dispatch_up_to(level);
        }
    }

    fn dispatch_up_to(&mut self, level: usize) {
        let max_tasks = self.cfg.max_tasks_per_child;
        for worker in self.workers.values_mut() {
            while worker.in_flight.len() < level && matches!(worker.state, State::Running) {
                // Large batches: one more is enough to keep a worker busy,
                // and its shared-memory ring stays the size it was made.
                let bytes: usize = worker.in_flight.iter().map(|sent| sent.bytes).sum();
                if bytes >= WINDOW_BYTES {
                    break;
                }
                if let Some(max) = max_tasks {
                    let planned: u64 = worker.in_flight.iter().map(|sent| sent.tasks).sum();
                    if worker.tasks_done + planned >= max {
                        break;
                    }
                }
                let Some((id, batch)) = self.book.next_queued() else {
                    return;
                };
                let header = Request::Run {
                    batch: id,
                    task: batch.work.task.to_string(),
                    count: batch.count(),
                    timed: batch.work.timed,
                };
                let sent = match worker.outbox.pack(&header, &batch.work.payload) {
                    Ok((mut message, lease)) => {
                        message.freed = worker.inbox.freed();
                        worker.requests.send(message).is_ok().then_some(lease)
                    }
                    Err(_) => None,
                };
                let Some(lease) = sent else {
                    // The worker is gone; its closed channel will be reported.
                    self.book.unsend(id);
                    break;
                };
                if worker.in_flight.is_empty() {
                    worker.running_since = Instant::now();
                }
                worker.in_flight.push_back(Sent {
                    batch: id,
                    tasks: u64::from(batch.count()),
                    bytes: batch.work.payload.len(),
                    _lease: lease,
                });
            }
        }
    }

    /// A worker's reply: its frame (if every place it names in shared
    /// memory checks out), its batch, and the delivery.
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
        let (batch_id, exit_work) = match reply {
            Reply::Done {
                batch, exit_work, ..
            } => (batch, exit_work),
            Reply::Refused { batch, .. } => (batch, false),
        };
        if worker.in_flight.front().map(|sent| sent.batch) != Some(batch_id) {
            return self.on_malformed(
                id,
                format!("reply for batch {batch_id}, which it was not running"),
            );
        }
        worker.in_flight.pop_front();
        worker.exit_work |= exit_work;
        let now = Instant::now();
        let elapsed = now - worker.running_since;
        let since = self.book.epoch.offset(worker.running_since);
        worker.running_since = now;
        self.batch_time = Some(match self.batch_time {
            Some(average) => (average * 7 + elapsed) / 8,
            None => elapsed,
        });
        let batch = self.book.remove(batch_id).expect("in-flight batches exist");
        worker.tasks_done += batch.count() as u64;
        let pid = worker.pid;
        if let Some(max) = self.cfg.max_tasks_per_child
            && worker.tasks_done >= max
            && worker.in_flight.is_empty()
            && matches!(worker.state, State::Running)
        {
            let _ = protocol::message(&Request::Shutdown).map(|m| worker.requests.send(m));
            worker.state = State::Retiring;
        }
        let (started, body) = match reply {
            Reply::Done { started_ns, .. } => {
                let start = frame.len() - payload_len;
                (
                    self.book.epoch.offset_ns(started_ns),
                    Body::Done(frame, start),
                )
            }
            Reply::Refused { reason, .. } => (
                since,
                Body::Failed(TaskError::Protocol {
                    pid,
                    message: reason,
                }),
            ),
        };
        self.book.deliver(batch, pid, (started, elapsed), body);
    }

    /// A worker that sends bytes we cannot trust is stopped at once.
    fn on_malformed(&mut self, id: u64, message: String) {
        if let Some(worker) = self.workers.get_mut(&id) {
            let _ = sys::kill(worker.pid, libc::SIGKILL);
            worker.state = State::Stopping {
                why: TaskError::Protocol {
                    pid: worker.pid,
                    message,
                },
                kill_at: Instant::now(),
            };
        }
    }

    /// A worker's channel closed: reap it, settle its batches, replace it.
    fn on_closed(&mut self, id: u64) -> Result<(), PoolError> {
        let Some(mut worker) = self.workers.remove(&id) else {
            return Ok(());
        };
        let cause = reap(&mut worker.child, self.cfg.grace);
        let elapsed = worker.running_since.elapsed();
        let started = self.book.epoch.offset(worker.running_since);
        let at = self.book.epoch.offset(Instant::now());
        if !matches!(worker.state, State::Retiring) {
            self.book.log(PoolEvent::WorkerDied {
                pid: worker.pid,
                at,
                cause,
            });
        }
        let mut in_flight = worker.in_flight.into_iter().map(|sent| sent.batch);
        let running = in_flight.next();
        // Batches that never started go back to the front, uncharged, in order.
        for id in in_flight.rev() {
            self.book.unsend(id);
        }
        if let Some(id) = running
            && let Some(mut batch) = self.book.remove(id)
        {
            let error = match worker.state {
                State::Stopping { why, .. } => why,
                _ => TaskError::WorkerDied {
                    pid: worker.pid,
                    cause,
                },
            };
            let cancelled = matches!(error, TaskError::Cancelled);
            let again = batch.count() > 1 || batch.attempts <= self.cfg.retries;
            if again && !cancelled {
                self.book.log(PoolEvent::AttemptLost {
                    first: batch.work.first,
                    count: batch.count(),
                    pid: worker.pid,
                    attempt: batch.attempts,
                    started,
                    elapsed,
                    error: error.clone(),
                });
            }
            if batch.count() > 1 && !cancelled {
                batch.attempts -= 1;
                for single in batch.split().into_iter().rev() {
                    self.book.push_front(single);
                }
            } else if batch.attempts <= self.cfg.retries && !cancelled {
                self.book.push_front(batch);
            } else {
                let times = (started, elapsed);
                self.book
                    .deliver(batch, worker.pid, times, Body::Failed(error));
            }
        }
        // A closed pool replaces its workers too while work is left, as
        // Python's does; the last one is replaced by `turn` if need be.
        if !self.book.is_closed()
            || (self.book.has_work() && self.workers.len() < self.cfg.processes)
        {
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
        self.book.close();
        for worker in self.workers.values() {
            let _ = sys::kill(worker.pid, libc::SIGKILL);
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
                    self.book.close();
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

    fn next_deadline(&self) -> Option<Instant> {
        self.workers
            .values()
            .filter_map(|w| match &w.state {
                State::Stopping { kill_at, .. } => Some(*kill_at),
                State::Running => self.task_deadline(w),
                State::Retiring => None,
            })
            .min()
    }

    fn task_deadline(&self, worker: &Worker) -> Option<Instant> {
        let timeout = self.cfg.timeout?;
        let front = self.book.get(worker.in_flight.front()?.batch)?;
        Some(worker.running_since + timeout * front.count())
    }

    fn check_deadlines(&mut self) {
        let now = Instant::now();
        let Some(timeout) = self.cfg.timeout else {
            return self.kill_overdue(now);
        };
        let overdue: Vec<u64> = self
            .workers
            .iter()
            .filter(|(_, w)| matches!(w.state, State::Running))
            .filter(|(_, w)| self.task_deadline(w).is_some_and(|d| d <= now))
            .map(|(&id, _)| id)
            .collect();
        for id in overdue {
            let worker = self.workers.get_mut(&id).expect("listed above");
            let _ = sys::kill(worker.pid, libc::SIGTERM);
            worker.state = State::Stopping {
                why: TaskError::TimedOut {
                    pid: worker.pid,
                    after: timeout,
                },
                kill_at: now + self.cfg.grace,
            };
        }
        self.kill_overdue(now);
    }

    fn kill_overdue(&mut self, now: Instant) {
        for worker in self.workers.values_mut() {
            if let State::Stopping { kill_at, .. } = &mut worker.state
                && *kill_at <= now
            {
                let _ = sys::kill(worker.pid, libc::SIGKILL);
                *kill_at = now + Duration::from_secs(3600);
            }
        }
    }

    /// Once the book is closed: lets queued work finish, then asks every
    /// worker to exit and reaps it.
    pub fn join(&mut self) -> Result<(), PoolError> {
        while self.book.has_work() {
            self.turn()?;
        }
        for worker in self.workers.values() {
            let _ = protocol::message(&Request::Shutdown).map(|m| worker.requests.send(m));
        }
        for (_, mut worker) in self.workers.drain() {
            reap(&mut worker.child, self.cfg.grace);
        }
        Ok(())
    }

    /// Kills every worker now and fails what was queued.
    pub fn terminate(&mut self) {
        self.book.close();
        for worker in self.workers.values() {
            let _ = sys::kill(worker.pid, libc::SIGKILL);
        }
        for (_, mut worker) in self.workers.drain() {
            let _ = worker.child.wait();
        }
        self.book.cancel_all();
    }
}

impl Drop for Supervisor {
    /// An idle pool's workers that have work to finish at exit (a job
    /// guard to reap) are asked to exit and given a moment; the others hold
    /// nothing and are killed at once, as a busy pool's are, and any that
    /// linger. Either way every worker is reaped.
    fn drop(&mut self) {
        if !self.book.has_work() {
            for worker in self.workers.values() {
                if worker.exit_work {
                    let _ = protocol::message(&Request::Shutdown).map(|m| worker.requests.send(m));
                } else {
                    let _ = sys::kill(worker.pid, libc::SIGKILL);
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
                loop {
                    match worker.child.try_wait() {
                        Ok(Some(_)) => break false,
                        Ok(None) if Instant::now() < deadline => {
                            thread::sleep(Duration::from_millis(1))
                        }
                        _ => break true,
                    }
                }
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
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return ExitCause::from_status(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(1)),
            _ => {
                let _ = child.kill();
                return child
                    .wait()
                    .map(ExitCause::from_status)
                    .unwrap_or(ExitCause::Signal(libc::SIGKILL));
            }
        }
    }
}
