//! The pool's policy, apart from any process or channel: which chunk goes to
//! which worker and when (the window, `maxtasksperchild`), what a reply, a
//! death or a passed deadline does to the chunks out (retry, split, fail),
//! and when a worker is stopped, retired or replaced.
//!
//! A transport (local processes in `local.rs`, MPI ranks in `mpi.rs`) feeds
//! it what happened, each with the time it happened, and carries out what it
//! answers: it sends the chunks [`dispatch`](Scheduler::dispatch) hands out
//! and performs the [`Action`]s. Ranks of an MPI job cannot be stopped or
//! replaced one by one ([`Policy::whole_job`]): abandoned work runs out, and a
//! rank that misbehaves is [dropped](Scheduler::drop_worker), not killed. Nothing here waits or reads a clock, so the unit tests below
//! drive every rule with made-up events and no processes.
//!
//! A worker runs its chunks in the order it receives them, so the front of
//! its queue of chunks out is the one it is running; the rest have not
//! started and go back to the queue uncharged when it dies.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::book::{Body, Book, CallId, Chunk};
use crate::error::TaskError;
use crate::events::PoolEvent;
use crate::sys::ExitCause;

/// The adaptive window: chunks shorter than this get the deep window.
const SHORT_BATCH: Duration = Duration::from_micros(500);
const DEEP_WINDOW: usize = 8;
const SHALLOW_WINDOW: usize = 2;
/// A running chunk never counts as stuck before this.
const STUCK_AFTER: Duration = Duration::from_millis(1);
/// A worker gets no more chunks while this many bytes of input are out
/// with it (it always gets one).
const WINDOW_BYTES: usize = 2 << 20;
/// How long after its SIGKILL a stopping worker is killed again.
const KILL_AGAIN: Duration = Duration::from_secs(3600);

/// How a worker is known to the scheduler: the transport's id for it.
pub(crate) type WorkerId = u64;

/// The rules the pool was built with.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    /// Chunks out per worker; adaptive when `None`.
    pub window: Option<usize>,
    /// How long one input may run.
    pub timeout: Option<Duration>,
    /// How long a worker sent SIGTERM has before SIGKILL.
    pub grace: Duration,
    /// How many more times a single input that kills its worker is tried.
    pub retries: u32,
    /// How many inputs a worker runs before it is replaced.
    pub max_tasks_per_child: Option<u64>,
    /// The workers are the ranks of one MPI job: none can be stopped or
    /// replaced alone, so abandoning a call kills nobody (its late replies
    /// are dropped).
    pub whole_job: bool,
}

/// What the transport is to do for the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Send the worker `signal`.
    Kill { worker: WorkerId, signal: i32 },
    /// Ask the worker to exit once it is done (it ran its limit of inputs).
    Retire { worker: WorkerId },
}

enum State {
    Running,
    /// Asked to exit after `max_tasks_per_child`; no more work goes to it.
    Retiring,
    /// Signalled; SIGKILL follows at `kill_at`. Its running chunk fails with `why`.
    Stopping {
        why: TaskError,
        kill_at: Instant,
    },
}

/// One worker, as the scheduler sees it.
struct Slot {
    pid: u32,
    /// The chunks sent to it, oldest (running) first.
    out: VecDeque<Out>,
    /// When the front chunk started running.
    running_since: Instant,
    /// Inputs it finished.
    tasks_done: u64,
    state: State,
}

/// A chunk out with a worker.
struct Out {
    chunk: u64,
    tasks: u64,
    bytes: usize,
}

/// The policy's state: the [`Book`] of calls and chunks and, for each
/// worker, what it holds.
pub(crate) struct Scheduler {
    policy: Policy,
    /// The calls, chunks and deliveries.
    pub(crate) book: Book,
    slots: HashMap<WorkerId, Slot>,
    /// Moving average of how long a chunk runs on its worker.
    chunk_time: Option<Duration>,
}

impl Scheduler {
    pub fn new(policy: Policy) -> Self {
        Scheduler {
            policy,
            book: Book::default(),
            slots: HashMap::new(),
            chunk_time: None,
        }
    }

    /// A worker started and shook hands.
    pub fn started(&mut self, worker: WorkerId, pid: u32, now: Instant) {
        let at = self.book.epoch.offset(now);
        self.book.log(PoolEvent::WorkerStarted { pid, at });
        self.slots.insert(
            worker,
            Slot {
                pid,
                out: VecDeque::new(),
                running_since: now,
                tasks_done: 0,
                state: State::Running,
            },
        );
    }

    /// Chunks per worker: 1 with a timeout (a chunk's clock starts when it is
    /// sent), the builder's number if given, else adaptive: short chunks need
    /// a deep window to hide the channel's latency, long ones a shallow one so
    /// that none waits behind another on a busy worker while a worker idles.
    fn window(&self) -> usize {
        if self.policy.timeout.is_some() {
            return 1;
        }
        match (self.policy.window, self.chunk_time) {
            (Some(window), _) => window.max(1),
            (None, Some(t)) if t < SHORT_BATCH => DEEP_WINDOW,
            (None, _) => SHALLOW_WINDOW,
        }
    }

