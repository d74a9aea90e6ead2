//! How inputs become chunks: the automatic chunk size, and the [`Feeder`]
//! that reads inputs lazily and encodes them, a chunk at a time, into the
//! [`Encoded`] the backends queue.

use std::iter::Fuse;
use std::marker::PhantomData;

use crate::backend::Encoded;
use crate::codec;
use crate::task::Task;

/// The most inputs an automatic chunk holds: enough that a message's cost
/// (about 20 µs) is small beside its inputs', few enough that the last
/// chunks, whose results the supervisor decodes after the workers are done,
/// are short.
pub(crate) const MAX_AUTO_CHUNK: usize = 16_384;

/// An automatic chunk ends once its encoded inputs reach this size, so large
/// inputs travel a few at a time: no message waits for megabytes that no
/// worker is free to take, and each fits the workers' shared memory.
pub(crate) const AUTO_CHUNK_BYTES: usize = 1 << 20;

/// Python's default, about four chunks per worker, at most
/// 16,384 inputs. (`map` also ends a chunk early when its encoded inputs
/// reach 1 MiB, so a map of large inputs sends a few at a time.)
///
/// ```
/// assert_eq!(procpool::auto_chunksize(1_000, 2), 125);
/// assert_eq!(procpool::auto_chunksize(3, 8), 1);
/// assert_eq!(procpool::auto_chunksize(1_000_000, 2), 16_384);
/// ```
pub fn auto_chunksize(len: usize, processes: usize) -> usize {
    len.div_ceil(processes.max(1) * 4).clamp(1, MAX_AUTO_CHUNK)
}

/// Reads inputs and encodes them into [`Encoded`]: `chunksize` inputs a chunk,
/// or fewer when a byte limit is set and reached. An input that cannot be
/// encoded ends its chunk and comes out alone as [`Feed::Failed`], so it
/// costs that input only.
pub(crate) struct Feeder<T: Task, I: Iterator<Item = T::Input>> {
    inputs: Fuse<I>,
    pub chunksize: usize,
    /// End a chunk once its payload is this large (automatic chunking).
    pub byte_limit: Option<usize>,
    /// Whether the workers time each input.
    pub timed: bool,
    /// Inputs read so far: the next input's index.
    pub sent: u64,
    /// An input that failed to encode after the chunk before it was begun.
    failed: Option<(u64, String)>,
    task: PhantomData<T>,
}

/// What a [`Feeder`] gives next: encoded inputs, or one input that cannot be.
pub(crate) enum Feed {
    /// A chunk's inputs, encoded.
    Ready(Encoded),
    /// The input of this index does not encode, for this reason.
    Failed(u64, String),
}

impl<T: Task, I: Iterator<Item = T::Input>> Feeder<T, I> {
    pub fn new(inputs: I, chunksize: usize, timed: bool) -> Self {
        Feeder {
            inputs: inputs.fuse(),
            chunksize: chunksize.max(1),
            byte_limit: None,
            timed,
            sent: 0,
            failed: None,
            task: PhantomData,
        }
    }

    /// The size hint of the inputs not yet read.
    pub fn unread(&self) -> (usize, Option<usize>) {
        self.inputs.size_hint()
    }

    /// The next chunk of inputs, encoded (or one that cannot be); `None`
    /// when the inputs are done.
    pub fn next_chunk(&mut self) -> Option<Feed> {
        if let Some((index, why)) = self.failed.take() {
            return Some(Feed::Failed(index, why));
        }
        let mut payload = Vec::new();
        let mut writer = codec::Writer::new(&mut payload);
        let mut count = 0u32;
        while (count as usize) < self.chunksize {
            let Some(input) = self.inputs.next() else {
                break;
            };
            let index = self.sent + u64::from(count);
            let before = writer.len();
            if let Err(e) = writer.write(&input) {
                writer.truncate(before);
                let failed = (index, e.to_string());
                if count == 0 {
                    self.sent += 1;
                    return Some(Feed::Failed(failed.0, failed.1));
                }
                self.failed = Some(failed);
                break;
            }
            count += 1;
            if self.byte_limit.is_some_and(|limit| writer.len() >= limit) {
                break;
            }
        }
        if count == 0 {
            return None;
        }
        let work = Encoded {
            task: T::NAME,
            first: self.sent,
            count,
            payload,
            timed: self.timed,
            measure: measure::<T>,
        };
        self.sent += u64::from(count) + u64::from(self.failed.is_some());
        Some(Feed::Ready(work))
    }
}

/// How many bytes the first input encoded in `bytes` takes.
fn measure<T: Task>(bytes: &[u8]) -> Option<usize> {
    codec::decode::<T::Input>(bytes).ok().map(|(_, used)| used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctest::{ByteSum, Square};
    use serde_bytes::ByteBuf;

    #[test]
    fn auto_chunksize_follows_python_up_to_its_cap() {
        // Python: chunksize, extra = divmod(len, 4 * processes); chunksize += bool(extra)
        assert_eq!(auto_chunksize(100_000, 2), 12_500);
        assert_eq!(auto_chunksize(100_001, 2), 12_501);
        assert_eq!(auto_chunksize(1_000_000, 2), MAX_AUTO_CHUNK);
        assert_eq!(auto_chunksize(0, 2), 1);
        assert_eq!(auto_chunksize(7, 0), 2);
    }

    #[test]
    fn chunks_hold_chunksize_inputs_and_split_back_into_them() {
        let mut feeder = Feeder::<Square, _>::new(0..10i64, 4, true);
        let mut chunks = Vec::new();
        while let Some(Feed::Ready(work)) = feeder.next_chunk() {
            chunks.push(work);
        }
        let counts: Vec<_> = chunks.iter().map(|w| (w.first, w.count)).collect();
        assert_eq!(counts, [(0, 4), (4, 4), (8, 2)]);
        let chunk = crate::backend::book::Chunk {
            call: 1,
            work: chunks.remove(1),
            attempts: 1,
        };
        let singles: Vec<_> = chunk
            .split()
            .into_iter()
            .map(|b| {
                let x: i64 = codec::decode_exact(&b.work.payload).unwrap();
                (b.work.first, b.work.count, x)
            })
            .collect();
        assert_eq!(singles, [(4, 1, 4), (5, 1, 5), (6, 1, 6), (7, 1, 7)]);
    }

    #[test]
    fn a_byte_limit_ends_a_chunk_early() {
        let buffers = (0..5).map(|_| ByteBuf::from(vec![1u8; 600]));
        let mut feeder = Feeder::<ByteSum, _>::new(buffers, 100, false);
        feeder.byte_limit = Some(1000);
        let mut counts = Vec::new();
        while let Some(Feed::Ready(work)) = feeder.next_chunk() {
            counts.push(work.count);
        }
        assert_eq!(counts, [2, 2, 1]);
    }
}
