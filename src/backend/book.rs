//! The bookkeeping both backends share: call ids, the queue and table of
//! chunks of encoded inputs, each call's mailbox of deliveries, the tasks the
//! workers know, and whether the pool still takes work. It knows nothing of
//! processes or ranks: the scheduler keeps the workers, over one [`Book`],
//! for the local and the MPI transport alike.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{PoolError, TaskError};
use crate::events::PoolEvent;
use crate::protocol::{Frame, Request};
use crate::sys::Epoch;

/// The most [`PoolEvent`]s kept between two takes; later ones are counted.
const MAX_EVENTS: usize = 100_000;

/// Identifies one call (a map, an imap, a submit) among the pool's work.
pub(crate) type CallId = u64;

/// Finds how many bytes the first encoded input of a payload takes; `None`
/// if it does not decode.
pub(crate) type Measure = fn(&[u8]) -> Option<usize>;

/// Encoded inputs of consecutive indices for one task, before they are queued.
pub(crate) struct Encoded {
    pub task: &'static str,
    pub first: u64,
    pub count: u32,
    /// The inputs, encoded back to back.
    pub payload: Vec<u8>,
    /// Whether each input's time is measured.
    pub timed: bool,
    /// Finds where each input ends, to split the chunk.
    pub measure: Measure,
}

/// [`Encoded`] queued for, or out with, a worker: sent as one message.
pub(crate) struct Chunk {
    pub call: CallId,
    pub work: Encoded,
    /// How many times it has been dispatched.
    pub attempts: u32,
}

impl Chunk {
    /// The request that runs this chunk, known by `id`, on a worker.
    pub fn request(&self, id: u64) -> Request {
        Request::Run {
            chunk: id,
            task: self.work.task.to_string(),
            count: self.count(),
            timed: self.work.timed,
        }
    }

    pub fn count(&self) -> u32 {
        self.work.count
    }

    /// One chunk per input, for finding which input kills its worker.
    /// (Inputs are found by decoding, which only fails for bytes this
    /// process did not encode: what is left then stays one chunk.)
    pub fn split(self) -> Vec<Chunk> {
        let Encoded {
            task,
            first,
            count,
            payload,
            timed,
            measure,
        } = self.work;
        let mut chunks = Vec::with_capacity(count as usize);
        let mut rest = &payload[..];
        for i in 0..count {
            let left = count - i;
            let used = match left {
                1 => rest.len(),
                _ => measure(rest).unwrap_or(rest.len()),
            };
            let alone = used < rest.len() || left == 1;
            let (input, after) = rest.split_at(used);
            chunks.push(Chunk {
                call: self.call,
                work: Encoded {
                    task,
                    first: first + u64::from(i),
                    count: if alone { 1 } else { left },
                    payload: input.to_vec(),
                    timed,
                    measure,
                },
                attempts: self.attempts,
            });
            if !alone {
                break;
            }
            rest = after;
        }
        chunks
    }
}

/// Finished work for one call: a chunk's results, or one error for all its inputs.
pub(crate) struct Delivery {
    pub first: u64,
    pub count: u32,
    pub pid: u32,
    pub attempts: u32,
    /// When the chunk started, from the pool's start ([`Book::epoch`]).
    pub started: Duration,
    pub elapsed: Duration,
    pub body: Body,
}

pub(crate) enum Body {
    /// The reply frame and where the encoded results start in it.
    Done(Frame, usize),
    Failed(TaskError),
}

/// Calls, chunks and deliveries; a chunk is queued, or out with a worker
/// (still in the table, no longer in the queue) until it is delivered.
#[derive(Default)]
pub(crate) struct Book {
    queue: VecDeque<u64>,
    chunks: HashMap<u64, Chunk>,
    next_chunk_id: u64,
    mailbox: HashMap<CallId, VecDeque<Delivery>>,
    /// Calls delivered to since the last [`take_ready`](Self::take_ready).
    ready: Vec<CallId>,
    closed: bool,
    /// The worker program, for the error about an unknown task.
    program: PathBuf,
    /// The tasks every worker knows.
    tasks: Vec<String>,
    /// The zero of the pool's clock: when it was built.
    pub epoch: Epoch,
    /// What the supervisor saw that no delivery tells, until taken.
    events: Vec<PoolEvent>,
    /// Events not kept because `events` was full.
    dropped_events: u64,
}

