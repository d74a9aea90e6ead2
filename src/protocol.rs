//! The messages between supervisor and worker, and the handshake.
//!
//! The handshake travels over the worker's `IpcOneShotServer`: the worker
//! writes the server's name on its stdout, the supervisor connects and sends
//! it the ends of two new channels ([`Hello`]), and the worker's first reply
//! is [`Ready`]. After that every message carries a frame of bytes: a header
//! encoded by [`codec`], followed by a payload of encoded items. A small
//! frame travels in the message; a large one in shared memory, the message
//! saying where ([`Carrier`]; `src/region.rs` says how).

use std::ops::Deref;

use ipc_channel::ipc::{IpcReceiver, IpcSender, IpcSharedMemory};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::codec::{self, CodecError};

/// The environment variable that makes a program a worker, set by its
/// supervisor: `SUPERVISOR-PID:FD`, FD the descriptor on which the worker
/// names its handshake socket (a pipe of its own, or 1 for its stdout when
/// started by hand in a test).
pub const WORKER_ENV: &str = "PROCPOOL_WORKER";

/// The exit status of a program started as a worker that built a pool
/// without calling `procpool::init` first.
pub const NO_INIT_EXIT: i32 = 117;

/// Frames at least this large travel through shared memory (the sender's
/// region, or a segment of their own: `src/region.rs`) instead of being
/// copied through the socket in fragments. It also keeps every send from
/// blocking: a socket then holds at most a window of small messages (8 x 8
/// KiB, far below its buffer), so the supervisor can never wait on a worker
/// that is itself waiting to send a large reply.
pub const SHARED_MEMORY_THRESHOLD: usize = 8 * 1024;

/// One message on a worker's channel: where a frame's bytes are, and how
/// much of the receiver's region is free again.
#[derive(Serialize, Deserialize)]
pub struct Message {
    /// The frame's bytes, or where they are.
    pub bytes: Carrier,
    /// From the supervisor: every position of the worker's reply region
    /// before this one is free again (the supervisor has dropped those
    /// replies). 0 from a worker.
    pub freed: u64,
}

impl Message {
    /// A message that carries its bytes itself.
    ///
    /// ```
    /// use procpool::protocol::{Carrier, Message};
    /// let message = Message::inline(vec![1, 2, 3]);
    /// assert!(matches!(message.bytes, Carrier::Inline(ref b) if b[..] == [1, 2, 3]));
    /// ```
    pub fn inline(bytes: Vec<u8>) -> Message {
        Message {
            bytes: Carrier::Inline(ByteBuf::from(bytes)),
            freed: 0,
        }
    }
}

/// How a frame's bytes travel.
#[derive(Serialize, Deserialize)]
pub enum Carrier {
    /// In the message, copied through the socket (frames under
    /// [`SHARED_MEMORY_THRESHOLD`]).
    Inline(ByteBuf),
    /// In a shared-memory segment of their own: a large frame for which the
    /// sender's region had no room.
    Shared(IpcSharedMemory),
    /// `len` bytes at position `at` of the sender's region.
    Region {
        /// The position, in positions that only grow (`src/region.rs`).
        at: u64,
        /// How many bytes.
        len: u64,
    },
    /// The sender's new region, in place of its last one: its first byte is
    /// position `at`, where the frame's `len` bytes are.
    NewRegion {
        /// The region, mapped by the receiver for as long as it is the
        /// sender's.
        region: IpcSharedMemory,
        /// The position of its first byte, and of the frame.
        at: u64,
        /// How many bytes.
        len: u64,
    },
}

/// A frame's bytes, copied out of whatever carried them (the message, a
/// segment, or a span of the peer's region, freed for reuse at once): the
/// peer can still write shared memory, so nothing here refers into it.
///
/// ```
/// use procpool::protocol::Frame;
/// let frame = Frame::from(vec![1, 2, 3]);
/// assert_eq!(&frame[..], &[1u8, 2, 3][..]);
/// ```
pub struct Frame(Vec<u8>);

impl From<Vec<u8>> for Frame {
    fn from(bytes: Vec<u8>) -> Frame {
        Frame(bytes)
    }
}

impl Deref for Frame {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// The supervisor's message on the worker's one-shot server: the ends of
/// the two channels the worker keeps, and the initializer it runs before
/// it answers.
#[derive(Serialize, Deserialize)]
pub struct Hello {
    /// Where the worker reads requests.
    pub requests: IpcReceiver<Message>,
    /// Where the worker sends replies.
    pub replies: IpcSender<Message>,
    /// The pool's initializer, if it has one.
    pub initializer: Option<InitCall>,
}

/// An initializer to run, with its encoded arguments (Python's `initargs`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InitCall {
    /// Its name ([`Initializer::NAME`](crate::Initializer::NAME)).
    pub name: String,
    /// Its types, checked by the worker ([`Initializer::types`](crate::Initializer::types)).
    pub types: String,
    /// Its arguments, encoded.
    pub args: ByteBuf,
}

/// The worker's first reply, a frame with no payload: it is up.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ready {
    /// The worker's process id, checked against the one spawned.
    pub pid: u32,
    /// The tasks this worker program knows.
    pub tasks: Vec<TaskSignature>,
    /// Why the initializer failed, if it did: the worker then exits.
    pub init_error: Option<String>,
}

/// A task's identity, as a worker reports it in the handshake.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TaskSignature {
    /// The task's name.
    pub name: String,
    /// Its input and output types ([`Task::types`](crate::Task::types)).
    pub types: String,
}

