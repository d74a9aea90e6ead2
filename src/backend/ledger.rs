//! The MPI supervisor's bookkeeping, kept apart from MPI so it can be tested
//! without it: the batch each worker runs, on top of the [`Book`] of jobs,
//! batches and deliveries that the local supervisor uses too.
//!
//! A worker holds at most one batch and gets the next only once its reply is
//! in. That is the dynamic dispatch (a fast worker comes back more often and
//! so gets more), and it is what keeps MPI from deadlocking: a blocking send
//! of a large message waits for its receiver, so the supervisor never sends
//! to a worker that may be sending to it.

use std::time::{Duration, Instant};

use super::book::{Body, Book};
use crate::error::TaskError;
use crate::protocol::{self, Frame, Reply, Request};

/// One worker, by its index (rank - 1 on MPI).
struct Slot {
    pid: u32,
    /// The batch it runs and since when.
    running: Option<(u64, Instant)>,
    /// Sent a reply that could not be used: it gets no more work.
    retired: bool,
    /// Its clock minus ours, in nanoseconds (0 on one machine).
    clock_offset_ns: i64,
}

/// The workers' slots, over the [`Book`] both backends share.
pub(crate) struct Ledger {
    slots: Vec<Slot>,
    /// Jobs, batches and deliveries.
    pub book: Book,
}

impl Ledger {
    /// A ledger for workers with these PIDs, by index.
    pub fn new(pids: impl IntoIterator<Item = u32>) -> Self {
        Ledger {
            slots: pids
                .into_iter()
                .map(|pid| Slot {
                    pid,
                    running: None,
                    retired: false,
                    clock_offset_ns: 0,
                })
                .collect(),
            book: Book::default(),
        }
    }

    /// The next request to send: the front batch for the first idle worker.
    /// Returns the worker's index and the frame; the worker is then busy.
    pub fn assign(&mut self) -> Option<(usize, Frame)> {
        loop {
            let index = self
                .slots
                .iter()
                .position(|s| s.running.is_none() && !s.retired)?;
            let (id, batch) = self.book.next_queued()?;
            let header = Request::Run {
                batch: id,
                task: batch.work.task.to_string(),
                count: batch.count(),
                timed: batch.work.timed,
            };
            let framed = protocol::frame(&header, &batch.work.payload);
            // Sent once and never again (MPI takes no retries): free it now.
            batch.work.payload = Vec::new();
            match framed {
                Ok(frame) => {
                    self.slots[index].running = Some((id, Instant::now()));
                    return Some((index, frame));
                }
                Err(e) => {
                    let batch = self.book.remove(id).expect("just looked up");
                    let error = TaskError::Protocol {
                        pid: self.slots[index].pid,
                        message: format!("cannot frame the batch: {e}"),
                    };
                    self.book.deliver(
                        batch,
                        self.slots[index].pid,
                        (Duration::ZERO, Duration::ZERO),
                        Body::Failed(error),
                    );
                }
            }
        }
    }

    /// Takes a worker's reply: its batch's results (or refusal) go to the
    /// batch's job, and the worker is idle again.
    ///
    /// # Errors
    ///
    /// If the reply does not decode or is not for the batch the worker runs:
    /// that batch fails with [`TaskError::Protocol`] and the worker is retired.
    pub fn on_reply(&mut self, index: usize, frame: Vec<u8>) -> Result<(), String> {
        let Some(slot) = self.slots.get_mut(index) else {
            return Err(format!("a reply from unknown worker {index}"));
        };
        let pid = slot.pid;
        let running = slot.running.take();
        let checked = match protocol::unframe::<Reply>(&frame) {
            Err(e) => Err(format!("malformed reply: {e}")),
            Ok((reply, payload)) => {
                let batch = match &reply {
                    Reply::Done { batch, .. } | Reply::Refused { batch, .. } => *batch,
                };
                match running {
                    Some((id, _)) if id == batch => Ok((reply, frame.len() - payload.len())),
                    _ => Err(format!("reply for batch {batch}, which it was not running")),
                }
            }
        };
        let since = running.map_or_else(Instant::now, |(_, since)| since);
        let elapsed = since.elapsed();
        let mut started = self.book.epoch.offset(since);
        let batch = running.and_then(|(id, _)| self.book.remove(id));
        let (body, result) = match checked {
            Ok((Reply::Done { started_ns, .. }, start)) => {
                // The rank's clock, moved onto ours by the offset measured
                // at the handshake.
                let ours = started_ns.wrapping_sub(self.slots[index].clock_offset_ns as u64);
                started = self.book.epoch.offset_ns(ours);
                (Body::Done(Frame::from(frame), start), Ok(()))
            }
            Ok((Reply::Refused { reason, .. }, _)) => (
                Body::Failed(TaskError::Protocol {
                    pid,
                    message: reason,
                }),
                Ok(()),
            ),
            Err(message) => {
                self.slots[index].retired = true;
                let error = TaskError::Protocol {
                    pid,
                    message: message.clone(),
                };
                (Body::Failed(error), Err(message))
            }
        };
        if let Some(batch) = batch {
            self.book.deliver(batch, pid, (started, elapsed), body);
        }
        result
    }

