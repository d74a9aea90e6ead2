//! A worker that misbehaves at a chosen stage of the protocol, for the
//! resilience tests: `rogue_worker __procpool-worker PID` with
//! `ROGUE=STAGE:HOW` in the environment.
//!
//! STAGE: `handshake` (before its socket is named), `receive` (on reading the first
//! request), `run` (after decoding it), `send` (after running, instead of the
//! reply), `garbage` (replies with bytes that do not decode), `wrong-batch`
//! (replies for a batch it was not given). HOW: `exit0`, `exit1`, `abort`,
//! `segv`, `kill`, `error` (an error reply). Without `ROGUE` it is a
//! well-behaved worker for `square`.

use std::io::Write;

use ipc_channel::ipc::IpcOneShotServer;
use procpool::protocol::{self, Frame, Hello, Ready, Reply, Request};
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
    // The handshake as a worker does it: name a one-shot server on stdout,
    // take the supervisor's channels, answer Ready.
    let (server, name) = IpcOneShotServer::<Hello>::new().unwrap();
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{name}").unwrap();
    stdout.flush().unwrap();
    let (_, Hello { requests, replies }) = server.accept().unwrap();
    let ready = Ready {
        pid: std::process::id(),
        tasks: vec!["square".into()],
    };
    replies.send(protocol::frame(&ready, &[]).unwrap()).unwrap();
    while let Ok(frame) = requests.recv() {
        if stage == "receive" {
            die(how);
        }
        let (request, payload) = protocol::unframe::<Request>(&frame).unwrap();
        let Request::Run { batch, count, .. } = request else {
            return;
        };
        if stage == "run" {
            if how == "error" {
                let reply = Reply::Refused {
                    batch,
                    reason: "rogue worker refuses on purpose".into(),
                };
                replies.send(protocol::frame(&reply, &[]).unwrap()).unwrap();
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
                    .send(Frame::Inline(ByteBuf::from(vec![0xff; 17])))
                    .unwrap();
            }
            "wrong-batch" => {
                let reply = Reply::Done {
                    batch: batch + 1000,
                    started_ns: procpool::sys::monotonic_ns(),
                    exit_work: false,
                };
                replies
                    .send(protocol::frame(&reply, &out).unwrap())
                    .unwrap();
            }
            _ => {
                replies
                    .send(
                        protocol::frame(
                            &Reply::Done {
                                batch,
                                started_ns: procpool::sys::monotonic_ns(),
                                exit_work: false,
                            },
                            &out,
                        )
                        .unwrap(),
                    )
                    .unwrap();
            }
        }
    }
}
