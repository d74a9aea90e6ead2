//! Large inputs through the pool: byte buffers bigger than a socket message.

use procpool::tasks::ByteSum;
use serde_bytes::ByteBuf;

use crate::util::pool;

#[test]
fn buffers_larger_than_a_socket_message_arrive_whole_and_in_order() {
    let pool = pool(2);
    // 300 KB each: more than one ipc-channel fragment (about 212 KB here).
    let buffers: Vec<ByteBuf> = (0..6u8)
        .map(|seed| ByteBuf::from(vec![seed; 300_000]))
        .collect();
    let outcomes = pool.map(ByteSum, buffers).unwrap();
    let sums: Vec<u64> = outcomes.iter().map(|o| o.result.clone().unwrap()).collect();
    let expected: Vec<u64> = (0..6u64).map(|seed| seed * 300_000).collect();
    assert_eq!(sums, expected);
}