    /// Whether the next queued chunk, put behind `slot`'s running one, could
    /// wait long while another worker idles: nothing is known yet of how
    /// long chunks take, the running one is of another task (whose time
    /// says nothing of this one's), or it has run four times as long as
    /// chunks do (and a millisecond at least). The adaptive window then
    /// gives the worker no more.
    fn stuck(&self, slot: &Slot, now: Instant) -> bool {
        let task = |chunk: Option<&Chunk>| chunk.map(|c| c.work.task);
        let running = slot.out.front().and_then(|out| self.book.get(out.chunk));
        if task(running) != task(self.book.peek_queued()) {
            return true;
        }
        match self.chunk_time {
            None => true,
            Some(t) => now.saturating_duration_since(slot.running_since) > (t * 4).max(STUCK_AFTER),
        }
    }

    /// Hands out queued chunks to fill every worker's window, one per worker
    /// per round so work spreads over all workers before any gets a second.
    /// Calls `send` for each; a `send` that returns `false` (the worker is
    /// gone, its death will be reported) puts the chunk back, uncharged.
    pub fn dispatch(&mut self, now: Instant, mut send: impl FnMut(WorkerId, u64, &Book) -> bool) {
        let mut ids: Vec<WorkerId> = self.slots.keys().copied().collect();
        ids.sort_unstable();
        let mut broken = Vec::new();
        for level in 1..=self.window() {
            for &id in &ids {
                if broken.contains(&id) {
                    continue;
                }
                while let Some(chunk) = self.next_for(id, level, now) {
                    if !send(id, chunk, &self.book) {
                        self.book.unsend(chunk);
                        broken.push(id);
                        break;
                    }
                    let slot = self.slots.get_mut(&id).expect("listed above");
                    if slot.out.is_empty() {
                        slot.running_since = now;
                    }
                    let sent = self.book.get(chunk).expect("just taken");
                    slot.out.push_back(Out {
                        chunk,
                        tasks: u64::from(sent.count()),
                        bytes: sent.work.payload.len(),
                    });
                }
            }
        }
    }

    /// The next chunk for worker `id` while it holds fewer than `level`,
    /// cut to what its `maxtasksperchild` allows.
    fn next_for(&mut self, id: WorkerId, level: usize, now: Instant) -> Option<u64> {
        let slot = &self.slots[&id];
        if slot.out.len() >= level || !matches!(slot.state, State::Running) {
            return None;
        }
        if !slot.out.is_empty() && self.policy.window.is_none() && self.stuck(slot, now) {
            return None;
        }
        // Large chunks: one more is enough to keep a worker busy, and its
        // shared-memory ring stays the size it was made.
        if slot.out.iter().map(|out| out.bytes).sum::<usize>() >= WINDOW_BYTES {
            return None;
        }
        let room = match self.policy.max_tasks_per_child {
            Some(max) => {
                let planned: u64 = slot.out.iter().map(|out| out.tasks).sum();
                let room = max.saturating_sub(slot.tasks_done + planned);
                if room == 0 {
                    return None;
                }
                Some(room)
            }
            None => None,
        };
        let (chunk, _) = self.book.next_queued()?;
        if let Some(room) = room {
            self.book.cut(chunk, room);
        }
        Some(chunk)
    }

    /// Worker `id` finished `chunk`: its `body` is delivered. Returns
    /// [`Action::Retire`] when the worker reached its limit, or `None`; an
    /// `Err` when it was not running that chunk (the reply is malformed).
    pub fn done(
        &mut self,
        id: WorkerId,
        chunk: u64,
        now: Instant,
        started: Option<Duration>,
        body: Body,
    ) -> Result<Option<Action>, String> {
        let Some(slot) = self.slots.get_mut(&id) else {
            return Ok(None);
        };
        if slot.out.front().map(|out| out.chunk) != Some(chunk) {
            return Err(format!("reply for chunk {chunk}, which it was not running"));
        }
        slot.out.pop_front();
        let elapsed = now.saturating_duration_since(slot.running_since);
        let since = self.book.epoch.offset(slot.running_since);
        slot.running_since = now;
        self.chunk_time = Some(match self.chunk_time {
            Some(average) => (average * 7 + elapsed) / 8,
            None => elapsed,
        });
        let finished = self.book.remove(chunk).expect("chunks out exist");
        slot.tasks_done += u64::from(finished.count());
        let pid = slot.pid;
        let mut action = None;
        if let Some(max) = self.policy.max_tasks_per_child
            && slot.tasks_done >= max
            && slot.out.is_empty()
            && matches!(slot.state, State::Running)
        {
            slot.state = State::Retiring;
            action = Some(Action::Retire { worker: id });
        }
        let started = started.unwrap_or(since);
        self.book.deliver(finished, pid, (started, elapsed), body);
        Ok(action)
    }

    /// Worker `id` sent bytes that cannot be trusted: it is killed, and its
    /// running chunk fails with `message`.
    pub fn malformed(&mut self, id: WorkerId, message: String, now: Instant) -> Option<Action> {
        let slot = self.slots.get_mut(&id)?;
        slot.state = State::Stopping {
            why: TaskError::Protocol {
                pid: slot.pid,
                message,
            },
            kill_at: now + KILL_AGAIN,
        };
        Some(Action::Kill {
            worker: id,
            signal: libc::SIGKILL,
        })
    }

