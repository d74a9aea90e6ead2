//! Crashed, stuck and misbehaving workers: every case ends within a deadline
//! with the right outcome, and the pool goes on.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use procpool::{ExitCause, Pool, PoolError, TaskError};
use procpool_cli::tasks::{Misbehave, Misbehavior, Sleep, Square};

use crate::util::{bin, pool, run, show, wait_gone};

/// The example program that breaks the protocol at a chosen stage.
fn rogue() -> PathBuf {
    bin()
        .parent()
        .unwrap()
        .join("examples")
        .join("rogue_worker")
}

/// A worker program: a script that sets the environment and execs `program`.
fn wrapper(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn rogue_pool(dir: &Path, behaviour: &str) -> Result<Pool, PoolError> {
    let script = wrapper(
        dir,
        &behaviour.replace(':', "-"),
        &format!("ROGUE={behaviour} exec {} \"$@\"", rogue().display()),
    );
    Pool::builder()
        .processes(1)
        .worker_program(script)
        .startup_timeout(Duration::from_secs(5))
        .build()
}

#[test]
fn death_at_every_stage_ends_with_the_right_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let causes = [
        ("exit0", ExitCause::Status(0)),
        ("exit1", ExitCause::Status(1)),
        ("abort", ExitCause::Signal(libc::SIGABRT)),
        ("segv", ExitCause::Signal(libc::SIGSEGV)),
        ("kill", ExitCause::Signal(libc::SIGKILL)),
    ];
    for stage in ["receive", "run", "send"] {
        for (how, cause) in causes {
            let start = Instant::now();
            let pool = rogue_pool(dir.path(), &format!("{stage}:{how}")).unwrap();
            let pid = pool.pids()[0];
            let outcome = pool.submit(Square, 7).unwrap().wait_outcome().unwrap();
            assert_eq!(
                outcome.error(),
                Some(&TaskError::WorkerDied { pid, cause }),
                "{stage}:{how}"
            );
            assert_eq!(pool.pids().len(), 1, "{stage}:{how}: replaced");
            assert!(!pool.pids().contains(&pid), "{stage}:{how}: replaced");
            drop(pool);
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{stage}:{how} took {:?}",
                start.elapsed()
            );
            assert!(wait_gone(&[pid], 2.0).is_empty());
        }
    }
}

#[test]
fn a_worker_that_refuses_or_sends_garbage_costs_one_task_a_protocol_error() {
    let dir = tempfile::tempdir().unwrap();
    for (behaviour, expect) in [
        ("run:error", "refuses on purpose"),
        ("garbage:-", "malformed reply"),
        ("wrong-chunk:-", "was not running"),
        // Shared memory it names but never sent, or past the end of its own.
        (
            "region:none",
            "bad region reference: a frame in a region before any region",
        ),
        (
            "region:past-end",
            "bad region reference: 4097 bytes do not fit its region of 4096",
        ),
    ] {
        let pool = rogue_pool(dir.path(), behaviour).unwrap();
        let pid = pool.pids()[0];
        let outcome = pool.submit(Square, 3).unwrap().wait_outcome().unwrap();
        match outcome.error() {
            Some(TaskError::Protocol { pid: p, message }) => {
                assert_eq!(*p, pid);
                assert!(message.contains(expect), "{behaviour}: {message}");
            }
            other => panic!("{behaviour}: expected a protocol error, got {other:?}"),
        }
        drop(pool);
        assert!(wait_gone(&[pid], 2.0).is_empty());
    }
}

