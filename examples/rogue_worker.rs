//! A worker that misbehaves at a chosen stage of the protocol, for the
//! resilience tests: started by a pool as its worker program
//! (`PROCPOOL_WORKER=PID:FD`), with `ROGUE=STAGE:HOW` in the environment.
//!
//! STAGE: `handshake` (before its socket is named), `receive` (on reading the first
//! request), `run` (after decoding it), `send` (after running, instead of the
//! reply), `garbage` (replies with bytes that do not decode), `wrong-chunk`
//! (replies for a chunk it was not given), `region` (replies with a frame in
//! shared memory at a place that is not there: HOW `none`, before sending
//! any region, or `past-end`, past the end of the region it sends). HOW:
//! `exit0`, `exit1`, `abort`, `segv`, `kill`, `error` (an error reply).
//! Without `ROGUE` it is a well-behaved worker for `square` (small requests
//! only: they come inline).

use std::io::Write;

use ipc_channel::ipc::IpcOneShotServer;
use ipc_channel::ipc::IpcSharedMemory;
use procpool::protocol::{self, Carrier, Hello, Message, Reply, Request};
use serde_bytes::ByteBuf;

fn die(how: &str) -> ! {
    match how {
        "exit0" => std::process::exit(0),
        "exit1" => std::process::exit(1),
        "abort" => std::process::abort(),
        "segv" => {
            // SAFETY: none; crashing is the point.
            unsafe { std::ptr::null_mut::<u8>().write_volatile(1) };
            unreachable!()
        }
        "kill" => {
            let _ = procpool::sys::kill(std::process::id(), libc::SIGKILL);
            std::thread::sleep(std::time::Duration::from_secs(10));
            unreachable!()
        }
        other => panic!("unknown HOW {other:?}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rogue = std::env::var("ROGUE").unwrap_or_default();
    let (stage, how) = rogue.split_once(':').unwrap_or(("", ""));
    procpool::sys::set_parent_death_signal(libc::SIGKILL).unwrap();
    if stage == "handshake" {
        die(how);
    }
    let _ = args;
    // The handshake as a worker does it: name a one-shot server on the pipe
    // the supervisor gave, take the supervisor's channels, answer Ready.
    let marker = std::env::var(protocol::WORKER_ENV).expect("started by a pool");
    let (_, fd) = marker.split_once(':').unwrap();
    let (server, name) = IpcOneShotServer::<Hello>::new().unwrap();
    // SAFETY: the supervisor gave this descriptor for the handshake alone.
    let mut pipe =
        unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd.parse().unwrap()) };
    writeln!(pipe, "{name}").unwrap();
    drop(pipe);
    let (
        _,
        Hello {
            requests, replies, ..
        },
    ) = server.accept().unwrap();
    let ready = protocol::Ready {
        pid: std::process::id(),
        tasks: vec![protocol::TaskSignature {
            name: "square".into(),
            types: "i64 -> i64".into(),
        }],
        init_error: None,
    };
    replies.send(protocol::message(&ready).unwrap()).unwrap();
    let send = |frame: protocol::Frame| replies.send(Message::inline(frame.to_vec())).unwrap();
    while let Ok(message) = requests.recv() {
        if stage == "receive" {
            die(how);
        }
        let Carrier::Inline(frame) = message.bytes else {
            panic!("the rogue worker reads inline requests only");
        };
        let (request, payload) = protocol::unframe::<Request>(&frame).unwrap();
        let Request::Run { chunk, count, .. } = request else {
            return;
        };
        if stage == "run" {
            if how == "error" {
                let reply = Reply::Refused {
                    chunk,
                    reason: "rogue worker refuses on purpose".into(),
                };
                send(protocol::frame(&reply, &[]).unwrap());
                continue;
            }
            die(how);
        }
        let mut out = Vec::new();
        let mut rest = payload;
        for _ in 0..count {
            let (x, used) = procpool::codec::decode::<i64>(rest).unwrap();
            rest = &rest[used..];
            let result: Result<i64, procpool::protocol::WireFailure> = Ok(x * x);
            procpool::codec::encode_into(&(0u64, result), &mut out).unwrap();
        }
        match stage {
            "send" => die(how),
            "garbage" => {
                replies
                    .send(Message {
                        bytes: Carrier::Inline(ByteBuf::from(vec![0xff; 17])),
                        freed: 0,
                    })
                    .unwrap();
            }
            "region" => {
                let bytes = match how {
                    "none" => Carrier::Region { at: 0, len: 64 },
                    "past-end" => Carrier::NewRegion {
                        region: IpcSharedMemory::from_byte(0, 4096),
                        at: 0,
                        len: 4097,
                    },
                    other => panic!("unknown HOW {other:?}"),
                };
                replies.send(Message { bytes, freed: 0 }).unwrap();
            }
            "wrong-chunk" => {
                let reply = Reply::Done {
                    chunk: chunk + 1000,
                    started_ns: procpool::sys::monotonic_ns(),
                    exit_work: false,
                };
                send(protocol::frame(&reply, &out).unwrap());
            }
            _ => {
                let reply = Reply::Done {
                    chunk,
                    started_ns: procpool::sys::monotonic_ns(),
                    exit_work: false,
                };
                send(protocol::frame(&reply, &out).unwrap());
            }
        }
    }
}