/// What a worker writes on stdout, followed by the cause, when it cannot
/// make its handshake socket.
pub(crate) const NO_SOCKET: &str = "!no socket: ";

/// Removes the handshake socket `name` and the private directory
/// ipc-channel made for it (`<tmp>/.tmpXXXXXX/socket`), if that is what it is.
pub(crate) fn remove_handshake_dir(name: &str) {
    let socket = std::path::Path::new(name);
    let Some(dir) = socket.parent() else { return };
    let made_for_it = socket.file_name().is_some_and(|f| f == "socket")
        && dir
            .file_name()
            .and_then(|d| d.to_str())
            .is_some_and(|d| d.starts_with(".tmp"));
    if made_for_it {
        let _ = std::fs::remove_file(socket);
        let _ = std::fs::remove_dir(dir);
    }
}

/// Supervisor to worker.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Request {
    /// Run `count` inputs of `task`, encoded back to back in the payload.
    Run {
        /// The supervisor's id for this chunk, echoed in the reply.
        chunk: u64,
        /// The registry name of the task.
        task: String,
        /// How many inputs the payload holds.
        count: u32,
        /// Whether to time each input (nothing asks for the times of a
        /// values-only map).
        timed: bool,
    },
    /// Finish and exit with status 0.
    Shutdown,
}

/// Worker to supervisor.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Reply {
    /// The results of a chunk, laid out in the payload as
    /// [`ChunkLayout`](crate::task::ChunkLayout) says.
    Done {
        /// The chunk id from the request.
        chunk: u64,
        /// When the worker started the chunk, in nanoseconds on the
        /// machine's `CLOCK_MONOTONIC` ([`monotonic_ns`](crate::sys::monotonic_ns));
        /// input `i` started this plus the elapsed times before it.
        started_ns: u64,
        /// The worker has work to finish when it exits (a helper process
        /// to reap): at the end it is asked to exit, not killed.
        exit_work: bool,
    },
    /// The worker could not run the chunk at all (unknown task, undecodable input).
    Refused {
        /// The chunk id from the request.
        chunk: u64,
        /// Why, in one line.
        reason: String,
    },
}

/// How one task failed inside the worker, as sent over the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum WireFailure {
    /// The task returned an error.
    Failed(String),
    /// The task panicked.
    Panicked {
        /// The panic message.
        message: String,
        /// `file:line:column`, when known.
        location: Option<String>,
    },
}

/// Encodes a header followed by a raw payload into one frame in memory (the
/// MPI backend's, and tests'; a channel's sender packs frames with
/// `region::Outbox`, which copies each byte once).
///
/// # Errors
///
/// If the header cannot be encoded.
#[cfg_attr(not(any(feature = "mpi", test)), allow(dead_code))]
pub fn frame<H: Serialize>(header: &H, payload: &[u8]) -> Result<Frame, CodecError> {
    let mut bytes = Vec::with_capacity(payload.len() + 32);
    codec::encode_into(header, &mut bytes)?;
    bytes.extend_from_slice(payload);
    Ok(Frame::from(bytes))
}

/// A message of a header alone (the handshake's [`Ready`], a shutdown),
/// small enough to travel inline.
///
/// # Errors
///
/// If the header cannot be encoded.
pub fn message<H: Serialize>(header: &H) -> Result<Message, CodecError> {
    let mut bytes = Vec::new();
    codec::encode_into(header, &mut bytes)?;
    Ok(Message::inline(bytes))
}

/// Splits a frame into its decoded header and the payload after it.
///
/// # Errors
///
/// If the header is truncated or malformed.
pub fn unframe<H: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<(H, &[u8]), CodecError> {
    let (header, used) = codec::decode::<H>(bytes)?;
    Ok((header, &bytes[used..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let req = Request::Run {
            chunk: 9,
            task: "square".into(),
            count: 2,
            timed: true,
        };
        let f = frame(&req, b"payload").unwrap();
        let (back, payload) = unframe::<Request>(&f).unwrap();
        assert_eq!(back, req);
        assert_eq!(payload, b"payload");
    }

    #[test]
    fn every_truncation_of_a_frame_is_an_error_or_shorter_payload() {
        let f = frame(
            &Reply::Refused {
                chunk: 3,
                reason: "no".into(),
            },
            b"",
        )
        .unwrap();
        for cut in 0..f.len() {
            assert!(unframe::<Reply>(&f[..cut]).is_err(), "cut at {cut}");
        }
    }

    proptest::proptest! {
        /// Flipped, cut and extended frames decode or fail; they never panic,
        /// abort or allocate what a length prefix claims.
        #[test]
        fn mutated_frames_never_panic(
            chunk in 0u64..u64::MAX,
            task in ".{0,40}",
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            flips in proptest::collection::vec((0usize..256, proptest::prelude::any::<u8>()), 0..8),
            cut in 0usize..512,
        ) {
            let mut bytes = frame(&Request::Run { chunk, task, count: 3, timed: true }, &payload).unwrap().to_vec();
            for (at, value) in flips {
                if !bytes.is_empty() {
                    let i = at % bytes.len();
                    bytes[i] ^= value;
                }
            }
            bytes.truncate(cut);
            if let Ok((Request::Run { count, timed, .. }, rest)) = unframe::<Request>(&bytes) {
                // Decoding hostile inputs in the worker is just as safe. (Only
                // tasks that cannot sleep or crash on purpose are run here.)
                let square = crate::task::run_chunk::<crate::doctest::square>;
                let mut out = Vec::new();
                let _ = square(rest, count.min(64), timed, &mut out);
            }
            let _ = unframe::<Reply>(&bytes);
        }
    }
}