    /// Worker `id` is gone (`cause`): the chunk it was running is split into
    /// single inputs, tried again or failed; the ones it had not started go
    /// back to the front of the queue, uncharged, in order.
    pub fn died(&mut self, id: WorkerId, cause: ExitCause, now: Instant) {
        self.release(id, Ok(cause), now);
    }

    /// Worker `id` gets no more work and will not be heard from (an MPI rank,
    /// which cannot be stopped alone): as [`died`](Self::died), but nothing
    /// died. Its running chunk fails with `why`, or with why it was being
    /// stopped ([`malformed`](Self::malformed)); with [`TaskError::Lost`] it
    /// fails whole, never split or tried again.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code, reason = "the MPI transport's"))]
    pub fn drop_worker(&mut self, id: WorkerId, why: Option<TaskError>, now: Instant) {
        if let (Some(why), Some(slot)) = (why, self.slots.get_mut(&id)) {
            slot.state = State::Stopping {
                why,
                kill_at: now + KILL_AGAIN,
            };
        }
        let unheard = TaskError::Lost {
            pid: self.slots.get(&id).map_or(0, |slot| slot.pid),
            message: "dropped".into(),
        };
        self.release(id, Err(unheard), now);
    }

    /// Whether any worker holds a chunk.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code, reason = "the MPI transport's"))]
    pub fn busy(&self) -> bool {
        self.slots.values().any(|slot| !slot.out.is_empty())
    }

    /// The workers that hold a chunk.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code, reason = "the MPI transport's"))]
    pub fn busy_workers(&self) -> Vec<WorkerId> {
        let mut busy: Vec<WorkerId> = self
            .slots
            .iter()
            .filter(|(_, slot)| !slot.out.is_empty())
            .map(|(&id, _)| id)
            .collect();
        busy.sort_unstable();
        busy
    }

    /// Whether any worker can take work.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code, reason = "the MPI transport's"))]
    pub fn usable(&self) -> bool {
        self.slots
            .values()
            .any(|slot| matches!(slot.state, State::Running))
    }

    /// Takes worker `id` out: it died of `cause` (logged), or, as `Err`, it
    /// was dropped and its running chunk fails with that error if it was
    /// not being stopped for another.
    fn release(&mut self, id: WorkerId, cause: Result<ExitCause, TaskError>, now: Instant) {
        let Some(slot) = self.slots.remove(&id) else {
            return;
        };
        let elapsed = now.saturating_duration_since(slot.running_since);
        let started = self.book.epoch.offset(slot.running_since);
        let at = self.book.epoch.offset(now);
        if let Ok(cause) = cause
            && !matches!(slot.state, State::Retiring)
        {
            self.book.log(PoolEvent::WorkerDied {
                pid: slot.pid,
                at,
                cause,
            });
        }
        let mut out = slot.out.iter().map(|out| out.chunk);
        let running = out.next();
        for chunk in out.rev() {
            self.book.unsend(chunk);
        }
        if let Some(chunk) = running
            && let Some(mut chunk) = self.book.remove(chunk)
        {
            let error = match (slot.state, cause) {
                (State::Stopping { why, .. }, _) => why,
                (_, Ok(cause)) => TaskError::WorkerDied {
                    pid: slot.pid,
                    cause,
                },
                (_, Err(why)) => why,
            };
            // Cancelled or lost with its worker: never split or tried again.
            let cancelled = matches!(error, TaskError::Cancelled | TaskError::Lost { .. });
            let again = chunk.count() > 1 || chunk.attempts <= self.policy.retries;
            if again && !cancelled {
                self.book.log(PoolEvent::AttemptLost {
                    first: chunk.work.first,
                    count: chunk.count(),
                    pid: slot.pid,
                    attempt: chunk.attempts,
                    started,
                    elapsed,
                    error: error.clone(),
                });
            }
            if chunk.count() > 1 && !cancelled {
                chunk.attempts -= 1;
                for single in chunk.split().into_iter().rev() {
                    self.book.push_front(single);
                }
            } else if chunk.attempts <= self.policy.retries && !cancelled {
                self.book.push_front(chunk);
            } else {
                let times = (started, elapsed);
                self.book
                    .deliver(chunk, slot.pid, times, Body::Failed(error));
            }
        }
    }

    /// Drops `call`: its queued chunks go, and a worker running one of its
    /// chunks is killed (to be replaced), so that no later call waits behind
    /// work nobody wants; its chunks behind that are dropped with it.
    pub fn abandon(&mut self, call: CallId, now: Instant) -> Vec<Action> {
        self.book.abandon(call);
        let mut actions = Vec::new();
        if self.policy.whole_job {
            return actions;
        }
        for (&id, slot) in &mut self.slots {
            let running = slot.out.front().map(|out| out.chunk);
            let theirs = running
                .and_then(|chunk| self.book.get(chunk))
                .is_some_and(|chunk| chunk.call == call);
            if theirs && !matches!(slot.state, State::Stopping { .. }) {
                slot.state = State::Stopping {
                    why: TaskError::Cancelled,
                    kill_at: now + KILL_AGAIN,
                };
                actions.push(Action::Kill {
                    worker: id,
                    signal: libc::SIGKILL,
                });
            }
        }
        actions
    }

    /// The transport let every worker go (stopped, joined or killed): what
    /// they held stays in the book as it was.
    pub fn forget_workers(&mut self) {
        self.slots.clear();
    }

