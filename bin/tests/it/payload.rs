//! Large inputs through the pool: byte buffers bigger than a socket message.

use procpool_cli::tasks::ByteSum;
use serde_bytes::ByteBuf;

use crate::util::pool;

#[test]
fn buffers_larger_than_a_socket_message_arrive_whole_and_in_order() {
    let pool = pool(2);
    // 300 KB each: more than one ipc-channel fragment (about 212 KB here).
    let buffers: Vec<ByteBuf> = (0..6u8)
        .map(|seed| ByteBuf::from(vec![seed; 300_000]))
        .collect();
    let outcomes = pool.map_outcomes(ByteSum, buffers).unwrap();
    let sums: Vec<u64> = outcomes.iter().map(|o| o.result.clone().unwrap()).collect();
    let expected: Vec<u64> = (0..6u64).map(|seed| seed * 300_000).collect();
    assert_eq!(sums, expected);
}

#[test]
fn frames_of_every_size_arrive_whole_through_a_region_that_grows_or_alone() {
    // Inline, a first region (4 MiB), a larger one (7 MiB), a segment of
    // its own (over half the largest region, 32 MiB), the region again.
    let sizes = [1_000, 100_000, 3 << 20, 20 << 20, 300_000, 10 << 20, 5];
    let buffers: Vec<ByteBuf> = sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| ByteBuf::from(vec![i as u8 + 1; len]))
        .collect();
    let pool = pool(2);
    for chunksize in [1, 3] {
        let outcomes = pool
            .imap(ByteSum, buffers.clone())
            .chunksize(chunksize)
            .map(Result::unwrap)
            .collect::<Vec<_>>();
        let expected: Vec<u64> = sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| (i as u64 + 1) * len as u64)
            .collect();
        assert_eq!(outcomes, expected, "chunksize {chunksize}");
    }
}

#[test]
fn replies_held_back_out_of_order_stay_intact_while_the_rest_go_around() {
    use procpool_cli::tasks::Square;
    // Replies of about 1 MB each: a worker's region holds a few. The first
    // job's replies are held (not yet read) while the second's are read and
    // freed; the workers must neither overwrite the held ones nor stall.
    let pool = pool(2);
    let n = 800_000i64;
    let mut first = pool.imap(Square, 0..n).chunksize(100_000);
    assert_eq!(first.next().unwrap().unwrap(), 0);
    for round in 0..3 {
        let second = pool.imap(Square, 0..n).chunksize(100_000);
        for (x, outcome) in (0..).zip(second) {
            assert_eq!(outcome.unwrap(), x * x, "round {round}");
        }
    }
    for (x, outcome) in (1..).zip(first) {
        assert_eq!(outcome.unwrap(), x * x);
    }
}