#[test]
fn a_worker_that_dies_before_the_handshake_fails_the_build_clearly() {
    let dir = tempfile::tempdir().unwrap();
    for (how, says) in [
        ("exit1", "exited with status 1"),
        ("segv", "signal 11 (SIGSEGV)"),
    ] {
        let start = Instant::now();
        let err = rogue_pool(dir.path(), &format!("handshake:{how}")).expect_err("build fails");
        assert!(matches!(err, PoolError::Handshake { .. }), "{err}");
        assert!(err.to_string().contains(says), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }
    // A program that never connects is stopped at the start-up deadline.
    let silent = wrapper(dir.path(), "silent", "exec sleep 30");
    let err = Pool::builder()
        .processes(1)
        .worker_program(&silent)
        .startup_timeout(Duration::from_millis(300))
        .build()
        .expect_err("build fails");
    assert!(
        err.to_string()
            .contains("no handshake before the start-up deadline"),
        "{err}"
    );
}

/// A pool of one worker whose replacements all fail to start once the
/// marker exists (it does once the pool is built).
fn pool_that_cannot_replace(dir: &Path) -> Pool {
    let marker = dir.join("broken");
    let _ = std::fs::remove_file(&marker);
    let script = wrapper(
        dir,
        "flaky",
        &format!(
            "[ -e {} ] && exit 3\nexec {} \"$@\"",
            marker.display(),
            bin().display()
        ),
    );
    let pool = Pool::builder()
        .processes(1)
        .chunksize(1)
        .worker_program(script)
        .build()
        .unwrap();
    std::fs::write(&marker, "").unwrap();
    pool
}

#[test]
fn replacements_that_keep_dying_fail_the_pool_with_one_error() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_that_cannot_replace(dir.path());
    let victim = pool.pids()[0];
    procpool::sys::kill(victim, libc::SIGKILL).unwrap();
    let start = Instant::now();
    let err = pool
        .map_outcomes(Sleep, [1, 2, 3])
        .expect_err("the pool gives up")
        .error;
    assert!(start.elapsed() < Duration::from_secs(10));
    match &err {
        PoolError::WorkersKeepDying { attempts, last } => {
            assert_eq!(*attempts, 5);
            assert!(last.to_string().contains("exited with status 3"), "{err}");
        }
        other => panic!("expected WorkersKeepDying, got {other}"),
    }
}

#[test]
fn a_map_ended_by_workers_that_keep_dying_keeps_what_finished() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = [
        (Misbehavior::Behave, 0),
        (Misbehavior::Behave, 1),
        (Misbehavior::Exit(3), 2),
        (Misbehavior::Behave, 3),
    ];
    let stopped = pool_that_cannot_replace(dir.path())
        .map_outcomes(Misbehave, inputs)
        .expect_err("the pool gives up");
    assert!(
        matches!(stopped.error, PoolError::WorkersKeepDying { .. }),
        "{}",
        stopped.error
    );
    let finished: Vec<_> = stopped
        .finished
        .iter()
        .map(|o| (o.index, o.result.clone()))
        .collect();
    assert_eq!(finished[..2], [(0, Ok(0)), (1, Ok(1))], "{finished:?}");
    assert!(finished.iter().all(|(index, _)| *index < 3), "{finished:?}");

    let stopped = pool_that_cannot_replace(dir.path())
        .map(Misbehave, inputs)
        .expect_err("the pool gives up");
    assert_eq!(stopped.finished, [0, 1]);

    let pool = pool_that_cannot_replace(dir.path());
    let yielded: Vec<_> = pool.imap(Misbehave, inputs).collect();
    assert!(matches!(yielded[..2], [Ok(0), Ok(1)]), "{yielded:?}");
    assert!(
        matches!(
            yielded.last(),
            Some(Err(PoolError::WorkersKeepDying { .. }))
        ),
        "{yielded:?}"
    );
}

#[test]
fn crashed_tasks_are_retried_and_say_how_many_attempts_they_took() {
    let pool = Pool::builder()
        .processes(2)
        .worker_program(bin())
        .retries(2)
        .build()
        .unwrap();
    let outcomes = pool
        .map_outcomes(
            Misbehave,
            [
                (Misbehavior::Behave, 0),
                (Misbehavior::Segfault, 1),
                (Misbehavior::Behave, 2),
            ],
        )
        .unwrap();
    assert_eq!(outcomes[0].result, Ok(0));
    assert_eq!(outcomes[2].result, Ok(2));
    assert_eq!(outcomes[1].attempts, 3, "1 try + 2 retries");
    assert!(matches!(
        outcomes[1].error(),
        Some(TaskError::WorkerDied {
            cause: ExitCause::Signal(11),
            ..
        })
    ));
}

