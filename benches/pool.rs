//! The procpool side of the benchmark against Python's multiprocessing.
//!
//! `bench/run` is the one command: it builds this in release, runs it and
//! `bench/baseline.py` row by row, and prints the table. Run alone, each row
//! prints one JSON line per measurement:
//! `{"row": .., "per": N, "samples": [seconds, ..], ..}`, where a sample is
//! the wall time of `per` operations, so `sample / per` is one operation.
//!
//! ```text
//! cargo bench --bench pool -- apply --repeats 5
//! ```
//!
//! The workers are the release `procpool` binary built next to this bench.
//! Raw ping-pong partners are forked while this program is still
//! single-threaded, before any pool (whose spawner thread would make `fork`
//! unsafe) exists.

use std::hint::black_box;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use ipc_channel::ipc::{self, IpcReceiver, IpcSender};
use procpool::Pool;
use procpool::tasks::Square;
use serde_bytes::ByteBuf;
use serde_json::json;

/// Bytes per ping-pong message: about the size of one `apply(square, x)` frame.
const MESSAGE: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Row {
    /// Build a pool and get its first result (then drop it, untimed).
    Start,
    /// Synchronous `apply` round trips, with a raw Unix socket ping-pong and
    /// an ipc-channel ping-pong between two processes in the same run.
    Apply,
    /// `imap` with chunk size 1: the cost of one task.
    Imap1,
    /// `map(square)` with automatic chunking over `--size` integers.
    Map,
}

