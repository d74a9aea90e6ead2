//! The promises at the edges, one test per class: an unusable environment,
//! a signal at any moment, exhausted limits, absurd input, a closed pool
//! losing its last worker. Each asserts the exit code, the one-line message
//! (no panic text), the time to exit, that no process is left and that no
//! temporary file or directory is left behind.
//!
//! Every run gets a private `TMPDIR`, so "nothing left behind" is exact.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use procpool::{Pool, PoolError, TaskError};
use procpool_cli::tasks::{Misbehave, Misbehavior, Sleep};

use crate::util::{bin, children, wait_gone, wait_until};

/// What a finished run left: status, output, how long it took to exit after
/// the signal (or to run, without one), and the workers it had.
struct Ended {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
    workers: Vec<u32>,
}

impl Ended {
    /// The error lines are single `procpool:` lines, never a panic.
    fn assert_clean_stderr(&self) {
        for bad in [
            "panicked",
            "stack backtrace",
            "RUST_BACKTRACE",
            "internal error",
        ] {
            assert!(!self.stderr.contains(bad), "panic text: {}", self.stderr);
        }
        for line in self.stderr.lines() {
            assert!(line.starts_with("procpool"), "stray line: {line:?}");
        }
    }

    /// No worker outlived the run.
    fn assert_no_worker_left(&self) {
        assert_eq!(wait_gone(&self.workers, 2.0), Vec::<u32>::new());
    }
}

/// A private temporary directory for one run, checked empty at the end.
struct Tmp(tempfile::TempDir);

impl Tmp {
    fn new() -> Self {
        Tmp(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Nothing may be left in it: no handshake directory, no socket.
    fn assert_empty(&self) {
        let left: Vec<_> = std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "left in TMPDIR: {left:?}");
    }
}

fn command(tmp: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(bin());
    command
        .args(args)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `procpool ARGS`; after `after` (if given) sends it `signal`, and
/// notes how long it then takes to exit. Fails the test on a hang.
fn run_with_signal(tmp: &Path, args: &[&str], signal: Option<(Duration, i32)>) -> Ended {
    let child = command(tmp, args).spawn().unwrap();
    let mut workers = Vec::new();
    let mut start = Instant::now();
    if let Some((after, signal)) = signal {
        let until = Instant::now() + after;
        while Instant::now() < until {
            workers.extend(children(child.id()));
            std::thread::sleep(Duration::from_millis(1));
        }
        start = Instant::now();
        procpool::sys::kill(child.id(), signal).unwrap();
    }
    finish(child, start, workers, Duration::from_secs(20))
}

/// Runs `procpool ARGS`, sends it `signal` once a line of its stderr
/// contains `cue`, and notes how long it then takes to exit. Fails the test
/// if the cue does not come within 20 s, or on a hang.
fn run_with_signal_on(tmp: &Path, args: &[&str], cue: &str, signal: i32) -> Ended {
    use std::io::BufRead;
    let mut child = command(tmp, args).spawn().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines.send(line.clone());
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match seen.recv_timeout(left) {
            Ok(line) if line.contains(cue) => break,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no stderr line said {cue:?}:\n{}", reader.join().unwrap());
            }
        }
    }
    let workers = children(child.id());
    let start = Instant::now();
    procpool::sys::kill(child.id(), signal).unwrap();
    let mut ended = finish(child, start, workers, Duration::from_secs(20));
    ended.stderr = reader.join().unwrap();
    ended
}