    /// Fails the batch each busy worker still runs with [`TaskError::Lost`],
    /// saying `why(index)`: the pool stops and their replies will not come.
    /// The workers stay busy (a rank is stopped with the whole job, not
    /// alone) and a late reply is dropped.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code, reason = "the MPI backend's"))]
    pub fn lose_running(&mut self, why: impl Fn(usize) -> String) {
        for index in 0..self.slots.len() {
            let Some((id, since)) = self.slots[index].running else {
                continue;
            };
            let Some(batch) = self.book.remove(id) else {
                continue;
            };
            let pid = self.slots[index].pid;
            let started = self.book.epoch.offset(since);
            let error = TaskError::Lost {
                pid,
                message: why(index),
            };
            self.book
                .deliver(batch, pid, (started, since.elapsed()), Body::Failed(error));
        }
    }

    /// Records that worker `index`'s clock reads `offset_ns` more than ours.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code, reason = "the MPI backend's"))]
    pub fn set_clock_offset(&mut self, index: usize, offset_ns: i64) {
        if let Some(slot) = self.slots.get_mut(index) {
            slot.clock_offset_ns = offset_ns;
        }
    }

    /// Whether any worker is running a batch.
    pub fn busy(&self) -> bool {
        self.slots.iter().any(|s| s.running.is_some())
    }