/// Runs one benchmark row and prints its measurements as JSON lines.
#[derive(Debug, Parser)]
struct Args {
    row: Row,
    /// Measurements per row; each one is a sample.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Worker processes.
    #[arg(long, default_value_t = 2)]
    processes: usize,
    /// Inputs per sample (map and imap1), or round trips per sample (apply).
    #[arg(long)]
    size: Option<usize>,
    /// The worker program [default: the release procpool built with this bench]
    #[arg(long)]
    worker: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pool bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let worker = args
        .worker
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_procpool")));
    anyhow::ensure!(
        worker.is_file(),
        "worker program {} does not exist: build it with cargo build --release",
        worker.display()
    );
    let pool = || -> anyhow::Result<Pool> {
        Ok(Pool::builder()
            .processes(args.processes)
            .worker_program(&worker)
            .build()?)
    };
    let repeats = args.repeats.max(1);
    let p = args.processes;
    match args.row {
        Row::Start => {
            let samples = (0..repeats)
                .map(|_| {
                    let start = Instant::now();
                    let pool = pool()?;
                    let first = pool.apply(Square, 3)?;
                    let took = start.elapsed();
                    anyhow::ensure!(first.result == Ok(9), "square(3) gave {:?}", first.result);
                    Ok(took)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            emit("start", p, 1, &samples);
        }
        Row::Apply => {
            let n = args.size.unwrap_or(2_000);
            // Fork the echo partners first, while this program has one thread.
            let mut unix = UnixEcho::start()?;
            let mut ipc = IpcEcho::start()?;
            let pool = pool()?;
            let (mut raw, mut chan, mut apply) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..repeats {
                raw.push(unix.round_trips(n)?);
                chan.push(ipc.round_trips(n)?);
                apply.push(timed(|| {
                    for x in 0..n as i64 {
                        let outcome = pool.apply(Square, x)?;
                        anyhow::ensure!(outcome.result == Ok(x * x), "square({x}) went wrong");
                    }
                    Ok(())
                })?);
            }
            emit("pingpong_unix", 2, n, &raw);
            emit("pingpong_ipc", 2, n, &chan);
            emit("apply", p, n, &apply);
        }
        Row::Imap1 => {
            let n = args.size.unwrap_or(20_000);
            let pool = pool()?;
            let samples = (0..repeats)
                .map(|_| {
                    timed(|| {
                        let mut sum = 0i64;
                        for outcome in pool.imap(Square, 0..n as i64).chunksize(1) {
                            sum = sum.wrapping_add(outcome?.result?);
                        }
                        check_sum(n, sum)
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            emit("imap1", p, n, &samples);
        }
        Row::Map => {
            let n = args.size.unwrap_or(1_000_000);
            let pool = pool()?;
            let samples = (0..repeats)
                .map(|_| {
                    timed(|| {
                        let outcomes = pool.map(Square, 0..n as i64)?;
                        let mut sum = 0i64;
                        for outcome in outcomes {
                            sum = sum.wrapping_add(outcome.result?);
                        }
                        check_sum(n, sum)
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            emit("map", p, n, &samples);
        }
    }
    Ok(())
}

/// The wall time of `f`.
fn timed(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

/// Checks the sum of `x * x` for `x` in `0..n`, so every result was real.
fn check_sum(n: usize, sum: i64) -> anyhow::Result<()> {
    let n = n as i128;
    let want = ((n - 1) * n * (2 * n - 1) / 6) as i64;
    anyhow::ensure!(sum == want, "sum of squares below {n} is {sum}, not {want}");
    Ok(())
}

fn emit(row: &str, processes: usize, per: usize, samples: &[Duration]) {
    let seconds: Vec<f64> = samples.iter().map(Duration::as_secs_f64).collect();
    println!(
        "{}",
        json!({ "row": row, "processes": processes, "per": per, "samples": seconds })
    );
}

/// A forked child process; dropping it kills and reaps it.
struct Child(libc::pid_t);

impl Child {
    /// Forks; the child runs `serve` and exits without unwinding into our code.
    ///
    /// Call only while this program has a single thread.
    fn fork(serve: impl FnOnce()) -> anyhow::Result<Child> {
        // SAFETY: the bench forks before it starts any thread, so the child
        // holds no lock another thread owned; it leaves with `_exit`.
        match unsafe { libc::fork() } {
            -1 => Err(std::io::Error::last_os_error().into()),
            0 => {
                // SAFETY: plain syscalls; the child dies with the bench.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
                serve();
                unsafe { libc::_exit(0) }
            }
            pid => Ok(Child(pid)),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: our own child, reaped once.
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}

/// A child that echoes fixed-size messages over a Unix stream socket pair.
struct UnixEcho {
    socket: UnixStream,
    _child: Child,
}

impl UnixEcho {
    fn start() -> anyhow::Result<Self> {
        let (ours, mut theirs) = UnixStream::pair()?;
        let child = Child::fork(move || {
            let mut buf = [0u8; MESSAGE];
            while theirs.read_exact(&mut buf).is_ok() && theirs.write_all(&buf).is_ok() {}
        })?;
        Ok(UnixEcho {
            socket: ours,
            _child: child,
        })
    }

    fn round_trips(&mut self, n: usize) -> anyhow::Result<Duration> {
        let mut buf = [7u8; MESSAGE];
        timed(|| {
            for _ in 0..n {
                self.socket.write_all(&buf)?;
                self.socket.read_exact(&mut buf)?;
            }
            black_box(&buf);
            Ok(())
        })
    }
}

/// A child that echoes byte buffers over a pair of ipc-channels, as the pool's
/// worker channels are.
struct IpcEcho {
    tx: IpcSender<ByteBuf>,
    rx: IpcReceiver<ByteBuf>,
    _child: Child,
}

impl IpcEcho {
    fn start() -> anyhow::Result<Self> {
        let (tx, child_rx) = ipc::channel::<ByteBuf>()?;
        let (child_tx, rx) = ipc::channel::<ByteBuf>()?;
        let child = Child::fork(move || {
            while let Ok(message) = child_rx.recv() {
                if child_tx.send(message).is_err() {
                    break;
                }
            }
        })?;
        Ok(IpcEcho {
            tx,
            rx,
            _child: child,
        })
    }

    fn round_trips(&mut self, n: usize) -> anyhow::Result<Duration> {
        timed(|| {
            for _ in 0..n {
                self.tx.send(ByteBuf::from(vec![7u8; MESSAGE]))?;
                black_box(self.rx.recv()?);
            }
            Ok(())
        })
    }
}
