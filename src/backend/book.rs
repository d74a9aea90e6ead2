//! The bookkeeping both backends share: job ids, the queue and table of
//! batches of encoded inputs, each job's mailbox of deliveries, the tasks the
//! workers know, and whether the pool still takes work. It knows nothing of
//! processes or ranks: the scheduler keeps the workers, over one [`Book`],
//! for the local and the MPI transport alike.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{PoolError, TaskError};
use crate::events::PoolEvent;
use crate::protocol::Frame;
use crate::sys::Epoch;

/// The most [`PoolEvent`]s kept between two takes; later ones are counted.
const MAX_EVENTS: usize = 100_000;

/// Identifies one call (a map, an imap, a submit) among the pool's work.
pub(crate) type JobId = u64;

/// Finds how many bytes the first encoded input of a payload takes; `None`
/// if it does not decode.
pub(crate) type Measure = fn(&[u8]) -> Option<usize>;

/// Encoded inputs of consecutive indices for one task, before they are queued.
pub(crate) struct Work {
    pub task: &'static str,
    pub first: u64,
    pub count: u32,
    /// The inputs, encoded back to back.
    pub payload: Vec<u8>,
    /// Whether each input's time is measured.
    pub timed: bool,
    /// Finds where each input ends, to split the batch.
    pub measure: Measure,
}

/// [`Work`] queued for, or out with, a worker: sent as one message.
pub(crate) struct Batch {
    pub job: JobId,
    pub work: Work,
    /// How many times it has been dispatched.
    pub attempts: u32,
}

impl Batch {
    pub fn count(&self) -> u32 {
        self.work.count
    }

