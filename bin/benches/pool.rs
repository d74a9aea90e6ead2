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
//! Without a row, `cargo bench` runs every row, 3 repeats each. A watchdog
//! ends the run with status 3 after `--timeout` seconds, so a hang is reported,
//! never waited for.
//!
//! The workers are this program itself, as a library user's would be (and
//! as procspawn's are on its side): `main` serves tasks first when started
//! as a worker. `--worker` names another program; the `procpool` command's
//! own figures are the reference rows `teardown_cli` and `program_cli`.
//! Raw ping-pong partners are forked while no pool exists (a pool's spawner
//! thread could hold a lock the child would inherit); the only other thread
//! then is the watchdog, asleep.

use std::hint::black_box;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use ipc_channel::ipc::{self, IpcReceiver, IpcReceiverSet, IpcSelectionResult, IpcSender};
use procpool::{Outcome, Pool, Task, TaskError};
use procpool_cli::tasks::{ByteSum, Square};
use serde_bytes::ByteBuf;
use serde_json::json;

/// Bytes per ping-pong message: about the size of one `apply(square, x)` frame.
const MESSAGE: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Row {
    /// Build a pool and get its first result (then drop it, untimed).
    Start,
    /// Drop an idle pool that has run a task: its workers stopped and reaped
    /// (and the same with the `procpool` command as the worker program).
    Teardown,
    /// Synchronous `apply` round trips, with a raw Unix socket ping-pong and
    /// an ipc-channel ping-pong between two processes in the same run.
    Apply,
    /// `imap` with chunk size 1: the cost of one task.
    Imap1,
    /// `map_outcomes(square)` with automatic chunking over `--size` integers.
    Map,
    /// `map(square)`: the same, just the values (a `Vec<i64>`).
    MapValues,
    /// `map` over `--size` byte buffers of `--bytes` each (default 64 of
    /// 1 MiB), automatic chunks: how big payloads travel.
    Payload,
    /// The floor for `map`: the same squares computed in this process, into
    /// a `Vec<Outcome>` as `map` returns, and into a plain `Vec<i64>`.
    Local,
    /// The floor for `imap1`: tasks pipelined over raw Unix stream sockets to
    /// forked workers, eight in flight each, replies read in bulk.
    Pipeline,
    /// The whole program from exec to exit, run as a child with its output
    /// to /dev/null: examples/first_result.rs (2 workers), and for reference
    /// `procpool -p P square 3`; the CPU is the child's and its workers'.
    Program,
}