impl Book {
    /// Opens the call `id` (chosen by the caller, unused so far).
    pub fn open_call(&mut self, id: CallId) -> Result<(), PoolError> {
        if self.closed {
            return Err(PoolError::Closed);
        }
        self.mailbox.insert(id, VecDeque::new());
        Ok(())
    }

    /// Records what the workers of `program` can run.
    pub fn set_tasks(&mut self, program: &Path, tasks: Vec<String>) {
        program.clone_into(&mut self.program);
        self.tasks = tasks;
    }

    /// Checks that the workers know `task`.
    pub fn check_task(&self, task: &str) -> Result<(), PoolError> {
        if self.tasks.iter().any(|t| t == task) {
            return Ok(());
        }
        Err(PoolError::UnknownTask {
            name: task.to_string(),
            program: self.program.clone(),
            known: self.tasks.clone(),
        })
    }

    /// Queues `work` for `call`.
    pub fn submit(&mut self, call: CallId, work: Encoded) {
        let id = self.insert(Chunk {
            call,
            work,
            attempts: 0,
        });
        self.queue.push_back(id);
    }

    /// Queues `chunk` (a retry, or part of a split one) to go out next.
    pub fn push_front(&mut self, chunk: Chunk) {
        let id = self.insert(chunk);
        self.queue.push_front(id);
    }

    fn insert(&mut self, chunk: Chunk) -> u64 {
        let id = self.next_chunk_id;
        self.next_chunk_id += 1;
        self.chunks.insert(id, chunk);
        id
    }

    /// Takes the front of the queue to send, charging it an attempt.
    /// The chunk at the front of the queue, left there.
    pub fn peek_queued(&self) -> Option<&Chunk> {
        self.chunks.get(self.queue.front()?)
    }

    pub fn next_queued(&mut self) -> Option<(u64, &mut Chunk)> {
        let id = self.queue.pop_front()?;
        let chunk = self.chunks.get_mut(&id).expect("queued chunks exist");
        chunk.attempts += 1;
        Some((id, chunk))
    }

    /// Cuts the chunk `id` (just taken from the queue) to its first `keep`
    /// inputs; the rest goes back to the front of the queue, uncharged. A
    /// payload whose inputs cannot be measured stays whole.
    pub fn cut(&mut self, id: u64, keep: u64) {
        let Some(chunk) = self.chunks.get_mut(&id) else {
            return;
        };
        if u64::from(chunk.count()) <= keep {
            return;
        }
        let keep = keep as u32;
        let measure = chunk.work.measure;
        let mut at = 0;
        for _ in 0..keep {
            match measure(&chunk.work.payload[at..]) {
                Some(used) if used > 0 && at + used < chunk.work.payload.len() => at += used,
                _ => return,
            }
        }
        let rest = Chunk {
            call: chunk.call,
            work: Encoded {
                task: chunk.work.task,
                first: chunk.work.first + u64::from(keep),
                count: chunk.work.count - keep,
                payload: chunk.work.payload.split_off(at),
                timed: chunk.work.timed,
                measure,
            },
            attempts: chunk.attempts - 1,
        };
        chunk.work.count = keep;
        self.push_front(rest);
    }

    /// Puts a chunk that went out but never started back at the front of the
    /// queue, uncharged; a chunk no longer in the table is left alone.
    pub fn unsend(&mut self, id: u64) {
        // An abandoned call's chunk is dropped, not run for nobody.
        if self
            .chunks
            .get(&id)
            .is_some_and(|chunk| !self.mailbox.contains_key(&chunk.call))
        {
            self.chunks.remove(&id);
            return;
        }
        if let Some(chunk) = self.chunks.get_mut(&id) {
            chunk.attempts -= 1;
            self.queue.push_front(id);
        }
    }

    pub fn get(&self, id: u64) -> Option<&Chunk> {
        self.chunks.get(&id)
    }

    /// Takes a chunk out of the table, to deliver or to queue again.
    pub fn remove(&mut self, id: u64) -> Option<Chunk> {
        self.chunks.remove(&id)
    }

    /// Drops a call's queued chunks and whatever is still to come for it; a
    /// chunk already out finishes, and its delivery is dropped.
    pub fn abandon(&mut self, call: CallId) {
        self.mailbox.remove(&call);
        let chunks = &mut self.chunks;
        self.queue.retain(|id| {
            let keep = chunks.get(id).is_some_and(|b| b.call != call);
            if !keep {
                chunks.remove(id);
            }
            keep
        });
    }