    /// Whether a worker that died should be replaced, with `processes` wanted:
    /// always while the pool takes work; after `close` while work is left, as
    /// Python's pool does.
    pub fn wants_replacement(&self, processes: usize) -> bool {
        !self.book.is_closed() || (self.book.has_work() && self.slots.len() < processes)
    }

    /// The next moment [`tick`](Self::tick) has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .values()
            .filter_map(|slot| match &slot.state {
                State::Stopping { kill_at, .. } => Some(*kill_at),
                State::Running => self.task_deadline(slot),
                State::Retiring => None,
            })
            .min()
    }

    fn task_deadline(&self, slot: &Slot) -> Option<Instant> {
        let timeout = self.policy.timeout?;
        let front = self.book.get(slot.out.front()?.chunk)?;
        Some(slot.running_since + timeout * front.count())
    }

    /// The deadlines passed at `now`: a worker whose chunk ran too long is
    /// sent SIGTERM, one that had its grace after that is sent SIGKILL.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if let Some(timeout) = self.policy.timeout {
            let mut overdue: Vec<WorkerId> = self
                .slots
                .iter()
                .filter(|(_, slot)| matches!(slot.state, State::Running))
                .filter(|(_, slot)| self.task_deadline(slot).is_some_and(|d| d <= now))
                .map(|(&id, _)| id)
                .collect();
            overdue.sort_unstable();
            for id in overdue {
                let slot = self.slots.get_mut(&id).expect("listed above");
                slot.state = State::Stopping {
                    why: TaskError::TimedOut {
                        pid: slot.pid,
                        after: timeout,
                    },
                    kill_at: now + self.policy.grace,
                };
                actions.push(Action::Kill {
                    worker: id,
                    signal: libc::SIGTERM,
                });
            }
        }
        for (&id, slot) in &mut self.slots {
            if let State::Stopping { kill_at, .. } = &mut slot.state
                && *kill_at <= now
            {
                *kill_at = now + KILL_AGAIN;
                actions.push(Action::Kill {
                    worker: id,
                    signal: libc::SIGKILL,
                });
            }
        }
        actions
    }

    /// What is out is exactly what the workers hold: every chunk in the book
    /// and not queued is out with one worker, and every chunk out with a
    /// worker is in the book and not queued. The sets are compared while the
    /// book is small, their sizes always.
    #[cfg(debug_assertions)]
    pub fn check(&self) {
        let mut held: Vec<u64> = self
            .slots
            .values()
            .flat_map(|slot| slot.out.iter().map(|out| out.chunk))
            .collect();
        assert_eq!(held.len(), self.book.out_count(), "chunks out vs held");
        if let Some(mut out) = self.book.out(4096) {
            held.sort_unstable();
            out.sort_unstable();
            assert_eq!(held, out, "chunks out vs chunks workers hold");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::book::{Delivery, Encoded};
    use crate::protocol::Frame;

    /// A small xorshift generator: the core has no `rand` to lean on.
    struct Rng(u64);

    impl Rng {
        fn random_range(&mut self, range: std::ops::Range<u64>) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            range.start + self.0 % (range.end - range.start)
        }
    }

    const JOB: CallId = 1;

    /// Inputs of 8 bytes each, so a chunk can be split anywhere.
    fn work(first: u64, count: u32) -> Encoded {
        Encoded {
            task: "t",
            first,
            count,
            payload: vec![0; 8 * count as usize],
            timed: false,
            measure: |rest| (rest.len() >= 8).then_some(8),
        }
    }

    fn scheduler(policy: Policy) -> Scheduler {
        let mut sched = Scheduler::new(policy);
        sched.book.open_call(JOB).unwrap();
        sched
    }

    /// Every chunk handed out, as (worker, first input, count).
    fn dispatch(sched: &mut Scheduler, now: Instant) -> Vec<(WorkerId, u64, u32)> {
        let mut sent = Vec::new();
        sched.dispatch(now, |worker, chunk, book| {
            let chunk = book.get(chunk).unwrap();
            sent.push((worker, chunk.work.first, chunk.count()));
            true
        });
        #[cfg(debug_assertions)]
        sched.check();
        sent
    }

    /// The chunk ids a worker holds, oldest first.
    fn held(sched: &Scheduler, worker: WorkerId) -> Vec<u64> {
        sched.slots[&worker].out.iter().map(|o| o.chunk).collect()
    }

    fn ok() -> Body {
        Body::Done(Frame::from(Vec::new()), 0)
    }

    fn deliveries(sched: &mut Scheduler) -> Vec<Delivery> {
        std::iter::from_fn(|| sched.book.take(JOB)).collect()
    }

    fn finish_front(sched: &mut Scheduler, worker: WorkerId, now: Instant) -> Option<Action> {
        let chunk = held(sched, worker)[0];
        sched.done(worker, chunk, now, None, ok()).unwrap()
    }

    #[test]
    fn work_spreads_over_every_worker_before_any_gets_a_second_chunk() {
        let now = Instant::now();
        let mut sched = scheduler(Policy {
            window: Some(2),
            ..Policy::default()
        });
        sched.started(1, 101, now);
        sched.started(2, 102, now);
        for i in 0..5 {
            sched.book.submit(JOB, work(i, 1));
        }
        let sent = dispatch(&mut sched, now);
        let order: Vec<(WorkerId, u64)> = sent.iter().map(|&(w, first, _)| (w, first)).collect();
        assert_eq!(order, [(1, 0), (2, 1), (1, 2), (2, 3)]);
    }

    #[test]
    fn a_worker_holds_at_most_its_window() {
        let now = Instant::now();
        let mut sched = scheduler(Policy {
            window: Some(3),
            ..Policy::default()
        });
        sched.started(1, 101, now);
        for i in 0..10 {
            sched.book.submit(JOB, work(i, 1));
        }
        assert_eq!(dispatch(&mut sched, now).len(), 3);
        assert!(dispatch(&mut sched, now).is_empty());
        finish_front(&mut sched, 1, now);
        assert_eq!(dispatch(&mut sched, now), [(1, 3, 1)]);
    }

    #[test]
    fn a_timeout_makes_the_window_one_chunk() {
        let now = Instant::now();
        let mut sched = scheduler(Policy {
            window: Some(4),
            timeout: Some(Duration::from_secs(1)),
            ..Policy::default()
        });
        sched.started(1, 101, now);
        for i in 0..3 {
            sched.book.submit(JOB, work(i, 1));
        }
        assert_eq!(dispatch(&mut sched, now).len(), 1);
    }

    #[test]
    fn short_chunks_deepen_the_adaptive_window() {
        let now = Instant::now();
        let mut sched = scheduler(Policy::default());
        sched.started(1, 101, now);
        for i in 0..20 {
            sched.book.submit(JOB, work(i, 1));
        }
        // Nothing is known of the chunks yet: one each.
        assert_eq!(dispatch(&mut sched, now).len(), 1);
        finish_front(&mut sched, 1, now + Duration::from_micros(10));
        let more = dispatch(&mut sched, now + Duration::from_micros(10));
        assert_eq!(more.len(), DEEP_WINDOW);
    }

    #[test]
    fn no_chunk_goes_behind_another_tasks_running_chunk() {
        let now = Instant::now();
        let mut sched = scheduler(Policy::default());
        sched.started(1, 101, now);
        sched.started(2, 102, now);
        // What is known of "t": its chunks take 10 us.
        sched.book.submit(JOB, work(0, 1));
        dispatch(&mut sched, now);
        finish_front(&mut sched, 1, now + Duration::from_micros(10));
        // Worker 1 starts another task; "t"'s chunks go to worker 2 alone,
        // however fresh the other task's chunk is.
        let at = now + Duration::from_micros(20);
        sched.book.submit(
            JOB,
            Encoded {
                task: "other",
                ..work(1, 1)
            },
        );
        assert_eq!(dispatch(&mut sched, at), [(1, 1, 1)]);
        for i in 2..5 {
            sched.book.submit(JOB, work(i, 1));
        }
        let sent = dispatch(&mut sched, at);
        assert!(sent.iter().all(|&(worker, _, _)| worker == 2), "{sent:?}");
        assert_eq!(sent.len(), 3);
    }

    #[test]
    fn no_chunk_waits_behind_a_long_one_while_another_worker_could_take_it() {
        let now = Instant::now();
        let mut sched = scheduler(Policy::default());
        sched.started(1, 101, now);
        sched.started(2, 102, now);
        // A long task goes first, before anything is known: one chunk each.
        sched.book.submit(JOB, work(0, 1));
        assert_eq!(dispatch(&mut sched, now), [(1, 0, 1)]);
        sched.book.submit(JOB, work(1, 1));
        sched.book.submit(JOB, work(2, 1));
        let at = now + Duration::from_micros(50);
        assert_eq!(dispatch(&mut sched, at), [(2, 1, 1)]);
        // Worker 2's short chunk is back: its next one goes there, with room
        // for more; worker 1, still on its long chunk, gets none behind it.
        let later = at + Duration::from_millis(5);
        finish_front(&mut sched, 2, at + Duration::from_micros(20));
        assert_eq!(dispatch(&mut sched, later), [(2, 2, 1)]);
        sched.book.submit(JOB, work(3, 1));
        assert_eq!(dispatch(&mut sched, later), [(2, 3, 1)]);
        assert_eq!(held(&sched, 1).len(), 1);
    }

    #[test]
    fn large_chunks_go_one_more_at_a_time() {
        let now = Instant::now();
        let mut sched = scheduler(Policy {
            window: Some(8),
            ..Policy::default()
        });
        sched.started(1, 101, now);
        let big = WINDOW_BYTES / 8;
        for i in 0..3 {
            sched.book.submit(JOB, work(i * big as u64, big as u32));
        }
        assert_eq!(dispatch(&mut sched, now).len(), 1);
    }

    #[test]
    fn a_chunk_that_cannot_be_sent_goes_back_uncharged() {
        let now = Instant::now();
        let mut sched = scheduler(Policy::default());
        sched.started(1, 101, now);
        sched.book.submit(JOB, work(0, 1));
        sched.dispatch(now, |_, _, _| false);
        assert!(held(&sched, 1).is_empty());
        let (_, chunk) = sched.book.next_queued().unwrap();
        assert_eq!(chunk.attempts, 1, "charged only now");
    }

    #[test]
    fn a_reply_for_a_chunk_the_worker_is_not_running_is_refused() {
        let now = Instant::now();
        let mut sched = scheduler(Policy {
            window: Some(2),
            ..Policy::default()
        });
        sched.started(1, 101, now);
        sched.book.submit(JOB, work(0, 1));
        sched.book.submit(JOB, work(1, 1));
        dispatch(&mut sched, now);
        let second = held(&sched, 1)[1];
        assert!(sched.done(1, second, now, None, ok()).is_err());
        assert!(sched.done(1, 999, now, None, ok()).is_err());
        assert!(deliveries(&mut sched).is_empty());
    }

    #[test]
    fn a_reply_delivers_its_chunk_with_the_workers_pid() {
        let now = Instant::now();
        let mut sched = scheduler(Policy::default());
        sched.started(1, 101, now);
        sched.book.submit(JOB, work(0, 3));
        dispatch(&mut sched, now);
        assert_eq!(finish_front(&mut sched, 1, now), None);
        let delivered = deliveries(&mut sched);
        assert_eq!(delivered.len(), 1);
        let d = &delivered[0];
        assert_eq!((d.first, d.count, d.pid, d.attempts), (0, 3, 101, 1));
        assert!(!sched.book.has_work());
    }

    #[test]
    fn a_death_splits_the_running_chunk_and_requeues_the_rest_uncharged_in_order() {
        let now = Instant::now();
        let mut sched = scheduler(Policy {
            window: Some(3),
            ..Policy::default()
        });
        sched.started(1, 101, now);
        sched.book.submit(JOB, work(0, 3));
        sched.book.submit(JOB, work(3, 2));
        sched.book.submit(JOB, work(5, 1));
        assert_eq!(dispatch(&mut sched, now).len(), 3);
        sched.died(1, ExitCause::Signal(libc::SIGKILL), now);
        assert!(deliveries(&mut sched).is_empty(), "nothing lost to a split");
        sched.started(2, 102, now);
        let sent = dispatch(&mut sched, now);
        assert_eq!(sent, [(2, 0, 1), (2, 1, 1), (2, 2, 1)]);
        let mut attempts = Vec::new();
        while let Some((_, chunk)) = sched.book.next_queued() {
            attempts.push((chunk.work.first, chunk.count(), chunk.attempts));
        }
        assert_eq!(attempts, [(3, 2, 1), (5, 1, 1)], "uncharged, in order");
    }

    #[test]
    fn a_single_input_that_kills_its_worker_is_retried_then_fails() {
        let now = Instant::now();
        let mut sched = scheduler(Policy {
            retries: 1,
            ..Policy::default()
        });
        sched.book.submit(JOB, work(7, 1));
        for worker in 1..=2 {
            sched.started(worker, 100 + worker as u32, now);
            assert_eq!(dispatch(&mut sched, now), [(worker, 7, 1)]);
            sched.died(worker, ExitCause::Signal(libc::SIGSEGV), now);
        }
        let delivered = deliveries(&mut sched);
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0].attempts, 2);
        assert!(matches!(
            delivered[0].body,
            Body::Failed(TaskError::WorkerDied { pid: 102, .. })
        ));
        assert!(!sched.book.has_work());
    }

    #[test]
    fn maxtasksperchild_is_exact_whatever_the_chunk_size() {
        let now = Instant::now();
        let mut sched = scheduler(Policy {
            window: Some(4),
            max_tasks_per_child: Some(2),
            ..Policy::default()
        });
        sched.started(1, 101, now);
        sched.book.submit(JOB, work(0, 5));
        assert_eq!(dispatch(&mut sched, now), [(1, 0, 2)]);
        assert_eq!(
            finish_front(&mut sched, 1, now),
            Some(Action::Retire { worker: 1 })
        );
        assert!(dispatch(&mut sched, now).is_empty(), "retiring");
        sched.died(1, ExitCause::Status(0), now);
        sched.started(2, 102, now);
        assert_eq!(dispatch(&mut sched, now), [(2, 2, 2)]);
        let (_, rest) = sched.book.next_queued().unwrap();
        assert_eq!((rest.work.first, rest.count(), rest.attempts), (4, 1, 1));
    }

    #[test]
    fn an_overdue_chunk_gets_sigterm_then_sigkill_and_fails_as_timed_out() {
        let now = Instant::now();
        let second = Duration::from_secs(1);
        let mut sched = scheduler(Policy {
            timeout: Some(second),
            grace: second,
            ..Policy::default()
        });
        sched.started(1, 101, now);
        sched.book.submit(JOB, work(0, 2));
        dispatch(&mut sched, now);
        assert_eq!(sched.next_deadline(), Some(now + 2 * second), "per input");
        assert!(sched.tick(now + second).is_empty());
        let term = Action::Kill {
            worker: 1,
            signal: libc::SIGTERM,
        };
        assert_eq!(sched.tick(now + 2 * second), [term]);
        assert_eq!(sched.next_deadline(), Some(now + 3 * second));
        let kill = Action::Kill {
            worker: 1,
            signal: libc::SIGKILL,
        };
        assert_eq!(sched.tick(now + 3 * second), [kill]);
        assert!(sched.tick(now + 4 * second).is_empty(), "once");
        sched.died(1, ExitCause::Signal(libc::SIGKILL), now + 3 * second);
        // The chunk of two is split to find the slow input, like a death;
        // a single input that times out is charged an attempt like one.
        sched.started(2, 102, now);
        assert_eq!(dispatch(&mut sched, now), [(2, 0, 1)]);
        assert_eq!(sched.tick(now + second).len(), 1);
        sched.died(2, ExitCause::Signal(libc::SIGTERM), now + second);
        let delivered = deliveries(&mut sched);
        assert_eq!(delivered.len(), 1, "no retries left");
        assert_eq!(delivered[0].first, 0);
        assert!(matches!(
            delivered[0].body,
            Body::Failed(TaskError::TimedOut { pid: 102, .. })
        ));
    }

    #[test]
    fn a_worker_that_sends_garbage_is_killed_and_its_chunk_fails_with_the_reason() {
        let now = Instant::now();
        let mut sched = scheduler(Policy::default());
        sched.started(1, 101, now);
        sched.book.submit(JOB, work(0, 1));
        dispatch(&mut sched, now);
        let kill = Action::Kill {
            worker: 1,
            signal: libc::SIGKILL,
        };
        assert_eq!(sched.malformed(1, "bad".into(), now), Some(kill));
        assert!(sched.tick(now + Duration::from_secs(60)).is_empty());
        sched.died(1, ExitCause::Signal(libc::SIGKILL), now);
        let delivered = deliveries(&mut sched);
        assert!(matches!(
            &delivered[0].body,
            Body::Failed(TaskError::Protocol { message, .. }) if message == "bad"
        ));
    }

    #[test]
    fn an_abandoned_call_kills_the_worker_running_it_and_drops_the_rest() {
        let now = Instant::now();
        let mut sched = scheduler(Policy {
            window: Some(2),
            retries: 3,
            ..Policy::default()
        });
        sched.book.open_call(2).unwrap();
        sched.started(1, 101, now);
        sched.started(2, 102, now);
        sched.book.submit(JOB, work(0, 2));
        sched.book.submit(2, work(0, 1));
        sched.book.submit(JOB, work(2, 1));
        sched.book.submit(JOB, work(3, 1));
        assert_eq!(dispatch(&mut sched, now).len(), 4);
        let kill = Action::Kill {
            worker: 1,
            signal: libc::SIGKILL,
        };
        assert_eq!(sched.abandon(JOB, now), [kill]);
        assert!(sched.abandon(JOB, now).is_empty(), "once");
        sched.died(1, ExitCause::Signal(libc::SIGKILL), now);
        assert!(deliveries(&mut sched).is_empty(), "nobody wants it");
        // Worker 2 finishes what it holds: the other call's chunk, and one
        // of the abandoned call's already out, whose results nobody gets.
        finish_front(&mut sched, 2, now);
        finish_front(&mut sched, 2, now);
        assert!(deliveries(&mut sched).is_empty());
        assert_eq!(sched.book.take(2).map(|d| d.pid), Some(102));
        assert!(!sched.book.has_work(), "not split, not retried");
    }

    #[test]
    fn a_closed_pool_replaces_workers_only_while_work_is_left() {
        let now = Instant::now();
        let mut sched = scheduler(Policy::default());
        sched.started(1, 101, now);
        sched.started(2, 102, now);
        sched.died(1, ExitCause::Status(1), now);
        assert!(sched.wants_replacement(2), "open");
        sched.book.close();
        assert!(!sched.wants_replacement(2), "closed and idle");
        sched.book.submit(JOB, work(0, 1));
        assert!(sched.wants_replacement(2), "closed with work");
        assert!(!sched.wants_replacement(1), "closed, enough workers");
    }

    /// A fake transport under thousands of random events: workers that
    /// reply, die, time out and start again, calls submitted all along. Every
    /// input is delivered exactly once, and the bookkeeping holds throughout.
    #[test]
    fn random_replies_deaths_and_starts_deliver_every_input_exactly_once() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let start = Instant::now();
        let mut now = start;
        let mut sched = scheduler(Policy {
            window: None,
            timeout: None,
            grace: Duration::from_millis(5),
            retries: 2,
            max_tasks_per_child: Some(7),
            whole_job: false,
        });
        let mut next_worker = 0;
        let mut next_input = 0;
        let mut delivered = Vec::new();
        for _ in 0..20_000 {
            now += Duration::from_micros(rng.random_range(0..1000));
            let workers: Vec<WorkerId> = sched.slots.keys().copied().collect();
            match rng.random_range(0..10) {
                0 if workers.len() < 4 => {
                    next_worker += 1;
                    sched.started(next_worker, next_worker as u32, now);
                }
                1 => {
                    let count = rng.random_range(1..12) as u32;
                    sched.book.submit(JOB, work(next_input, count));
                    next_input += u64::from(count);
                }
                2 if !workers.is_empty() => {
                    let victim = workers[rng.random_range(0..workers.len() as u64) as usize];
                    sched.died(victim, ExitCause::Signal(libc::SIGKILL), now);
                }
                3 if !workers.is_empty() => {
                    let victim = workers[rng.random_range(0..workers.len() as u64) as usize];
                    sched.malformed(victim, "noise".into(), now);
                }
                _ => {
                    for id in workers {
                        if let Some(&chunk) = held(&sched, id).first()
                            && rng.random_range(0..2) == 0
                            && let Ok(Some(Action::Retire { worker })) =
                                sched.done(id, chunk, now, None, ok())
                        {
                            sched.died(worker, ExitCause::Status(0), now);
                        }
                    }
                }
            }
            sched.tick(now);
            dispatch(&mut sched, now);
            delivered.extend(deliveries(&mut sched));
        }
        // Heal: one worker that always replies finishes what is left.
        for id in sched.slots.keys().copied().collect::<Vec<_>>() {
            sched.died(id, ExitCause::Status(0), now);
        }
        next_worker += 1;
        sched.started(next_worker, 0, now);
        while sched.book.has_work() {
            if sched.slots.is_empty() {
                next_worker += 1;
                sched.started(next_worker, 0, now);
            }
            dispatch(&mut sched, now);
            let id = *sched.slots.keys().next().unwrap();
            if held(&sched, id).is_empty() {
                break;
            }
            if let Some(Action::Retire { worker }) = finish_front(&mut sched, id, now) {
                sched.died(worker, ExitCause::Status(0), now);
            }
            delivered.extend(deliveries(&mut sched));
        }
        let mut times = vec![0u32; next_input as usize];
        for d in &delivered {
            for i in d.first..d.first + u64::from(d.count) {
                times[i as usize] += 1;
            }
        }
        assert!(next_input > 1000, "{next_input} inputs");
        assert!(times.iter().all(|&n| n == 1), "every input once");
        let failed = delivered
            .iter()
            .filter(|d| matches!(d.body, Body::Failed(_)));
        assert!(failed.count() > 0, "some inputs ran out of retries");
    }
    /// An MPI job's ranks: one chunk each, and none can be stopped alone.
    fn ranks() -> Scheduler {
        let now = Instant::now();
        let mut sched = scheduler(Policy {
            window: Some(1),
            whole_job: true,
            ..Policy::default()
        });
        sched.started(0, 100, now);
        sched.started(1, 101, now);
        sched
    }

    #[test]
    fn a_rank_gets_its_next_chunk_id_only_once_it_replied() {
        let now = Instant::now();
        let mut sched = ranks();
        for i in 0..4 {
            sched.book.submit(JOB, work(i, 1));
        }
        assert_eq!(dispatch(&mut sched, now), [(0, 0, 1), (1, 1, 1)]);
        assert!(dispatch(&mut sched, now).is_empty());
        finish_front(&mut sched, 1, now);
        assert_eq!(dispatch(&mut sched, now), [(1, 2, 1)]);
    }

    #[test]
    fn abandoning_a_call_on_ranks_kills_nobody_and_its_late_reply_is_dropped() {
        let now = Instant::now();
        let mut sched = ranks();
        sched.book.submit(JOB, work(0, 1));
        sched.book.open_call(JOB + 1).unwrap();
        sched.book.submit(JOB + 1, work(0, 1));
        sched.book.submit(JOB + 1, work(1, 1));
        assert_eq!(dispatch(&mut sched, now).len(), 2);
        assert_eq!(sched.abandon(JOB, now), []);
        // The rank finishes the abandoned chunk and goes on with other work.
        finish_front(&mut sched, 0, now);
        assert!(deliveries(&mut sched).is_empty());
        assert_eq!(dispatch(&mut sched, now), [(0, 1, 1)]);
    }

    #[test]
    fn a_rank_dropped_as_lost_fails_its_whole_chunk_and_gets_no_more_work() {
        let now = Instant::now();
        let mut sched = ranks();
        sched.book.submit(JOB, work(0, 3));
        sched.book.submit(JOB, work(3, 1));
        sched.book.submit(JOB, work(4, 1));
        assert_eq!(dispatch(&mut sched, now).len(), 2);
        let lost = TaskError::Lost {
            pid: 100,
            message: "rank 1 did not answer".into(),
        };
        sched.drop_worker(0, Some(lost.clone()), now);
        // Not split into singles to try again: the three inputs are lost.
        let failed = deliveries(&mut sched);
        assert_eq!(failed.len(), 1);
        assert_eq!((failed[0].first, failed[0].count), (0, 3));
        assert!(matches!(&failed[0].body, Body::Failed(e) if *e == lost));
        assert_eq!(sched.busy_workers(), [1]);
        finish_front(&mut sched, 1, now);
        assert_eq!(dispatch(&mut sched, now), [(1, 4, 1)]);
    }

    #[test]
    fn a_rank_that_sends_garbage_fails_its_chunk_and_is_dropped_not_killed() {
        let now = Instant::now();
        let mut sched = ranks();
        sched.book.submit(JOB, work(0, 1));
        sched.book.submit(JOB, work(1, 1));
        dispatch(&mut sched, now);
        let chunk = held(&sched, 0)[0];
        assert!(sched.done(0, chunk + 1, now, None, ok()).is_err());
        let kill = sched.malformed(0, "reply for another chunk".into(), now);
        assert!(matches!(kill, Some(Action::Kill { worker: 0, .. })));
        sched.drop_worker(0, None, now);
        let failed = deliveries(&mut sched);
        assert!(matches!(
            &failed[0].body,
            Body::Failed(TaskError::Protocol { pid: 100, message }) if message == "reply for another chunk"
        ));
        assert!(sched.usable());
        sched.drop_worker(1, None, now);
        assert!(!sched.usable());
    }
}
