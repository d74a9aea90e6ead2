//! The procspawn side of procpool's benchmark: the rows of bin/benches/pool.rs
//! on `procspawn::Pool`, the nearest Rust peer (worker processes re-executed
//! from this binary, one pair of ipc-channel channels per call).
//!
//! `bench/run` builds this in release and runs it beside bin/benches/pool.rs and
//! bench/baseline.py. Run alone, each row prints one JSON line per
//! measurement, as bin/benches/pool.rs does:
//! `{"row": .., "processes": P, "per": N, "samples": [seconds, ..], "cpu": [seconds, ..]}`,
//! where a sample is the wall time of `per` operations and `cpu` the CPU time
//! of this (the supervising) process over it.
//!
//! ```text
//! cargo run --release --manifest-path bench/peer/Cargo.toml -- apply --repeats 5
//! ```
//!
//! Rows: start, teardown, apply, imap1, map, payload, program (without one:
//! every row, 3 repeats each). Flags: `--repeats N --processes P --size N
//! --bytes N --timeout S`. A watchdog ends the run with status 3 after
//! `--timeout` seconds, so a hang is reported, never waited for.
//!
//! Rows of bin/benches/pool.rs this has no counterpart for: `local` and
//! `pipeline` (procpool's own floors), and `map_values` (procspawn has no
//! map; the `map` row here already returns plain values).

use std::error::Error;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use procspawn::{JoinHandle, Pool};
use serde_bytes::ByteBuf;
use serde_json::json;

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

/// The hidden subcommand `program` runs: the whole program under test.
const PROGRAM_CHILD: &str = "__program-child";

/// Tasks `imap1` keeps submitted ahead of the one it joins. Each submitted,
/// unjoined call holds three descriptors in this process (its argument
/// receiver and result sender wait in the pool's queue, its result receiver
/// in the handle), so all 20,000 at once would need 60,000 descriptors:
/// past the usual limit (`ulimit -n`, 20,000 here), where procspawn panics.
const IMAP_WINDOW: usize = 2_000;

#[derive(Debug)]
struct Args {
    row: Option<String>,
    repeats: Option<usize>,
    processes: usize,
    size: Option<usize>,
    bytes: usize,
    timeout: u64,
}

const ROWS: &[&str] = &[
    "start", "teardown", "apply", "imap1", "map", "payload", "program",
];

fn parse_args() -> Result<Args> {
    let mut args = Args {
        row: None,
        repeats: None,
        processes: 2,
        size: None,
        bytes: 1 << 20,
        timeout: 300,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> Result<usize> {
            let v = it.next().ok_or_else(|| format!("{name} needs a value"))?;
            Ok(v.parse().map_err(|e| format!("{name} {v}: {e}"))?)
        };
        match arg.as_str() {
            "--repeats" => args.repeats = Some(value("--repeats")?),
            "--processes" => args.processes = value("--processes")?,
            "--size" => args.size = Some(value("--size")?),
            "--bytes" => args.bytes = value("--bytes")?,
            "--timeout" => args.timeout = value("--timeout")? as u64,
            // Passed by `cargo bench`-style runners; ignored.
            "--bench" => {}
            "-h" | "--help" => {
                println!(
                    "usage: procpool-peer [ROW] [--repeats N] [--processes P] [--size N] \
                     [--bytes N] [--timeout S]\nrows: {}",
                    ROWS.join(", ")
                );
                std::process::exit(0);
            }
            row if !row.starts_with('-') && args.row.is_none() => {
                if row != PROGRAM_CHILD && !ROWS.contains(&row) {
                    return Err(format!("unknown row {row}: one of {}", ROWS.join(", ")).into());
                }
                args.row = Some(row.to_string());
            }
            other => return Err(format!("unexpected argument {other}").into()),
        }
    }
    args.processes = args.processes.max(1);
    Ok(args)
}

