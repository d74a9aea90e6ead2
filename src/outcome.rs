//! What a task gives back: the [`Outcome`] of each input, and the decoding
//! of a chunk's reply into outcomes (or bare values) in input order.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::backend::{Body, Delivery};
use crate::codec;
use crate::error::{PoolError, TaskError};
use crate::protocol::WireFailure;
use crate::task::ChunkLayout;

/// The result of one input: where it came from, who ran it, how long it took.
///
/// It is kept small (48 bytes for an `i64` output, the error boxed and the
/// times in integer nanoseconds), since a `map` makes one per input.
///
/// ```
/// # let pool = procpool::doctest::pool(2);
/// let outcome = pool.map_outcomes(procpool::doctest::Square, [12]).unwrap().remove(0);
/// assert_eq!(outcome.index, 0);
/// assert_eq!(outcome.result, Ok(144));
/// assert_ne!(outcome.pid, std::process::id());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Outcome<O> {
    /// The input's position in the input sequence, from 0.
    pub index: u64,
    /// The process id of the worker that ran (or last tried) it.
    pub pid: u32,
    /// How many times it was dispatched to a worker.
    pub attempts: u32,
    pub(crate) started_ns: u64,
    pub(crate) elapsed_ns: u64,
    /// The output, or why there is none.
    pub result: Result<O, Box<TaskError>>,
}

impl<O> Outcome<O> {
    /// An outcome made by hand, for tests of code that reads outcomes.
    #[cfg(feature = "test-support")]
    #[doc(hidden)]
    pub fn for_test(
        index: u64,
        pid: u32,
        attempts: u32,
        (started_ns, elapsed_ns): (u64, u64),
        result: Result<O, TaskError>,
    ) -> Self {
        Outcome {
            index,
            pid,
            attempts,
            started_ns,
            elapsed_ns,
            result: result.map_err(Box::new),
        }
    }

    /// When the task (its last attempt) started, as an offset from the
    /// pool's start ([`Pool::clock_zero`](crate::Pool::clock_zero)).
    /// Measured by the worker on the machine's shared monotonic clock (on
    /// MPI, moved onto rank 0's clock by the offset measured at the
    /// handshake); for an attempt that ended without a result (its worker
    /// died or timed out), as the supervisor saw it. Zero for a task that
    /// never started.
    pub fn started(&self) -> Duration {
        Duration::from_nanos(self.started_ns)
    }

    /// How long the task ran, as measured by its worker.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.elapsed_ns)
    }

    /// Why the task gave no output, if it did not: `result`'s error, unboxed
    /// for matching.
    ///
    /// ```
    /// use procpool::TaskError;
    /// # use procpool::doctest::Square;
    /// # let pool = procpool::doctest::pool(1);
    /// let outcome = pool.submit(Square, i64::MAX).unwrap().wait_outcome().unwrap();
    /// assert!(matches!(outcome.error(), Some(TaskError::Failed { .. })));
    /// ```
    pub fn error(&self) -> Option<&TaskError> {
        self.result.as_ref().err().map(|error| &**error)
    }

    /// The output, or the task's error with its index.
    ///
    /// ```
    /// # let pool = procpool::doctest::pool(1);
    /// let outcome = pool.submit(procpool::doctest::Square, 7).unwrap().wait_outcome().unwrap();
    /// assert_eq!(outcome.into_result().unwrap(), 49);
    /// ```
    ///
    /// # Errors
    ///
    /// [`PoolError::Task`] when the task failed.
    pub fn into_result(self) -> Result<O, PoolError> {
        let index = self.index;
        self.result.map_err(|error| PoolError::Task {
            index,
            error: *error,
        })
    }
}