    /// Whether any worker can still take work.
    pub fn usable(&self) -> bool {
        self.slots.iter().any(|s| !s.retired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::book::{Delivery, JobId, Work};
    use crate::codec;
    use crate::error::PoolError;
    use crate::protocol::WireFailure;

    fn submit_squares(ledger: &mut Ledger, job: JobId, inputs: &[i64]) {
        for (i, x) in inputs.iter().enumerate() {
            let mut payload = Vec::new();
            codec::encode_into(x, &mut payload).unwrap();
            let work = Work {
                task: "square",
                first: i as u64,
                count: 1,
                payload,
                timed: true,
                measure: |_| None,
            };
            ledger.book.submit(job, work);
        }
    }

    /// What a worker would answer: the batch id from the request, the square.
    fn answer(frame: &[u8]) -> Vec<u8> {
        let (request, payload) = protocol::unframe::<Request>(frame).unwrap();
        let Request::Run {
            batch,
            count,
            timed,
            ..
        } = request
        else {
            panic!("expected a run request, got {request:?}");
        };
        assert_eq!(count, 1);
        let square = crate::task::run_batch::<crate::doctest::Square>;
        let mut out = Vec::new();
        let started_ns = square(payload, count, timed, &mut out).unwrap();
        protocol::frame(
            &Reply::Done {
                batch,
                started_ns,
                exit_work: false,
            },
            &out,
        )
        .unwrap()
        .to_vec()
    }

    fn squares(delivery: Delivery) -> (u64, u32, i64) {
        let Body::Done(frame, start) = delivery.body else {
            panic!("expected results");
        };
        let layout = crate::task::BatchLayout::parse(&frame[start..]).unwrap();
        let (result, _) = codec::decode::<Result<i64, WireFailure>>(layout.results).unwrap();
        (delivery.first, delivery.pid, result.unwrap())
    }

    #[test]
    fn a_worker_gets_its_next_batch_when_it_replies() {
        let mut ledger = Ledger::new([100, 200]);
        let job = ledger.book.new_job().unwrap();
        submit_squares(&mut ledger, job, &[1, 2, 3, 4]);
        let (w0, first) = ledger.assign().unwrap();
        let (w1, second) = ledger.assign().unwrap();
        assert_eq!((w0, w1), (0, 1));
        assert!(
            ledger.assign().is_none(),
            "both busy: nothing more goes out"
        );

        // Worker 1 is the faster: it gets the third and fourth batches.
        ledger.on_reply(1, answer(&second)).unwrap();
        let (w, third) = ledger.assign().unwrap();
        assert_eq!(w, 1);
        ledger.on_reply(1, answer(&third)).unwrap();
        let (w, fourth) = ledger.assign().unwrap();
        assert_eq!(w, 1);
        ledger.on_reply(0, answer(&first)).unwrap();
        ledger.on_reply(1, answer(&fourth)).unwrap();
        assert!(!ledger.book.has_work());

        let got: Vec<_> = std::iter::from_fn(|| ledger.book.take(job))
            .map(squares)
            .collect();
        assert_eq!(got, [(1, 200, 4), (2, 200, 9), (0, 100, 1), (3, 200, 16)]);
    }

    #[test]
    fn a_reply_for_another_batch_fails_the_batch_and_retires_the_worker() {
        let mut ledger = Ledger::new([100, 200]);
        let job = ledger.book.new_job().unwrap();
        submit_squares(&mut ledger, job, &[1, 2, 3]);
        let (_, first) = ledger.assign().unwrap();
        let (_, second) = ledger.assign().unwrap();
        let error = ledger.on_reply(0, answer(&second)).unwrap_err();
        assert!(error.contains("not running"), "{error}");
        let delivery = ledger.book.take(job).unwrap();
        assert_eq!((delivery.first, delivery.pid), (0, 100));
        assert!(
            matches!(
                &delivery.body,
                Body::Failed(TaskError::Protocol { pid: 100, .. })
            ),
            "worker 0's own batch fails"
        );
        // Worker 0 is retired: the third batch waits for worker 1.
        assert!(ledger.assign().is_none());
        ledger.on_reply(1, answer(&second)).unwrap();
        assert_eq!(ledger.assign().map(|(w, _)| w), Some(1));
        assert!(ledger.usable());
        let _ = first;
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let mut ledger = Ledger::new([7]);
        let job = ledger.book.new_job().unwrap();
        submit_squares(&mut ledger, job, &[1]);
        ledger.assign().unwrap();
        assert!(ledger.on_reply(0, vec![0xff; 3]).is_err());
        assert!(!ledger.usable());
        assert!(matches!(
            ledger.book.take(job).unwrap().body,
            Body::Failed(TaskError::Protocol { pid: 7, .. })
        ));
    }

    #[test]
    fn a_refusal_fails_the_batch_but_keeps_the_worker() {
        let mut ledger = Ledger::new([7]);
        let job = ledger.book.new_job().unwrap();
        submit_squares(&mut ledger, job, &[1]);
        let (_, frame) = ledger.assign().unwrap();
        let Request::Run { batch, .. } = protocol::unframe::<Request>(&frame).unwrap().0 else {
            unreachable!()
        };
        let refusal = Reply::Refused {
            batch,
            reason: "no task".into(),
        };
        ledger
            .on_reply(0, protocol::frame(&refusal, &[]).unwrap().to_vec())
            .unwrap();
        let delivery = ledger.book.take(job).unwrap();
        assert!(
            matches!(&delivery.body, Body::Failed(TaskError::Protocol { message, .. }) if message == "no task")
        );
        assert!(ledger.usable());
    }

    #[test]
    fn an_abandoned_job_loses_its_queue_and_its_late_replies() {
        let mut ledger = Ledger::new([7]);
        let job = ledger.book.new_job().unwrap();
        submit_squares(&mut ledger, job, &[1, 2, 3]);
        let (_, frame) = ledger.assign().unwrap();
        ledger.book.abandon(job);
        assert!(
            ledger.book.outstanding(job),
            "the running batch is still out"
        );
        ledger.on_reply(0, answer(&frame)).unwrap();
        assert!(!ledger.book.has_work() && !ledger.busy());
        assert!(ledger.book.take(job).is_none());
        assert!(ledger.assign().is_none());
    }

    #[test]
    fn a_batch_still_out_when_the_pool_stops_is_lost_and_its_late_reply_dropped() {
        let mut ledger = Ledger::new([100, 200]);
        let job = ledger.book.new_job().unwrap();
        submit_squares(&mut ledger, job, &[1, 2, 3]);
        let (_, first) = ledger.assign().unwrap();
        let (_, second) = ledger.assign().unwrap();
        ledger.on_reply(0, answer(&first)).unwrap();
        ledger.book.close();
        ledger.lose_running(|index| format!("worker {index} is gone"));
        let got: Vec<_> = std::iter::from_fn(|| ledger.book.take(job))
            .map(|d| match d.body {
                Body::Failed(TaskError::Lost { pid, message }) => (d.first, pid, message),
                Body::Done(..) => (d.first, d.pid, "done".into()),
                Body::Failed(other) => panic!("{other}"),
            })
            .collect();
        assert_eq!(
            got,
            [(0, 100, "done".into()), (1, 200, "worker 1 is gone".into())]
        );
        // Worker 1 stays busy (it is stopped with the job), and its reply,
        // should it come, delivers nothing more.
        assert!(ledger.busy());
        ledger.on_reply(1, answer(&second)).unwrap();
        assert!(ledger.book.take(job).is_none());
    }

    #[test]
    fn cancelled_batches_and_a_closed_ledger() {
        let mut ledger = Ledger::new([7]);
        let job = ledger.book.new_job().unwrap();
        submit_squares(&mut ledger, job, &[1, 2]);
        ledger.book.close();
        ledger.book.cancel_queued();
        assert!(ledger.book.is_closed());
        assert!(matches!(ledger.book.new_job(), Err(PoolError::Closed)));
        let cancelled: Vec<_> = std::iter::from_fn(|| ledger.book.take(job))
            .map(|d| {
                (
                    d.first,
                    matches!(d.body, Body::Failed(TaskError::Cancelled)),
                )
            })
            .collect();
        assert_eq!(cancelled, [(0, true), (1, true)]);
    }
}