#[test]
fn a_chunk_whose_worker_dies_is_retried_one_input_at_a_time() {
    let pool = Pool::builder()
        .processes(1)
        .worker_program(bin())
        .chunksize(8)
        .build()
        .unwrap();
    let inputs: Vec<_> = (0..8)
        .map(|i| {
            if i == 5 {
                (Misbehavior::Abort, i)
            } else {
                (Misbehavior::Behave, i)
            }
        })
        .collect();
    let outcomes = pool.map_outcomes(Misbehave, inputs).unwrap();
    for (i, o) in outcomes.iter().enumerate() {
        if i == 5 {
            assert!(matches!(
                o.error(),
                Some(TaskError::WorkerDied {
                    cause: ExitCause::Signal(6),
                    ..
                })
            ));
        } else {
            assert_eq!(
                o.result,
                Ok(i as u64),
                "input {i} is not lost with its chunk"
            );
        }
    }
}

#[test]
fn a_stuck_task_times_out_its_worker_is_replaced_and_the_rest_complete() {
    let pool = Pool::builder()
        .processes(2)
        .worker_program(bin())
        .timeout(Duration::from_millis(300))
        .grace(Duration::from_millis(100))
        .build()
        .unwrap();
    let before = pool.pids();
    let start = Instant::now();
    let outcomes = pool.map_outcomes(Sleep, [10, 60_000, 10, 10]).unwrap();
    assert!(start.elapsed() < Duration::from_secs(20));
    match outcomes[1].error() {
        Some(TaskError::TimedOut { pid, after }) => {
            assert!(before.contains(pid));
            assert_eq!(*after, Duration::from_millis(300));
            assert!(
                wait_gone(&[*pid], 2.0).is_empty(),
                "the stuck worker is gone"
            );
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    for i in [0, 2, 3] {
        assert_eq!(outcomes[i].result, Ok(10));
    }
    assert_eq!(pool.pids().len(), 2);
}

#[test]
fn a_timed_out_task_is_retried_by_the_same_policy() {
    let pool = Pool::builder()
        .processes(1)
        .worker_program(bin())
        .timeout(Duration::from_millis(200))
        .grace(Duration::from_millis(50))
        .retries(1)
        .build()
        .unwrap();
    let outcome = pool.submit(Sleep, 60_000).unwrap().wait_outcome().unwrap();
    assert_eq!(outcome.attempts, 2);
    assert!(matches!(outcome.error(), Some(TaskError::TimedOut { .. })));
}

#[test]
fn workers_are_recycled_after_maxtasksperchild() {
    let pool = Pool::builder()
        .processes(2)
        .worker_program(bin())
        .max_tasks_per_child(3)
        .chunksize(1)
        .build()
        .unwrap();
    let outcomes = pool.map_outcomes(Square, 0..30).unwrap();
    let mut per_pid: BTreeMap<u32, usize> = BTreeMap::new();
    for o in &outcomes {
        assert_eq!(o.result, Ok((o.index * o.index) as i64));
        *per_pid.entry(o.pid).or_default() += 1;
    }
    assert!(per_pid.values().all(|&n| n <= 3), "{per_pid:?}");
    assert!(per_pid.len() >= 10, "{per_pid:?}");
    assert_eq!(pool.pids().len(), 2);
}

/// The limit counts inputs, whatever the chunksize: the automatic one
/// (here 200 / (4 * 2) = 25 per chunk) is cut to what a worker has left.
#[test]
fn maxtasksperchild_is_exact_with_the_automatic_chunksize() {
    let pool = Pool::builder()
        .processes(2)
        .worker_program(bin())
        .max_tasks_per_child(2)
        .build()
        .unwrap();
    let outcomes = pool.map_outcomes(Square, 0..200).unwrap();
    let mut per_pid: BTreeMap<u32, usize> = BTreeMap::new();
    for o in &outcomes {
        assert_eq!(o.result, Ok((o.index * o.index) as i64));
        *per_pid.entry(o.pid).or_default() += 1;
    }
    assert_eq!(outcomes.len(), 200);
    assert!(per_pid.values().all(|&n| n <= 2), "{per_pid:?}");
    assert!(per_pid.len() >= 100, "{per_pid:?}");
}

#[test]
fn cli_reports_deaths_timeouts_and_retries_one_line_each() {
    let out = run(&[
        "-p",
        "2",
        "--retries",
        "1",
        "misbehave",
        "ok",
        "segv",
        "exit=0",
        "fail",
        "ok",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("task 1 (Segfault) after 2 attempts: worker")
            && stderr.contains("(SIGSEGV)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("task 2 (Exit(0)) after 2 attempts: worker")
            && stderr.contains("exited with status 0"),
        "{stderr}"
    );
    assert!(
        stderr.contains("task 3 (Fail): failed: input 3 failed on purpose"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("task 0 ok") && stdout.contains("task 4 ok"),
        "{stdout}"
    );

    let out = run(&["-p", "1", "--timeout", "0.3", "sleep", "20", "30000", "20"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("task 1 (sleep 30000 ms): worker"),
        "{}",
        show(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("timed out after 0.300s"),
        "{}",
        show(&out)
    );
}

#[test]
fn many_workers_start_and_all_take_part() {
    let pool = pool(8);
    assert_eq!(pool.pids().len(), 8);
    let outcomes = pool
        .imap(Sleep, vec![20u64; 32])
        .outcomes()
        .map(Result::unwrap)
        .collect::<Vec<_>>();
    let pids: std::collections::BTreeSet<u32> = outcomes.iter().map(|o| o.pid).collect();
    assert_eq!(pids.len(), 8);
}

#[test]
fn a_worker_sent_hostile_bytes_exits_with_a_clear_message() {
    use std::io::BufRead;

    use ipc_channel::ipc::{self, IpcSender, IpcSharedMemory};
    use procpool::protocol::{Carrier, Hello, Message, Ready, WORKER_ENV};

    // A 9-byte message that claims a 1 TiB string, then a truncated request,
    // then frames in shared memory that is not there.
    let mut huge = vec![0x00, 0xfd];
    huge.extend_from_slice(&(1u64 << 40).to_le_bytes());
    let hostile = move |case: usize| {
        let bytes = match case {
            0 => return Message::inline(huge.clone()),
            1 => return Message::inline(vec![0x00]),
            2 => return Message::inline(vec![0xff; 3]),
            3 => Carrier::Region { at: 0, len: 64 },
            _ => Carrier::NewRegion {
                region: IpcSharedMemory::from_byte(0, 4096),
                at: 7,
                len: 1 << 40,
            },
        };
        Message { bytes, freed: 0 }
    };
    for case in 0..5 {
        // The supervisor's side of the handshake, by hand.
        let mut child = std::process::Command::new(bin())
            .env(WORKER_ENV, format!("{}:1", std::process::id()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut name = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut name)
            .unwrap();
        let (requests, requests_rx) = ipc::channel::<Message>().unwrap();
        let (replies_tx, replies) = ipc::channel::<Message>().unwrap();
        IpcSender::<Hello>::connect(name.trim_end().to_string())
            .unwrap()
            .send(Hello {
                requests: requests_rx,
                replies: replies_tx,
                initializer: None,
            })
            .unwrap();
        let Carrier::Inline(frame) = replies.recv().unwrap().bytes else {
            panic!("Ready comes inline");
        };
        let (ready, _) = procpool::protocol::unframe::<Ready>(&frame).unwrap();
        let pid = ready.pid;
        assert_eq!(pid, child.id());
        requests.send(hostile(case)).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(2), "case {case}: {}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "procpool worker {pid}: malformed request from the supervisor"
            )),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
}

#[test]
fn workers_killed_and_replacements_broken_and_healed_at_random_every_call_returns() {
    use rand::{RngExt, SeedableRng};
    // Workers SIGKILLed mid-map while their replacements fail to start,
    // then start again: every call returns (a turn that handled a death
    // once dropped the survivors' replies in the same batch, a hang).
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("broken");
    let script = wrapper(
        dir.path(),
        "flaky",
        &format!(
            "[ -e {} ] && exit 3\nexec {} \"$@\"",
            marker.display(),
            bin().display()
        ),
    );
    let pool = Pool::builder()
        .processes(4)
        .worker_program(script)
        .build()
        .unwrap();
    let (done, watch) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        use std::sync::mpsc::RecvTimeoutError;
        loop {
            match watch.recv_timeout(Duration::from_secs(30)) {
                Ok(()) => {}
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    eprintln!("a call of the kill-and-heal test did not return in 30 s");
                    std::process::exit(101);
                }
            }
        }
    });
    let mut rng = rand_pcg::Pcg64::seed_from_u64(22);
    let mut seen = std::collections::BTreeSet::new();
    let (mut gave_up, mut died, mut ok) = (0, 0, 0);
    for round in 0..300 {
        if rng.random_range(0..2) == 0 {
            std::fs::write(&marker, "").unwrap();
        } else {
            let _ = std::fs::remove_file(&marker);
        }
        let pids = pool.pids();
        seen.extend(pids.iter().copied());
        // Every worker killed before the map (their deaths all come in one
        // turn), or one of those alive now while it runs (only this test
        // kills them, so the PID is still that worker's), or none.
        let action = rng.random_range(0..4);
        if action == 0 {
            for &pid in &pids {
                let _ = procpool::sys::kill(pid, libc::SIGKILL);
            }
            assert!(wait_gone(&pids, 5.0).is_empty());
        }
        let killer = (!pids.is_empty() && action >= 2).then(|| {
            let victim = pids[rng.random_range(0..pids.len())];
            let after = Duration::from_micros(rng.random_range(0..2000));
            std::thread::spawn(move || {
                std::thread::sleep(after);
                let _ = procpool::sys::kill(victim, libc::SIGKILL);
            })
        });
        let inputs: Vec<u64> = (0..rng.random_range(1..2000))
            .map(|_| u64::from(rng.random_range(0..64) == 0))
            .collect();
        match pool
            .map_outcomes(Sleep, inputs.clone())
            .map_err(|e| e.error)
        {
            Ok(outcomes) => {
                assert_eq!(outcomes.len(), inputs.len(), "round {round}");
                for (outcome, input) in outcomes.iter().zip(&inputs) {
                    match (&outcome.result, outcome.error()) {
                        (Ok(value), _) => assert_eq!(value, input, "round {round}"),
                        (_, Some(TaskError::WorkerDied { .. })) => died += 1,
                        (_, e) => panic!("round {round}: {e:?}"),
                    }
                }
                ok += 1;
            }
            Err(PoolError::WorkersKeepDying { .. }) => gave_up += 1,
            Err(e) => panic!("round {round}: {e}"),
        }
        if let Some(killer) = killer {
            killer.join().unwrap();
        }
        done.send(()).unwrap();
    }
    let _ = std::fs::remove_file(&marker);
    assert_eq!(pool.map(Sleep, [0, 1, 2]).expect("healed"), [0, 1, 2]);
    seen.extend(pool.pids());
    drop(done);
    watchdog.join().unwrap();
    drop(pool);
    let seen: Vec<u32> = seen.into_iter().collect();
    assert!(wait_gone(&seen, 2.0).is_empty(), "workers left behind");
    assert!(
        ok > 0 && gave_up > 0,
        "{ok} calls returned, {gave_up} gave up"
    );
    eprintln!("{ok} maps, {gave_up} gave up, {died} tasks lost to a death");
}