fn task_error(failure: WireFailure) -> Box<TaskError> {
    Box::new(match failure {
        WireFailure::Failed(message) => TaskError::Failed { message },
        WireFailure::Panicked { message, location } => TaskError::Panicked { message, location },
    })
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Decodes one delivery, passing each input's outcome to `out` in input order.
pub(crate) fn unpack<O: DeserializeOwned>(delivery: Delivery, out: &mut impl FnMut(Outcome<O>)) {
    let Delivery {
        first,
        count,
        pid,
        attempts,
        started,
        elapsed,
        body,
    } = delivery;
    let outcome = |i: u32, started_ns, elapsed_ns, result| Outcome {
        index: first + u64::from(i),
        pid,
        attempts,
        started_ns,
        elapsed_ns,
        result,
    };
    let frame = match body {
        Body::Failed(error) => {
            let (started, elapsed) = (nanos(started), nanos(elapsed));
            for i in 0..count {
                out(outcome(i, started, elapsed, Err(Box::new(error.clone()))));
            }
            return;
        }
        Body::Done(frame, start) => (frame, start),
    };
    let (frame, start) = frame;
    let broken = |message: String| {
        Box::new(TaskError::Protocol {
            pid,
            message: format!("result does not decode: {message}"),
        })
    };
    // The inputs of a chunk ran back to back from its start.
    let mut next = nanos(started);
    let Some(ChunkLayout { results, times }) = ChunkLayout::parse(&frame[start..]) else {
        let error = broken("no layout trailer".into());
        (0..count).for_each(|i| out(outcome(i, next, 0, Err(error.clone()))));
        return;
    };
    let timed = !times.is_empty();
    let (mut results, mut times) = (codec::Reader::new(results), codec::Reader::new(times));
    for i in 0..count {
        let elapsed = match timed {
            true => times.read::<u64>(),
            false => Ok(0),
        };
        match (read_result::<O>(&mut results), elapsed) {
            (Ok(result), Ok(elapsed)) => {
                out(outcome(i, next, elapsed, result));
                next = next.saturating_add(elapsed);
            }
            (Err(e), _) | (_, Err(e)) => {
                let error = broken(e.to_string());
                (i..count).for_each(|j| out(outcome(j, next, 0, Err(error.clone()))));
                return;
            }
        }
    }
}

/// Reads one `Result<O, WireFailure>` as serde encodes it (a variant index,
/// then the value), taking the common case apart so the output is decoded
/// straight, not inside a larger value.
#[inline(always)]
fn read_result<O: DeserializeOwned>(
    reader: &mut codec::Reader<'_>,
) -> Result<Result<O, Box<TaskError>>, codec::CodecError> {
    Ok(match reader.read_variant()? {
        0 => Ok(reader.read::<O>()?),
        1 => Err(task_error(reader.read::<WireFailure>()?)),
        other => return Err(codec::CodecError::Variant(other)),
    })
}

/// Decodes one delivery's outputs into `values`, in input order.
///
/// # Errors
///
/// [`PoolError::Task`] for the first input that failed; `values` then holds
/// the outputs before it.
pub(crate) fn unpack_values<O: DeserializeOwned>(
    delivery: Delivery,
    values: &mut Vec<O>,
) -> Result<(), PoolError> {
    let failed = |index, error| Err(PoolError::Task { index, error });
    let (frame, start) = match delivery.body {
        Body::Done(frame, start) => (frame, start),
        Body::Failed(error) => return failed(delivery.first, error),
    };
    let broken = |i: u32, message: String| {
        let error = TaskError::Protocol {
            pid: delivery.pid,
            message: format!("result does not decode: {message}"),
        };
        failed(delivery.first + u64::from(i), error)
    };
    // Only the results: a values-only chunk carries no times.
    let Some(ChunkLayout { results, .. }) = ChunkLayout::parse(&frame[start..]) else {
        return broken(0, "no layout trailer".into());
    };
    let mut results = codec::Reader::new(results);
    values.reserve(delivery.count as usize);
    for i in 0..delivery.count {
        match read_result::<O>(&mut results) {
            Ok(Ok(value)) => values.push(value),
            Ok(Err(error)) => return failed(delivery.first + u64::from(i), *error),
            Err(e) => return broken(i, e.to_string()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_of_an_integer_stays_small() {
        assert_eq!(std::mem::size_of::<Outcome<i64>>(), 48);
    }

    #[test]
    fn results_read_apart_are_what_serde_encoded_whole() {
        let sent: [Result<i64, WireFailure>; 3] = [
            Ok(-5),
            Err(WireFailure::Failed("no".into())),
            Err(WireFailure::Panicked {
                message: "boom".into(),
                location: Some("a.rs:1:2".into()),
            }),
        ];
        let mut bytes = Vec::new();
        for result in &sent {
            codec::encode_into(result, &mut bytes).unwrap();
        }
        bytes.push(7);
        let mut reader = codec::Reader::new(&bytes);
        for result in sent {
            let result = result.map_err(task_error);
            assert_eq!(read_result::<i64>(&mut reader).unwrap(), result);
        }
        assert!(matches!(
            read_result::<i64>(&mut reader),
            Err(codec::CodecError::Variant(7))
        ));
    }
}