fn finish(mut child: Child, start: Instant, mut workers: Vec<u32>, within: Duration) -> Ended {
    let deadline = start + within;
    let read = |stream: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut stream) = stream {
                let _ = stream.read_to_string(&mut text);
            }
            text
        })
    };
    let out = read(child.stdout.take().map(|s| Box::new(s) as _));
    let err = read(child.stderr.take().map(|s| Box::new(s) as _));
    let status = loop {
        workers.extend(children(child.id()));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("procpool did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let took = start.elapsed();
    workers.sort_unstable();
    workers.dedup();
    Ended {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        took,
        workers,
    }
}

#[test]
fn an_unusable_temporary_directory_is_one_line_and_exit_2_at_once() {
    let tmp = Tmp::new();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let long = tmp.path().join("x".repeat(110));
    std::fs::create_dir(&long).unwrap();
    let cases = [
        (tmp.path().join("missing"), "No such file or directory"),
        (file, "Not a directory"),
        (long.clone(), "too long for a socket"),
        // Where ipc-channel itself panics: the cause is still one line.
        (std::path::PathBuf::from("/proc"), "(os error"),
    ];
    for (dir, cause) in cases {
        let start = Instant::now();
        let out = Command::new(bin())
            .args(["-p", "2", "square", "0..6"])
            .env("TMPDIR", &dir)
            .output()
            .unwrap();
        let ended = Ended {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
            took: start.elapsed(),
            workers: Vec::new(),
        };
        assert_eq!(ended.code, Some(2), "{dir:?}: {}", ended.stderr);
        assert!(ended.took < Duration::from_secs(1), "{:?}", ended.took);
        ended.assert_clean_stderr();
        assert_eq!(ended.stderr.lines().count(), 1, "{}", ended.stderr);
        assert!(
            ended.stderr.contains(&dir.display().to_string()) && ended.stderr.contains(cause),
            "{}",
            ended.stderr
        );
        assert!(ended.stdout.is_empty());
    }
    std::fs::remove_file(tmp.path().join("a-file")).unwrap();
    assert_eq!(std::fs::read_dir(&long).unwrap().count(), 0);
    std::fs::remove_dir(&long).unwrap();
    tmp.assert_empty();
}

/// A FUSE file system (bindfs over a fresh directory), which has no
/// `O_TMPFILE`, mounted for one test: unmounted when dropped, also when the
/// test fails.
struct NoTmpfileMount {
    point: tempfile::TempDir,
    _source: tempfile::TempDir,
}

impl NoTmpfileMount {
    /// Mounts one (read-only if asked), or says why it cannot be mounted
    /// here (and fails the test if `PROCPOOL_REQUIRE_MOUNT` is set, as CI
    /// sets it): `None` then.
    fn new(read_only: bool) -> Option<NoTmpfileMount> {
        match NoTmpfileMount::mount(read_only) {
            Ok(mount) => Some(mount),
            Err(why) if std::env::var_os("PROCPOOL_REQUIRE_MOUNT").is_some() => {
                panic!("cannot mount a file system without O_TMPFILE: {why}")
            }
            Err(why) => {
                eprintln!(
                    "SKIPPED: cannot mount a file system without O_TMPFILE here ({why}); \
                     install bindfs and run as root to test"
                );
                None
            }
        }
    }

    /// Mounts a fresh directory on another with bindfs; why not, if not.
    fn mount(read_only: bool) -> Result<NoTmpfileMount, String> {
        let source = tempfile::tempdir().map_err(|e| e.to_string())?;
        let point = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("bindfs")
            .args(read_only.then_some("-r"))
            .arg(source.path())
            .arg(point.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("bindfs: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "bindfs: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(NoTmpfileMount {
            point,
            _source: source,
        })
    }

    /// Where it is mounted.
    fn path(&self) -> &Path {
        self.point.path()
    }
}

impl Drop for NoTmpfileMount {
    /// Unmounts before the directories are removed (which ends bindfs); a
    /// busy mount is detached lazily rather than left.
    fn drop(&mut self) {
        let point = self.point.path();
        let unmounted = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .arg(point)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let _ = unmounted("umount", &[])
            || unmounted("fusermount", &["-u"])
            || unmounted("umount", &["-l"]);
    }
}

/// Runs `procpool -p 2 square 0..6` with `TMPDIR` in `dir`.
fn squares_in(dir: &Path) -> Ended {
    let start = Instant::now();
    let out = Command::new(bin())
        .args(["-p", "2", "square", "0..6"])
        .env("TMPDIR", dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Ended {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
        took: start.elapsed(),
        workers: Vec::new(),
    }
}

#[test]
fn a_temporary_directory_without_o_tmpfile_is_checked_by_permission_and_serves() {
    let Some(mount) = NoTmpfileMount::new(false) else {
        return;
    };
    // What the test is about: the check's unnamed file cannot be made here.
    let unnamed = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .open(mount.path())
        .map(|_| ());
    assert!(
        matches!(
            unnamed.as_ref().map_err(std::io::Error::raw_os_error),
            Err(Some(libc::EOPNOTSUPP | libc::EISDIR))
        ),
        "O_TMPFILE on the mount: {unnamed:?}"
    );
    let ended = squares_in(mount.path());
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
    assert_eq!(ended.stdout, "0\n1\n4\n9\n16\n25\n");
    ended.assert_clean_stderr();
    let left: Vec<_> = std::fs::read_dir(mount.path()).unwrap().collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

#[test]
fn a_read_only_temporary_directory_without_o_tmpfile_is_one_line_and_exit_2() {
    let Some(mount) = NoTmpfileMount::new(true) else {
        return;
    };
    let ended = squares_in(mount.path());
    assert_eq!(ended.code, Some(2), "{}", ended.stderr);
    assert!(ended.took < Duration::from_secs(1), "{:?}", ended.took);
    ended.assert_clean_stderr();
    assert_eq!(ended.stderr.lines().count(), 1, "{}", ended.stderr);
    assert!(
        ended.stderr.contains("cannot make a handshake socket in")
            && ended.stderr.contains(&mount.path().display().to_string())
            && ended.stderr.contains("Read-only file system"),
        "{}",
        ended.stderr
    );
    assert!(ended.stdout.is_empty());
}

#[test]
fn every_stop_signal_at_every_moment_ends_the_run_with_128_plus_n() {
    // Start-up, the first dispatch, worker replacement (one task per worker
    // life), and later: the run must end within the promised 2 s every time.
    let signals = [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
    ];
    let moments = [0, 2, 5, 10, 25, 60, 150];
    for (i, &signal) in signals.iter().cycle().take(2 * moments.len()).enumerate() {
        let tmp = Tmp::new();
        let after = Duration::from_millis(moments[i % moments.len()]);
        let ended = run_with_signal(
            tmp.path(),
            &[
                "-p",
                "3",
                "--maxtasksperchild",
                "1",
                "--json",
                "sleep",
                "5",
                "5",
                "5",
                "5",
                "5",
                "5",
                "5",
                "5",
                "5",
                "5",
                "5",
                "5",
                "30000",
            ],
            Some((after, signal)),
        );
        let code = ended.code.unwrap_or(-1);
        // A signal before the handlers are in place ends the process by
        // the signal itself (no status): that is as quick and still a stop.
        // Once the pool runs, the summary says how far it got.
        if code != -1 {
            assert_eq!(code, 128 + signal, "{after:?} {signal}: {}", ended.stderr);
        }
        if !ended.stdout.is_empty() {
            assert!(ended.stdout.contains("\"summary\""), "{}", ended.stdout);
        }
        assert!(ended.took < Duration::from_secs(2), "{:?}", ended.took);
        ended.assert_clean_stderr();
        ended.assert_no_worker_left();
        tmp.assert_empty();
    }
}

#[test]
fn results_finished_before_a_signal_are_reported() {
    for (signal, name) in [
        (libc::SIGINT, "SIGINT"),
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGTERM, "SIGTERM"),
    ] {
        let tmp = Tmp::new();
        // Signalled once the supervisor counts the short task as done (its
        // progress line): the long one still runs, its output held back.
        let ended = run_with_signal_on(
            tmp.path(),
            &[
                "-p",
                "2",
                "--json",
                "--progress",
                "--progress-interval",
                "0.01",
                "sleep",
                "5000",
                "100",
            ],
            "1/2 tasks",
            signal,
        );
        assert_eq!(ended.code, Some(128 + signal), "{}", ended.stderr);
        assert!(ended.took < Duration::from_secs(2), "{:?}", ended.took);
        let lines: Vec<serde_json::Value> = ended
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{}", ended.stdout);
        assert_eq!(lines[0]["index"], 1);
        assert_eq!(lines[0]["output"], 100);
        let summary = &lines[1]["summary"];
        assert_eq!(summary["ok"], 1, "{summary}");
        assert_eq!(summary["not_run"], 1, "{summary}");
        assert_eq!(summary["exit_code"], 128 + signal);
        assert!(ended.stderr.contains(name), "{}", ended.stderr);
        assert!(
            ended
                .stderr
                .contains("1 of 2 tasks finished; not finished: 0"),
            "{}",
            ended.stderr
        );
        assert_eq!(summary["not_finished"], "0", "{summary}");
        ended.assert_clean_stderr();
        ended.assert_no_worker_left();
        tmp.assert_empty();
    }
}

#[test]
fn a_supervisor_killed_while_workers_start_leaves_no_handshake_directory() {
    for after in [0, 1, 2, 3, 4, 6, 8, 12, 16] {
        let tmp = Tmp::new();
        let ended = run_with_signal(
            tmp.path(),
            &["-p", "8", "sleep", "10000"],
            Some((Duration::from_millis(after), libc::SIGKILL)),
        );
        assert_eq!(ended.code, None);
        ended.assert_no_worker_left();
        // The workers that were still starting find their supervisor gone
        // and remove what it made for them.
        let deadline = Instant::now() + Duration::from_secs(2);
        while std::fs::read_dir(tmp.path()).unwrap().next().is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        tmp.assert_empty();
    }
}

#[test]
fn an_endless_range_streams_and_a_closed_pipe_ends_it_quietly() {
    let tmp = Tmp::new();
    let mut child = command(tmp.path(), &["-p", "2", "square", "0..9223372036854775807"])
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 8];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"0\n1\n4\n9\n");
    assert!(start.elapsed() < Duration::from_secs(5));
    drop(stdout);
    let ended = finish(child, Instant::now(), Vec::new(), Duration::from_secs(5));
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
    assert!(ended.stderr.is_empty(), "{}", ended.stderr);
    tmp.assert_empty();
}

#[test]
fn memory_stays_flat_whatever_the_range() {
    // 2,000,000 inputs: holding them (and their outcomes) cost ~320 MB before.
    let tmp = Tmp::new();
    let mut child = command(tmp.path(), &["-p", "2", "square", "0..2000000"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak_kb = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
            peak_kb = peak_kb.max(kb);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.wait().unwrap().success());
    assert!(peak_kb > 0);
    assert!(peak_kb < 100_000, "the supervisor peaked at {peak_kb} kB");
    tmp.assert_empty();
}

#[test]
fn absurd_numbers_are_errors_naming_the_input_not_panics() {
    let tmp = Tmp::new();
    let max = run_with_signal(tmp.path(), &["square", "9223372036854775807"], None);
    assert_eq!(max.code, Some(1), "{}", max.stderr);
    assert_eq!(max.stdout, "error\n");
    assert!(
        max.stderr.contains("9223372036854775807 squared overflows"),
        "{}",
        max.stderr
    );
    max.assert_clean_stderr();
    for bad in [
        "99999999999999999999",
        "5..5",
        "0..=-1",
        "1..x",
        "-9223372036854775809",
    ] {
        let ended = run_with_signal(tmp.path(), &["square", "--", bad], None);
        assert_eq!(ended.code, Some(2), "{bad}: {}", ended.stderr);
        assert!(ended.stderr.contains(bad), "{}", ended.stderr);
        assert!(!ended.stderr.contains("panicked"), "{}", ended.stderr);
    }
    tmp.assert_empty();
}

/// Runs `procpool ARGS` under a resource limit (`setrlimit` in the child).
fn with_limit(tmp: &Path, args: &[&str], resource: libc::__rlimit_resource_t, value: u64) -> Ended {
    let mut cmd = command(tmp, args);
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            if libc::setrlimit(resource, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    finish(
        cmd.spawn().unwrap(),
        Instant::now(),
        Vec::new(),
        Duration::from_secs(10),
    )
}

#[test]
fn low_resource_limits_are_one_line_before_any_worker_starts() {
    let tmp = Tmp::new();
    let cases = [
        (
            libc::RLIMIT_NOFILE,
            40,
            "open files (ulimit -n), but the limit is 40",
        ),
        // 30 MiB: an allocation inside ipc-channel would abort the process.
        (
            libc::RLIMIT_AS,
            30 << 20,
            "address space (ulimit -v), but the limit is 30",
        ),
    ];
    for (resource, value, says) in cases {
        let ended = with_limit(
            tmp.path(),
            &["-p", "30", "square", "0..60"],
            resource,
            value,
        );
        assert_eq!(ended.code, Some(2), "{}", ended.stderr);
        assert_eq!(ended.stderr.lines().count(), 1, "{}", ended.stderr);
        assert!(ended.stderr.contains(says), "{}", ended.stderr);
        ended.assert_clean_stderr();
        assert!(ended.took < Duration::from_secs(1));
    }
    tmp.assert_empty();
}

#[test]
fn a_stderr_that_cannot_be_written_changes_nothing_but_the_messages() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(bin())
        .args(["-p", "2", "misbehave", "ok", "fail", "panic"])
        .stderr(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

#[test]
fn a_closed_pool_replaces_its_last_worker_until_the_queue_is_empty() {
    let pool = Pool::builder()
        .processes(1)
        .worker_program(bin())
        .build()
        .unwrap();
    let pid = pool.pids()[0];
    let dies = pool.submit(Misbehave, (Misbehavior::Exit(3), 1)).unwrap();
    let after: Vec<_> = (0..3)
        .map(|i| pool.submit(Sleep, 10 + i).unwrap())
        .collect();
    pool.close();
    pool.join().unwrap();
    let died = dies.wait_outcome().unwrap();
    assert!(
        matches!(died.error(), Some(&TaskError::WorkerDied { pid: p, .. }) if p == pid),
        "{died:?}"
    );
    for (i, handle) in after.into_iter().enumerate() {
        let outcome = handle.wait_outcome().unwrap();
        assert_eq!(outcome.result, Ok(10 + i as u64));
        assert_ne!(outcome.pid, pid);
    }
    assert!(matches!(
        pool.submit(Sleep, 1).map(|_| ()),
        Err(PoolError::Closed)
    ));
}

#[test]
fn a_signal_while_workers_will_not_shake_hands_stops_the_build_at_once() {
    // A worker program that never answers: without the flag, five start-up
    // deadlines would pass before the build gave up.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("silent-worker");
    // Each copy notes that it runs, so the flag is raised mid-build.
    let started = dir.path().join("started");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntouch '{}'\nexec sleep 30\n", started.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let flag = procpool::signal::InterruptFlag::new();
    let setter = flag.clone();
    let raised = std::thread::spawn(move || {
        let running = wait_until(10.0, || started.exists());
        setter.raise(libc::SIGHUP);
        assert!(running, "no worker program started within 10 s");
        Instant::now()
    });
    let built = Pool::builder()
        .processes(2)
        .worker_program(&script)
        .max_tasks_per_child(1)
        .interrupt_flag(flag)
        .build();
    let raised = raised.join().unwrap();
    assert!(
        matches!(
            built,
            Err(PoolError::Interrupted {
                signal: libc::SIGHUP
            })
        ),
        "{:?}",
        built.map(|_| ())
    );
    assert!(
        raised.elapsed() < Duration::from_secs(1),
        "{:?} after the flag",
        raised.elapsed()
    );
}

#[test]
fn a_segfaulting_task_is_reported_as_sigsegv() {
    let tmp = Tmp::new();
    let ended = run_with_signal(tmp.path(), &["-p", "2", "misbehave", "ok", "segv"], None);
    assert_eq!(ended.code, Some(1));
    assert!(
        ended.stderr.contains("killed by signal 11 (SIGSEGV)"),
        "{}",
        ended.stderr
    );
    ended.assert_clean_stderr();
    tmp.assert_empty();
}

#[test]
fn a_supervisor_killed_with_sigkill_loses_no_printed_result() {
    // Output to a file, as a batch job's: each estimate must be on disk as
    // soon as it is computed, not in a buffer that SIGKILL throws away.
    let tmp = Tmp::new();
    let out = tmp.path().join("out.jsonl");
    let mut child = command(
        tmp.path(),
        &[
            "-p", "2", "--json", "pi", "--seeds", "0..64", "--trials", "6000000",
        ],
    )
    .stdout(std::fs::File::create(&out).unwrap())
    .spawn()
    .unwrap();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    let complete = |text: &str| text.lines().filter(|l| l.ends_with('}')).count();
    let mut first = None;
    while complete(&std::fs::read_to_string(&out).unwrap()) < 3 {
        if first.is_none() && complete(&std::fs::read_to_string(&out).unwrap()) > 0 {
            first = Some(started.elapsed());
        }
        assert!(Instant::now() < deadline, "no estimate reached the file");
        std::thread::sleep(Duration::from_millis(2));
    }
    let first = first.unwrap_or_else(|| started.elapsed());
    let workers = children(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(wait_gone(&workers, 2.0), Vec::<u32>::new());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.ends_with('\n'), "a half line: {text:?}");
    let results: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(results.len() >= 3, "{text}");
    // The first estimate was on disk about when it was computed, not when
    // a chunk of them was.
    let one_seed = Duration::from_secs_f64(results[0]["elapsed_ms"].as_f64().unwrap() / 1e3);
    assert!(
        first < one_seed * 2 + Duration::from_secs(1),
        "first estimate after {first:?}, one takes {one_seed:?}"
    );
    std::fs::remove_file(&out).unwrap();
    tmp.assert_empty();
}
