//! A task whose input is a large byte buffer, to measure how the pool moves
//! big payloads (images, arrays) between processes.

use serde_bytes::ByteBuf;

use procpool::{Failure, Task};

/// The wrapping sum of every byte of its input: touches all of it, costs
/// little, so a benchmark of it measures the transport.
///
/// ```
/// use procpool::Task;
/// use procpool_cli::tasks::ByteSum;
/// use serde_bytes::ByteBuf;
/// assert_eq!(ByteSum::run(ByteBuf::from(vec![1, 2, 250])).unwrap(), 253);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ByteSum;

impl Task for ByteSum {
    const NAME: &'static str = "bytesum";
    type Input = ByteBuf;
    type Output = u64;
    fn run(bytes: ByteBuf) -> Result<u64, Failure> {
        Ok(bytes.iter().map(|&b| b as u64).sum())
    }
}
procpool::register!(ByteSum);