/// Runs one benchmark row and prints its measurements as JSON lines.
#[derive(Debug, Parser)]
struct Args {
    /// The row to run [default: every row, 3 repeats each]
    row: Option<Row>,
    /// Measurements per row; each one is a sample [default: 5, or 3 for every row]
    #[arg(long)]
    repeats: Option<usize>,
    /// Give up, with exit status 3, after this many seconds: a hang is a result.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Worker processes.
    #[arg(long, default_value_t = 2)]
    processes: usize,
    /// Inputs per sample (map and imap1), or round trips per sample (apply).
    #[arg(long)]
    size: Option<usize>,
    /// Bytes per buffer in the payload row.
    #[arg(long, default_value_t = 1 << 20)]
    bytes: usize,
    /// Inputs per message for map and imap1 [default: automatic, 1 for imap1].
    #[arg(long)]
    chunksize: Option<usize>,
    /// Inputs sent ahead of the consumer in imap1 [default: the pool's].
    #[arg(long)]
    lookahead: Option<usize>,
    /// Batches in flight per worker [default: the pool's].
    #[arg(long)]
    in_flight: Option<usize>,
    /// The worker program [default: this program]
    #[arg(long)]
    worker: Option<PathBuf>,
    /// Keep freed heap memory in this (the supervisor's) process instead of
    /// giving it back to the kernel after every message: glibc's
    /// `M_TRIM_THRESHOLD` and `M_MMAP_THRESHOLD` raised to 64 MiB.
    #[arg(long)]
    keep_heap: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> ExitCode {
    procpool::init();
    if std::env::args_os().nth(1).as_deref() == Some(IDLE_CHILD.as_ref()) {
        idle_child();
    }
    let args = Args::parse();
    let timeout = Duration::from_secs(args.timeout);
    // A sleeping thread holds no lock, so forking the echo children stays safe.
    std::thread::spawn(move || {
        std::thread::sleep(timeout);
        eprintln!("pool bench: no result after {} s: hung", timeout.as_secs());
        std::process::exit(3);
    });
    let rows = match args.row {
        Some(row) => vec![row],
        None => Row::value_variants().to_vec(),
    };
    for row in rows {
        if let Err(e) = run(row, &args) {
            eprintln!("pool bench: {e:#}");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

fn run(row: Row, args: &Args) -> anyhow::Result<()> {
    if args.keep_heap {
        // SAFETY: mallopt only tunes glibc's allocator; called before any thread.
        unsafe {
            libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
            libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        }
    }
    // The `procpool` command, for the reference rows.
    let cli = PathBuf::from(env!("CARGO_BIN_EXE_procpool"));
    anyhow::ensure!(
        cli.is_file(),
        "{} does not exist: build it with cargo build --release",
        cli.display()
    );
    let worker = match &args.worker {
        Some(worker) => worker.clone(),
        None => std::env::current_exe()?,
    };
    let pool_of = |worker: &PathBuf| -> anyhow::Result<Pool> {
        let mut builder = Pool::builder()
            .processes(args.processes)
            .tune_allocator(true)
            .worker_program(worker);
        if let Some(chunksize) = args.chunksize {
            builder = builder.chunksize(chunksize);
        }
        if let Some(batches) = args.in_flight {
            builder = builder.window(batches);
        }
        Ok(builder.build()?)
    };
    let pool = || pool_of(&worker);
    let repeats = args
        .repeats
        .unwrap_or(if args.row.is_some() { 5 } else { 3 })
        .max(1);
    let p = args.processes;
    match row {
        Row::Start => {
            let samples = (0..repeats)
                .map(|_| {
                    let mut pool_kept = None;
                    let took = timed(|| {
                        let pool = pool_kept.insert(pool()?);
                        let first = pool.apply(Square, 3)?;
                        anyhow::ensure!(first == 9, "square(3) gave {first}");
                        Ok(())
                    });
                    // Dropping the pool (killing its workers) is not timed.
                    drop(pool_kept);
                    took
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            emit("start", p, 1, &samples);
        }
        Row::Teardown => {
            for (name, worker) in [("teardown", &worker), ("teardown_cli", &cli)] {
                let samples = (0..repeats)
                    .map(|_| {
                        let pool = pool_of(worker)?;
                        let pids = pool.pids();
                        anyhow::ensure!(pool.apply(Square, 3)? == 9, "square(3) failed");
                        let took = timed(|| {
                            drop(pool);
                            Ok(())
                        })?;
                        // Reaped: not even a zombie is left.
                        for pid in pids {
                            anyhow::ensure!(
                                !std::path::Path::new(&format!("/proc/{pid}")).exists(),
                                "worker {pid} was not reaped"
                            );
                        }
                        Ok(took)
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                emit(name, p, 1, &samples);
            }
            // The floor: as many idle processes of this program, started
            // without a pool, killed and reaped.
            let this = std::env::current_exe()?;
            let samples = (0..repeats)
                .map(|_| idle_children(p, &this))
                .collect::<anyhow::Result<Vec<_>>>()?;
            emit("teardown_floor", p, 1, &samples);
        }
        Row::Apply => {
            let n = args.size.unwrap_or(2_000);
            // Fork the echo partners first, while this program has one thread.
            let mut unix = UnixEcho::start()?;
            let mut ipc = IpcEcho::start()?;
            let mut ipc_set = IpcEcho::start()?.into_set()?;
            let pool = pool()?;
            let (mut raw, mut chan, mut set) = (Vec::new(), Vec::new(), Vec::new());
            let mut apply = Vec::new();
            for _ in 0..repeats {
                raw.push(unix.round_trips(n)?);
                chan.push(ipc.round_trips(n)?);
                set.push(ipc_set.round_trips(n)?);
                apply.push(timed(|| {
                    for x in 0..n as i64 {
                        let outcome = pool.apply(Square, x)?;
                        anyhow::ensure!(outcome == x * x, "square({x}) went wrong");
                    }
                    Ok(())
                })?);
            }
            emit("pingpong_unix", 2, n, &raw);
            emit("pingpong_ipc", 2, n, &chan);
            emit("pingpong_ipc_set", 2, n, &set);
            emit("apply", p, n, &apply);
        }
        Row::Imap1 => {
            let n = args.size.unwrap_or(20_000);
            let pool = pool()?;
            let samples = (0..repeats)
                .map(|_| {
                    timed(|| {
                        let mut sum = 0i64;
                        let chunksize = args.chunksize.unwrap_or(1);
                        let mut imap = pool.imap(Square, 0..n as i64).chunksize(chunksize);
                        if let Some(inputs) = args.lookahead {
                            imap = imap.lookahead(inputs);
                        }
                        for outcome in imap {
                            sum = sum.wrapping_add(outcome?);
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
                    // The map alone is timed, as Python's side times
                    // `pool.map` and checks its list afterwards.
                    let mut outcomes = Vec::new();
                    let took = timed(|| {
                        outcomes = pool.map_outcomes(Square, 0..n as i64)?;
                        Ok(())
                    })?;
                    let mut sum = 0i64;
                    for outcome in outcomes {
                        sum = sum.wrapping_add(outcome.result?);
                    }
                    check_sum(n, sum)?;
                    Ok(took)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            emit("map", p, n, &samples);
        }
        Row::MapValues => {
            let n = args.size.unwrap_or(1_000_000);
            let pool = pool()?;
            let samples = (0..repeats)
                .map(|_| {
                    timed(|| {
                        let values = pool.map(Square, 0..n as i64)?;
                        anyhow::ensure!(
                            values.len() == n,
                            "{} values for {n} inputs",
                            values.len()
                        );
                        check_sum(n, values.iter().fold(0, |sum: i64, &y| sum.wrapping_add(y)))
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            emit("map_values", p, n, &samples);
        }
        Row::Payload => {
            let n = args.size.unwrap_or(64);
            let buffer: Vec<u8> = (0..args.bytes).map(|i| i as u8).collect();
            let want: u64 = buffer.iter().map(|&b| b as u64).sum();
            let pool = pool()?;
            let mut samples = Vec::new();
            for _ in 0..repeats {
                let inputs = vec![ByteBuf::from(buffer.clone()); n];
                samples.push(timed(|| {
                    for outcome in pool.map_outcomes(ByteSum, inputs)? {
                        anyhow::ensure!(outcome.result? == want, "a buffer's sum is wrong");
                    }
                    Ok(())
                })?);
            }
            emit("payload", p, n, &samples);
        }
        Row::Local => {
            let n = args.size.unwrap_or(1_000_000);
            let pid = std::process::id();
            let mut outcomes = Vec::new();
            let mut values = Vec::new();
            for _ in 0..repeats {
                outcomes.push(timed(|| {
                    let out: Vec<MirrorOutcome> = (0..n as i64)
                        .map(|x| MirrorOutcome {
                            index: x as u64,
                            pid,
                            attempts: 1,
                            started_ns: 0,
                            elapsed_ns: 0,
                            result: Square::run(x).map_err(|f| {
                                Box::new(TaskError::Failed {
                                    message: f.message().to_string(),
                                })
                            }),
                        })
                        .collect();
                    check_sum(n, out.iter().map(|o| o.result.as_ref().unwrap()).sum())
                })?);
                values.push(timed(|| {
                    let out: Vec<i64> = (0..n as i64).map(|x| x * x).collect();
                    check_sum(n, black_box(out).iter().sum())
                })?);
            }
            anyhow::ensure!(
                std::mem::size_of::<MirrorOutcome>() == std::mem::size_of::<Outcome<i64>>(),
                "MirrorOutcome no longer mirrors Outcome<i64>"
            );
            emit("local_outcomes", 1, n, &outcomes);
            emit("local_values", 1, n, &values);
        }
        Row::Pipeline => {
            let n = args.size.unwrap_or(20_000);
            let mut workers = (0..p)
                .map(|_| SquareWorker::start())
                .collect::<anyhow::Result<Vec<_>>>()?;
            let samples = (0..repeats)
                .map(|_| timed(|| check_sum(n, pipeline(&mut workers, n as i64, 8)?)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            emit("pipeline_unix", p, n, &samples);
            let mut samples = Vec::new();
            for _ in 0..repeats {
                let workers = (0..p)
                    .map(|_| IpcEcho::start_squaring())
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let mut children = Vec::new();
                samples.push(timed(|| {
                    let sum;
                    (sum, children) = ipc_pipeline(workers, n as i64, 8)?;
                    check_sum(n, sum)
                })?);
                drop(children);
            }
            emit("pipeline_ipc", p, n, &samples);
        }
        Row::Program => {
            // The smallest program on the library (examples/first_result.rs,
            // 2 workers), as procspawn's side is; and the `procpool` command.
            let example = cli.with_file_name("examples").join("first_result");
            anyhow::ensure!(
                example.is_file(),
                "{} does not exist: build it with cargo build --release --example first_result",
                example.display()
            );
            let samples = (0..repeats)
                .map(|_| timed_child(&mut std::process::Command::new(&example)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            emit("program", 2, 1, &samples);
            let samples = (0..repeats)
                .map(|_| {
                    timed_child(std::process::Command::new(&cli).args([
                        "-p",
                        &p.to_string(),
                        "square",
                        "3",
                    ]))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            emit("program_cli", p, 1, &samples);
        }
    }
    Ok(())
}

/// The hidden argument that makes this program an idle child for the
/// `teardown_floor` measurement.
const IDLE_CHILD: &str = "__idle-child";

/// As an idle child: says it is up (one byte on stdout), then waits to be
/// killed (or for stdin to close).
fn idle_child() -> ! {
    let _ = std::io::stdout()
        .write_all(b"u")
        .and_then(|()| std::io::stdout().flush());
    let _ = std::io::stdin().read(&mut [0]);
    std::process::exit(0)
}

/// Starts `n` idle children of `program`, waits until each is up, then
/// times killing and reaping them all: what the kernel alone costs.
fn idle_children(n: usize, program: &std::path::Path) -> anyhow::Result<Sample> {
    use std::process::{Command, Stdio};
    let mut children = (0..n)
        .map(|_| {
            Command::new(program)
                .arg(IDLE_CHILD)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    for child in &mut children {
        let mut up = [0];
        child.stdout.as_mut().expect("piped").read_exact(&mut up)?;
    }
    timed(|| {
        for child in &children {
            // SAFETY: kill has no memory effects; the pid is our unreaped child.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        }
        for child in &mut children {
            child.wait()?;
        }
        Ok(())
    })
}

/// `Outcome<i64>`'s fields, which only the library may build (it is
/// `#[non_exhaustive]`): the same size, checked when the row runs.
#[allow(dead_code)] // built to be measured, never read
struct MirrorOutcome {
    index: u64,
    pid: u32,
    attempts: u32,
    started_ns: u64,
    elapsed_ns: u64,
    result: Result<i64, Box<TaskError>>,
}

/// One measurement: wall time, and the CPU time this process (the
/// supervisor, not its workers) spent, which the machine's load hardly moves.
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

/// Times `f`.
fn timed(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Sample> {
    let (cpu, start) = (cpu_time(), Instant::now());
    f()?;
    Ok(Sample {
        wall: start.elapsed(),
        cpu: cpu_time().saturating_sub(cpu),
    })
}

/// Runs `command` from exec to exit, its output to /dev/null; the CPU is
/// that of the child and of every descendant it waited for.
fn timed_child(command: &mut std::process::Command) -> anyhow::Result<Sample> {
    use std::process::Stdio;
    command.stdin(Stdio::null()).stdout(Stdio::null());
    let (cpu, start) = (rusage(libc::RUSAGE_CHILDREN), Instant::now());
    let status = command.status()?;
    let wall = start.elapsed();
    anyhow::ensure!(status.success(), "{command:?} exited with {status}");
    Ok(Sample {
        wall,
        cpu: rusage(libc::RUSAGE_CHILDREN).saturating_sub(cpu),
    })
}

/// User and system time of every thread of this process so far.
fn cpu_time() -> Duration {
    rusage(libc::RUSAGE_SELF)
}

/// User and system time so far of `who` (`RUSAGE_SELF` or `RUSAGE_CHILDREN`).
fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage fills the struct we own.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(who, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Checks the sum of `x * x` for `x` in `0..n`, so every result was real.
fn check_sum(n: usize, sum: i64) -> anyhow::Result<()> {
    let n = n as i128;
    let want = ((n - 1) * n * (2 * n - 1) / 6) as i64;
    anyhow::ensure!(sum == want, "sum of squares below {n} is {sum}, not {want}");
    Ok(())
}

fn emit(row: &str, processes: usize, per: usize, samples: &[Sample]) {
    let wall: Vec<f64> = samples.iter().map(|s| s.wall.as_secs_f64()).collect();
    let cpu: Vec<f64> = samples.iter().map(|s| s.cpu.as_secs_f64()).collect();
    println!(
        "{}",
        json!({ "row": row, "processes": processes, "per": per, "samples": wall, "cpu": cpu })
    );
}

/// A forked child process; dropping it kills and reaps it.
struct Child(libc::pid_t);

impl Child {
    /// Forks; the child runs `serve` and exits without unwinding into our code.
    ///
    /// Call only while no pool exists (see the module documentation).
    fn fork(serve: impl FnOnce()) -> anyhow::Result<Child> {
        // SAFETY: the bench forks while its only other thread (the watchdog)
        // sleeps holding no lock, so the child inherits no held lock; it
        // leaves with `_exit`.
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

    fn round_trips(&mut self, n: usize) -> anyhow::Result<Sample> {
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

    fn round_trips(&mut self, n: usize) -> anyhow::Result<Sample> {
        timed(|| {
            for _ in 0..n {
                self.tx.send(ByteBuf::from(vec![7u8; MESSAGE]))?;
                black_box(self.rx.recv()?);
            }
            Ok(())
        })
    }

    /// A child that answers each 8-byte `i64` with its square.
    fn start_squaring() -> anyhow::Result<(IpcSender<ByteBuf>, IpcReceiver<ByteBuf>, Child)> {
        let (tx, child_rx) = ipc::channel::<ByteBuf>()?;
        let (child_tx, rx) = ipc::channel::<ByteBuf>()?;
        let child = Child::fork(move || {
            while let Ok(message) = child_rx.recv() {
                let x = i64::from_le_bytes(message[..8].try_into().expect("8 bytes"));
                let reply = ByteBuf::from(x.wrapping_mul(x).to_le_bytes().to_vec());
                if child_tx.send(reply).is_err() {
                    break;
                }
            }
        })?;
        Ok((tx, rx, child))
    }

    /// The same echo, its replies awaited through an `IpcReceiverSet` as the
    /// supervisor awaits its workers'.
    fn into_set(self) -> anyhow::Result<IpcSetEcho> {
        let IpcEcho { tx, rx, _child } = self;
        let mut set = IpcReceiverSet::new()?;
        set.add(rx)?;
        Ok(IpcSetEcho { tx, set, _child })
    }
}

/// An [`IpcEcho`] read through a receiver set.
struct IpcSetEcho {
    tx: IpcSender<ByteBuf>,
    set: IpcReceiverSet,
    _child: Child,
}

impl IpcSetEcho {
    fn round_trips(&mut self, n: usize) -> anyhow::Result<Sample> {
        timed(|| {
            for _ in 0..n {
                self.tx.send(ByteBuf::from(vec![7u8; MESSAGE]))?;
                for event in self.set.select()? {
                    match event {
                        IpcSelectionResult::MessageReceived(_, message) => {
                            black_box(message.to::<ByteBuf>()?);
                        }
                        IpcSelectionResult::ChannelClosed(_) => anyhow::bail!("echo child died"),
                    }
                }
            }
            Ok(())
        })
    }
}

/// [`pipeline`] over ipc-channel: one message per task each way, replies
/// awaited through an `IpcReceiverSet`, as the pool does.
fn ipc_pipeline(
    workers: Vec<(IpcSender<ByteBuf>, IpcReceiver<ByteBuf>, Child)>,
    n: i64,
    window: usize,
) -> anyhow::Result<(i64, Vec<Child>)> {
    let mut set = IpcReceiverSet::new()?;
    let mut senders = std::collections::HashMap::new();
    let mut children = Vec::new();
    for (tx, rx, child) in workers {
        senders.insert(set.add(rx)?, tx);
        children.push(child);
    }
    let (mut next, mut done, mut sum) = (0i64, 0i64, 0i64);
    let send = |tx: &IpcSender<ByteBuf>, next: &mut i64| -> anyhow::Result<()> {
        if *next < n {
            tx.send(ByteBuf::from(next.to_le_bytes().to_vec()))?;
            *next += 1;
        }
        Ok(())
    };
    for tx in senders.values() {
        for _ in 0..window {
            send(tx, &mut next)?;
        }
    }
    while done < n {
        for event in set.select()? {
            match event {
                IpcSelectionResult::MessageReceived(id, message) => {
                    let y = message.to::<ByteBuf>()?;
                    sum = sum.wrapping_add(i64::from_le_bytes(y[..8].try_into()?));
                    done += 1;
                    send(&senders[&id], &mut next)?;
                }
                IpcSelectionResult::ChannelClosed(_) => anyhow::bail!("a square worker died"),
            }
        }
    }
    Ok((sum, children))
}

/// A forked child that reads `i64`s from a Unix stream socket in bulk and
/// writes back their squares: the least a worker can do per task.
struct SquareWorker {
    socket: UnixStream,
    /// Bytes of a partly read reply.
    partial: Vec<u8>,
    in_flight: usize,
    _child: Child,
}

impl SquareWorker {
    fn start() -> anyhow::Result<Self> {
        let (ours, mut theirs) = UnixStream::pair()?;
        let child = Child::fork(move || {
            let mut input = vec![0u8; 1 << 16];
            let mut have = 0;
            let mut output = Vec::with_capacity(1 << 16);
            while let Ok(read) = theirs.read(&mut input[have..]) {
                if read == 0 {
                    break;
                }
                have += read;
                let whole = have / 8 * 8;
                output.clear();
                for x in input[..whole].chunks_exact(8) {
                    let x = i64::from_le_bytes(x.try_into().expect("8 bytes"));
                    output.extend_from_slice(&x.wrapping_mul(x).to_le_bytes());
                }
                input.copy_within(whole..have, 0);
                have -= whole;
                if theirs.write_all(&output).is_err() {
                    break;
                }
            }
        })?;
        Ok(SquareWorker {
            socket: ours,
            partial: Vec::new(),
            in_flight: 0,
            _child: child,
        })
    }
}

/// Squares `0..n` on `workers`, keeping `window` tasks in flight on each, one
/// 8-byte message per task; returns the sum of the squares.
fn pipeline(workers: &mut [SquareWorker], n: i64, window: usize) -> anyhow::Result<i64> {
    let (mut next, mut done, mut sum) = (0i64, 0i64, 0i64);
    let mut out = Vec::new();
    let mut send = |worker: &mut SquareWorker, room: usize, next: &mut i64| {
        out.clear();
        while worker.in_flight < room && *next < n {
            out.extend_from_slice(&next.to_le_bytes());
            worker.in_flight += 1;
            *next += 1;
        }
        worker.socket.write_all(&out)
    };
    for worker in workers.iter_mut() {
        send(worker, window, &mut next)?;
    }
    let mut buf = vec![0u8; 1 << 16];
    while done < n {
        let mut fds: Vec<libc::pollfd> = workers
            .iter()
            .map(|w| libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(&w.socket),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of pollfd for the call's duration.
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) } < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        for (worker, fd) in workers.iter_mut().zip(&fds) {
            if fd.revents == 0 {
                continue;
            }
            let read = worker.socket.read(&mut buf)?;
            anyhow::ensure!(read > 0, "a square worker died");
            worker.partial.extend_from_slice(&buf[..read]);
            let whole = worker.partial.len() / 8 * 8;
            for y in worker.partial[..whole].chunks_exact(8) {
                sum = sum.wrapping_add(i64::from_le_bytes(y.try_into().expect("8 bytes")));
                worker.in_flight -= 1;
                done += 1;
            }
            worker.partial.drain(..whole);
            send(worker, window, &mut next)?;
        }
    }
    Ok(sum)
}