    /// Forgets `call`, whose work is all delivered (cheaper than
    /// [`abandon`](Self::abandon), which looks through the queue).
    pub fn forget(&mut self, call: CallId) {
        self.mailbox.remove(&call);
    }

    /// Puts `chunk`'s results (or its error) in its call's mailbox, unless the
    /// call was abandoned.
    pub fn deliver(
        &mut self,
        chunk: Chunk,
        pid: u32,
        (started, elapsed): (Duration, Duration),
        body: Body,
    ) {
        if let Some(mailbox) = self.mailbox.get_mut(&chunk.call) {
            if mailbox.is_empty() {
                self.ready.push(chunk.call);
            }
            mailbox.push_back(Delivery {
                first: chunk.work.first,
                count: chunk.count(),
                pid,
                attempts: chunk.attempts,
                started,
                elapsed,
                body,
            });
        }
    }

    /// Keeps `event` for [`take_events`](Self::take_events), or counts it
    /// when [`MAX_EVENTS`] are waiting.
    pub fn log(&mut self, event: PoolEvent) {
        if self.events.len() < MAX_EVENTS {
            self.events.push(event);
        } else {
            self.dropped_events += 1;
        }
    }

    /// The events logged since the last take, and how many were dropped.
    pub fn take_events(&mut self) -> (Vec<PoolEvent>, u64) {
        (
            std::mem::take(&mut self.events),
            std::mem::take(&mut self.dropped_events),
        )
    }

    /// The calls with deliveries in since the last call (a call may be named
    /// twice, or have none left by now).
    pub fn take_ready(&mut self) -> Vec<CallId> {
        std::mem::take(&mut self.ready)
    }

    /// The next delivery for `call`, if one is in.
    pub fn take(&mut self, call: CallId) -> Option<Delivery> {
        self.mailbox.get_mut(&call)?.pop_front()
    }

    /// Drops `call` if none of its work has started (all of it is queued, and
    /// nothing delivered): whether it was dropped.
    pub fn withdraw(&mut self, call: CallId) -> bool {
        let queued: std::collections::HashSet<&u64> = self.queue.iter().collect();
        let mut mine = self
            .chunks
            .iter()
            .filter(|(_, b)| b.call == call)
            .peekable();
        let untouched = mine.peek().is_some() && mine.all(|(id, _)| queued.contains(id));
        let undelivered = self.mailbox.get(&call).is_some_and(VecDeque::is_empty);
        if untouched && undelivered {
            self.abandon(call);
        }
        untouched && undelivered
    }

    /// Whether `call` has chunks queued or out.
    pub fn outstanding(&self, call: CallId) -> bool {
        self.chunks.values().any(|b| b.call == call)
    }

    /// How many chunks are out with a worker: in the table, not queued.
    #[cfg(debug_assertions)]
    pub fn out_count(&self) -> usize {
        self.chunks.len() - self.queue.len()
    }

    /// The chunks out with a worker, while the table holds at most `max`.
    #[cfg(debug_assertions)]
    pub fn out(&self, max: usize) -> Option<Vec<u64>> {
        if self.chunks.len() > max {
            return None;
        }
        let queued: std::collections::HashSet<&u64> = self.queue.iter().collect();
        let out = self.chunks.keys().filter(|id| !queued.contains(id));
        Some(out.copied().collect())
    }

    /// Whether any chunk is queued or out.
    pub fn has_work(&self) -> bool {
        !self.chunks.is_empty()
    }

    /// Fails every queued chunk with [`TaskError::Cancelled`].
    pub fn cancel_queued(&mut self) {
        for id in std::mem::take(&mut self.queue) {
            if let Some(chunk) = self.chunks.remove(&id) {
                self.cancel(chunk);
            }
        }
    }

    /// Fails every chunk: the queued with [`TaskError::Cancelled`], those
    /// out (sent to a worker that was killed) with [`TaskError::Terminated`].
    pub fn terminate_all(&mut self) {
        self.cancel_queued();
        for (_, chunk) in std::mem::take(&mut self.chunks) {
            self.fail(chunk, TaskError::Terminated);
        }
    }

    fn cancel(&mut self, chunk: Chunk) {
        self.fail(chunk, TaskError::Cancelled);
    }

    fn fail(&mut self, chunk: Chunk, why: TaskError) {
        let zero = (Duration::ZERO, Duration::ZERO);
        self.deliver(chunk, 0, zero, Body::Failed(why));
    }

    /// Stops taking new calls; work already queued still runs.
    pub fn close(&mut self) {
        self.closed = true;
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }
}