fn main() -> ExitCode {
    // A pool's worker is this binary run again: init() turns it into the
    // worker (and never returns there) before anything else happens.
    procspawn::init();
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("peer bench: {e}");
            return ExitCode::from(2);
        }
    };
    let timeout = Duration::from_secs(args.timeout);
    std::thread::spawn(move || {
        std::thread::sleep(timeout);
        eprintln!("peer bench: no result after {} s: hung", timeout.as_secs());
        std::process::exit(3);
    });
    if args.row.as_deref() == Some(PROGRAM_CHILD) {
        return match program_child(args.processes) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("peer program: {e}");
                ExitCode::from(2)
            }
        };
    }
    let rows: Vec<&str> = match &args.row {
        Some(row) => vec![row.as_str()],
        None => ROWS.to_vec(),
    };
    for row in rows {
        if let Err(e) = run(row, &args) {
            eprintln!("peer bench: {row}: {e}");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

fn square(x: i64) -> i64 {
    x * x
}

fn square_chunk(xs: Vec<i64>) -> Vec<i64> {
    xs.into_iter().map(square).collect()
}

fn byte_sum(buffer: ByteBuf) -> u64 {
    buffer.iter().map(|&b| b as u64).sum()
}

fn pool(processes: usize) -> Result<Pool> {
    Ok(Pool::new(processes)?)
}

/// The program the `program` row times: start a pool, get square(3), print
/// it, exit (the pool's drop kills and reaps its workers).
fn program_child(processes: usize) -> Result<()> {
    let pool = pool(processes)?;
    let first = pool.spawn(3, square).join()?;
    ensure(first == 9, || format!("square(3) gave {first}"))?;
    println!("{first}");
    drop(pool);
    Ok(())
}

fn run(row: &str, args: &Args) -> Result<()> {
    let repeats = args
        .repeats
        .unwrap_or(if args.row.is_some() { 5 } else { 3 })
        .max(1);
    let p = args.processes;
    match row {
        "start" => {
            let mut samples = Vec::new();
            for _ in 0..repeats {
                let mut kept = None;
                samples.push(timed(|| {
                    let pool = kept.insert(pool(p)?);
                    let first = pool.spawn(3, square).join()?;
                    ensure(first == 9, || format!("square(3) gave {first}"))
                })?);
                // Dropping the pool (killing its workers) is not timed.
                drop(kept);
            }
            emit("start", p, 1, &samples);
        }
        "teardown" => {
            let mut samples = Vec::new();
            for _ in 0..repeats {
                let pool = pool(p)?;
                ensure(pool.spawn(3, square).join()? == 9, || {
                    "square(3) failed".into()
                })?;
                // procspawn does not tell a pool's worker PIDs: they are this
                // process's children (it has no other).
                let pids = children()?;
                ensure(pids.len() == p, || {
                    format!("{} children, not {p} workers", pids.len())
                })?;
                samples.push(timed(|| {
                    drop(pool);
                    Ok(())
                })?);
                // Reaped: not even a zombie is left.
                for pid in pids {
                    ensure(!Path::new(&format!("/proc/{pid}")).exists(), || {
                        format!("worker {pid} was not reaped")
                    })?;
                }
            }
            emit("teardown", p, 1, &samples);
        }
        "apply" => {
            let n = args.size.unwrap_or(2_000);
            let pool = pool(p)?;
            let mut samples = Vec::new();
            for _ in 0..repeats {
                samples.push(timed(|| {
                    for x in 0..n as i64 {
                        let y = pool.spawn(x, square).join()?;
                        ensure(y == x * x, || format!("square({x}) gave {y}"))?;
                    }
                    Ok(())
                })?);
            }
            emit("apply", p, n, &samples);
        }
        "imap1" => {
            let n = args.size.unwrap_or(20_000);
            let pool = pool(p)?;
            let mut samples = Vec::new();
            for _ in 0..repeats {
                samples.push(timed(|| {
                    // One spawn per item, joined in input order, at most
                    // IMAP_WINDOW submitted ahead (see there).
                    let mut handles = std::collections::VecDeque::new();
                    let mut sum = 0i64;
                    for x in 0..n as i64 {
                        if handles.len() == IMAP_WINDOW {
                            sum = sum.wrapping_add(join_front(&mut handles)?);
                        }
                        handles.push_back(pool.spawn(x, square));
                    }
                    while !handles.is_empty() {
                        sum = sum.wrapping_add(join_front(&mut handles)?);
                    }
                    check_sum(n, sum)
                })?);
            }
            emit("imap1", p, n, &samples);
        }
        "map" => {
            let n = args.size.unwrap_or(1_000_000);
            let pool = pool(p)?;
            let mut samples = Vec::new();
            for _ in 0..repeats {
                samples.push(timed(|| {
                    // Chunked by hand, as procspawn has no map: 4 chunks per
                    // process, one spawn each, results concatenated in order.
                    let chunks = 4 * p;
                    let per = n.div_ceil(chunks).max(1);
                    let mut out = Vec::with_capacity(n);
                    spawn_then_join(
                        &pool,
                        (0..n as i64).step_by(per).map(|start| {
                            (start..(start + per as i64).min(n as i64)).collect::<Vec<i64>>()
                        }),
                        square_chunk,
                        |ys| out.extend(ys),
                    )?;
                    ensure(out.len() == n, || {
                        format!("{} results for {n} inputs", out.len())
                    })?;
                    check_sum(n, out.iter().fold(0i64, |s, &y| s.wrapping_add(y)))
                })?);
            }
            emit("map", p, n, &samples);
        }
        "payload" => {
            let n = args.size.unwrap_or(64);
            let buffer: Vec<u8> = (0..args.bytes).map(|i| i as u8).collect();
            let want: u64 = buffer.iter().map(|&b| b as u64).sum();
            let pool = pool(p)?;
            let mut samples = Vec::new();
            for _ in 0..repeats {
                let inputs = vec![ByteBuf::from(buffer.clone()); n];
                samples.push(timed(|| {
                    // One spawn per buffer: procspawn's natural chunking.
                    let mut wrong = 0;
                    spawn_then_join(&pool, inputs, byte_sum, |sum| {
                        wrong += usize::from(sum != want)
                    })?;
                    ensure(wrong == 0, || format!("{wrong} buffers' sums are wrong"))?;
                    Ok(())
                })?);
            }
            emit("payload", p, n, &samples);
        }
        "program" => {
            let exe = std::env::current_exe()?;
            let mut samples = Vec::new();
            for _ in 0..repeats {
                samples.push(timed_child(Command::new(&exe).args([
                    PROGRAM_CHILD,
                    "--processes",
                    &p.to_string(),
                ]))?);
            }
            emit("program", p, 1, &samples);
        }
        other => return Err(format!("unknown row {other}").into()),
    }
    Ok(())
}

/// Spawns `f` on every input from a second thread while this one joins the
/// calls in input order, giving each result to `consume`.
///
/// Not one loop that spawns all, then joins all: procspawn's `spawn` sends
/// the argument itself, blocking on a large one (about 200 KiB and up) until
/// a worker reads it, and a worker's monitor thread hands its result over a
/// rendezvous channel, blocking until the caller joins. Spawning a (P+1)th
/// large argument before joining any thus deadlocks (64 x 1 MiB hangs).
fn spawn_then_join<A, R>(
    pool: &Pool,
    inputs: impl IntoIterator<Item = A, IntoIter: Send>,
    f: fn(A) -> R,
    mut consume: impl FnMut(R),
) -> Result<()>
where
    A: serde::Serialize + serde::de::DeserializeOwned,
    R: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let inputs = inputs.into_iter();
    std::thread::scope(|scope| {
        let (handles, joined) = std::sync::mpsc::channel::<JoinHandle<R>>();
        scope.spawn(move || {
            for input in inputs {
                if handles.send(pool.spawn(input, f)).is_err() {
                    break;
                }
            }
        });
        for handle in joined {
            consume(handle.join()?);
        }
        Ok(())
    })
}

fn join_front(handles: &mut std::collections::VecDeque<JoinHandle<i64>>) -> Result<i64> {
    let handle = handles.pop_front().expect("a handle");
    Ok(handle.join()?)
}

fn ensure(ok: bool, message: impl FnOnce() -> String) -> Result<()> {
    if ok { Ok(()) } else { Err(message().into()) }
}

/// The PIDs whose parent is this process, from /proc.
fn children() -> Result<Vec<u32>> {
    let me = std::process::id();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let name = entry?.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the command's closing parenthesis: state, then the parent.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if rest
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok())
            == Some(me)
        {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// One measurement: wall time, and CPU time (of this process, or of the
/// children waited for, for `program`).
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

/// Times `f`; its CPU is this process's (every thread), the supervisor's.
fn timed(f: impl FnOnce() -> Result<()>) -> Result<Sample> {
    let (cpu, start) = (cpu_time(libc::RUSAGE_SELF), Instant::now());
    f()?;
    Ok(Sample {
        wall: start.elapsed(),
        cpu: cpu_time(libc::RUSAGE_SELF).saturating_sub(cpu),
    })
}

/// Runs `command` from exec to exit, its output to /dev/null; the CPU is
/// that of the child and every descendant it waited for.
fn timed_child(command: &mut Command) -> Result<Sample> {
    command.stdin(Stdio::null()).stdout(Stdio::null());
    let (cpu, start) = (cpu_time(libc::RUSAGE_CHILDREN), Instant::now());
    let status = command.status()?;
    let wall = start.elapsed();
    ensure(status.success(), || {
        format!("{command:?} exited with {status}")
    })?;
    Ok(Sample {
        wall,
        cpu: cpu_time(libc::RUSAGE_CHILDREN).saturating_sub(cpu),
    })
}

/// User and system time so far of `who` (RUSAGE_SELF or RUSAGE_CHILDREN).
fn cpu_time(who: libc::c_int) -> Duration {
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
fn check_sum(n: usize, sum: i64) -> Result<()> {
    let n = n as i128;
    let want = ((n - 1) * n * (2 * n - 1) / 6) as i64;
    ensure(sum == want, || {
        format!("sum of squares below {n} is {sum}, not {want}")
    })
}

fn emit(row: &str, processes: usize, per: usize, samples: &[Sample]) {
    let wall: Vec<f64> = samples.iter().map(|s| s.wall.as_secs_f64()).collect();
    let cpu: Vec<f64> = samples.iter().map(|s| s.cpu.as_secs_f64()).collect();
    println!(
        "{}",
        json!({ "row": row, "processes": processes, "per": per, "samples": wall, "cpu": cpu })
    );
}