    /// One batch per input, for finding which input kills its worker.
    /// (Inputs are found by decoding, which only fails for bytes this
    /// process did not encode: what is left then stays one batch.)
    pub fn split(self) -> Vec<Batch> {
        let Work {
            task,
            first,
            count,
            payload,
            timed,
            measure,
        } = self.work;
        let mut batches = Vec::with_capacity(count as usize);
        let mut rest = &payload[..];
        for i in 0..count {
            let left = count - i;
            let used = match left {
                1 => rest.len(),
                _ => measure(rest).unwrap_or(rest.len()),
            };
            let alone = used < rest.len() || left == 1;
            let (input, after) = rest.split_at(used);
            batches.push(Batch {
                job: self.job,
                work: Work {
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
        batches
    }
}

/// Finished work for one job: a batch's results, or one error for all its inputs.
pub(crate) struct Delivery {
    pub first: u64,
    pub count: u32,
    pub pid: u32,
    pub attempts: u32,
    /// When the batch started, from the pool's start ([`Book::epoch`]).
    pub started: Duration,
    pub elapsed: Duration,
    pub body: Body,
}

pub(crate) enum Body {
    /// The reply frame and where the encoded results start in it.
    Done(Frame, usize),
    Failed(TaskError),
}

/// Jobs, batches and deliveries; a batch is queued, or out with a worker
/// (still in the table, no longer in the queue) until it is delivered.
#[derive(Default)]
pub(crate) struct Book {
    queue: VecDeque<u64>,
    batches: HashMap<u64, Batch>,
    next_batch: u64,
    mailbox: HashMap<JobId, VecDeque<Delivery>>,
    /// Jobs delivered to since the last [`take_ready`](Self::take_ready).
    ready: Vec<JobId>,
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
    /// Opens the job `id` (chosen by the caller, unused so far).
    pub fn open_job(&mut self, id: JobId) -> Result<(), PoolError> {
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

    /// Queues `work` for `job`.
    pub fn submit(&mut self, job: JobId, work: Work) {
        let id = self.insert(Batch {
            job,
            work,
            attempts: 0,
        });
        self.queue.push_back(id);
    }

    /// Queues `batch` (a retry, or part of a split one) to go out next.
    pub fn push_front(&mut self, batch: Batch) {
        let id = self.insert(batch);
        self.queue.push_front(id);
    }

    fn insert(&mut self, batch: Batch) -> u64 {
        let id = self.next_batch;
        self.next_batch += 1;
        self.batches.insert(id, batch);
        id
    }

    /// Takes the front of the queue to send, charging it an attempt.
    pub fn next_queued(&mut self) -> Option<(u64, &mut Batch)> {
        let id = self.queue.pop_front()?;
        let batch = self.batches.get_mut(&id).expect("queued batches exist");
        batch.attempts += 1;
        Some((id, batch))
    }

    /// Cuts the batch `id` (just taken from the queue) to its first `keep`
    /// inputs; the rest goes back to the front of the queue, uncharged. A
    /// payload whose inputs cannot be measured stays whole.
    pub fn cut(&mut self, id: u64, keep: u64) {
        let Some(batch) = self.batches.get_mut(&id) else {
            return;
        };
        if u64::from(batch.count()) <= keep {
            return;
        }
        let keep = keep as u32;
        let measure = batch.work.measure;
        let mut at = 0;
        for _ in 0..keep {
            match measure(&batch.work.payload[at..]) {
                Some(used) if used > 0 && at + used < batch.work.payload.len() => at += used,
                _ => return,
            }
        }
        let rest = Batch {
            job: batch.job,
            work: Work {
                task: batch.work.task,
                first: batch.work.first + u64::from(keep),
                count: batch.work.count - keep,
                payload: batch.work.payload.split_off(at),
                timed: batch.work.timed,
                measure,
            },
            attempts: batch.attempts - 1,
        };
        batch.work.count = keep;
        self.push_front(rest);
    }

    /// Puts a batch that went out but never started back at the front of the
    /// queue, uncharged; a batch no longer in the table is left alone.
    pub fn unsend(&mut self, id: u64) {
        // An abandoned job's batch is dropped, not run for nobody.
        if self
            .batches
            .get(&id)
            .is_some_and(|batch| !self.mailbox.contains_key(&batch.job))
        {
            self.batches.remove(&id);
            return;
        }
        if let Some(batch) = self.batches.get_mut(&id) {
            batch.attempts -= 1;
            self.queue.push_front(id);
        }
    }

    pub fn get(&self, id: u64) -> Option<&Batch> {
        self.batches.get(&id)
    }

    /// Takes a batch out of the table, to deliver or to queue again.
    pub fn remove(&mut self, id: u64) -> Option<Batch> {
        self.batches.remove(&id)
    }

    /// Drops a job's queued batches and whatever is still to come for it; a
    /// batch already out finishes, and its delivery is dropped.
    pub fn abandon(&mut self, job: JobId) {
        self.mailbox.remove(&job);
        let batches = &mut self.batches;
        self.queue.retain(|id| {
            let keep = batches.get(id).is_some_and(|b| b.job != job);
            if !keep {
                batches.remove(id);
            }
            keep
        });
    }

    /// Forgets `job`, whose work is all delivered (cheaper than
    /// [`abandon`](Self::abandon), which looks through the queue).
    pub fn forget(&mut self, job: JobId) {
        self.mailbox.remove(&job);
    }

    /// Puts `batch`'s results (or its error) in its job's mailbox, unless the
    /// job was abandoned.
    pub fn deliver(
        &mut self,
        batch: Batch,
        pid: u32,
        (started, elapsed): (Duration, Duration),
        body: Body,
    ) {
        if let Some(mailbox) = self.mailbox.get_mut(&batch.job) {
            if mailbox.is_empty() {
                self.ready.push(batch.job);
            }
            mailbox.push_back(Delivery {
                first: batch.work.first,
                count: batch.count(),
                pid,
                attempts: batch.attempts,
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

    /// The jobs with deliveries in since the last call (a job may be named
    /// twice, or have none left by now).
    pub fn take_ready(&mut self) -> Vec<JobId> {
        std::mem::take(&mut self.ready)
    }

    /// The next delivery for `job`, if one is in.
    pub fn take(&mut self, job: JobId) -> Option<Delivery> {
        self.mailbox.get_mut(&job)?.pop_front()
    }

    /// Drops `job` if none of its work has started (all of it is queued, and
    /// nothing delivered): whether it was dropped.
    pub fn withdraw(&mut self, job: JobId) -> bool {
        let queued: std::collections::HashSet<&u64> = self.queue.iter().collect();
        let mut mine = self.batches.iter().filter(|(_, b)| b.job == job).peekable();
        let untouched = mine.peek().is_some() && mine.all(|(id, _)| queued.contains(id));
        let undelivered = self.mailbox.get(&job).is_some_and(VecDeque::is_empty);
        if untouched && undelivered {
            self.abandon(job);
        }
        untouched && undelivered
    }

    /// Whether `job` has batches queued or out.
    pub fn outstanding(&self, job: JobId) -> bool {
        self.batches.values().any(|b| b.job == job)
    }

    /// How many batches are out with a worker: in the table, not queued.
    #[cfg(debug_assertions)]
    pub fn out_count(&self) -> usize {
        self.batches.len() - self.queue.len()
    }

    /// The batches out with a worker, while the table holds at most `max`.
    #[cfg(debug_assertions)]
    pub fn out(&self, max: usize) -> Option<Vec<u64>> {
        if self.batches.len() > max {
            return None;
        }
        let queued: std::collections::HashSet<&u64> = self.queue.iter().collect();
        let out = self.batches.keys().filter(|id| !queued.contains(id));
        Some(out.copied().collect())
    }

    /// Whether any batch is queued or out.
    pub fn has_work(&self) -> bool {
        !self.batches.is_empty()
    }

    /// Fails every queued batch with [`TaskError::Cancelled`].
    pub fn cancel_queued(&mut self) {
        for id in std::mem::take(&mut self.queue) {
            if let Some(batch) = self.batches.remove(&id) {
                self.cancel(batch);
            }
        }
    }

    /// Fails every batch: the queued with [`TaskError::Cancelled`], those
    /// out (sent to a worker that was killed) with [`TaskError::Terminated`].
    pub fn terminate_all(&mut self) {
        self.cancel_queued();
        for (_, batch) in std::mem::take(&mut self.batches) {
            self.fail(batch, TaskError::Terminated);
        }
    }

    fn cancel(&mut self, batch: Batch) {
        self.fail(batch, TaskError::Cancelled);
    }

    fn fail(&mut self, batch: Batch, why: TaskError) {
        let zero = (Duration::ZERO, Duration::ZERO);
        self.deliver(batch, 0, zero, Body::Failed(why));
    }

    /// Stops taking new jobs; work already queued still runs.
    pub fn close(&mut self) {
        self.closed = true;
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }
}
