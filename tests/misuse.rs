//! Programs that misuse the library (tests/programs/hostile.rs), run as a
//! user runs them: each ends with a clear result and leaves no process.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{HOSTILE, assert_none_left, run, text};

/// A worker that reaches pool construction stops at once with one line,
/// and the supervisor's error says what the program did instead.
fn check_no_fork_bomb(mode: &str) {
    let output = run(mode);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{mode}: {stderr}");
    assert!(output.stdout.is_empty(), "{mode}: {}", text(&output.stdout));
    let supervisor: Vec<_> = stderr
        .lines()
        .filter(|l| l.starts_with("hostile: "))
        .collect();
    assert_eq!(supervisor.len(), 1, "{stderr}");
    assert!(
        supervisor[0].contains(&format!("({HOSTILE}) did not start"))
            && supervisor[0].ends_with(
                "it built a pool of its own instead of serving: its main never called procpool::init()"
            ),
        "{stderr}"
    );
    // Every other line is a worker's, one each: the few the top pool started
    // before it gave up (it retries a failed start), none of them any more.
    let workers: Vec<_> = stderr
        .lines()
        .filter(|l| !l.starts_with("hostile: "))
        .collect();
    assert!(!workers.is_empty() && workers.len() <= 16, "{stderr}");
    for line in workers {
        assert!(line.starts_with("procpool worker "), "{stderr}");
        assert!(
            line.ends_with(
                "this program was started as a worker but built a pool without calling \
                 procpool::init() first (make it the first line of main)"
            ),
            "{stderr}"
        );
    }
}

#[test]
fn a_program_that_forgets_init_fails_at_once_with_no_fork_bomb() {
    check_no_fork_bomb("forget-init");
}

#[test]
fn a_program_that_calls_init_after_building_a_pool_fails_the_same_way() {
    check_no_fork_bomb("late-init");
}

#[test]
fn a_banner_on_stdout_before_init_breaks_nothing() {
    let output = run("banner");
    assert!(output.status.success(), "{}", text(&output.stderr));
    // The workers' banners go to stderr, never into the handshake.
    assert_eq!(
        text(&output.stdout),
        "hostile 1.0, starting\n[0, 1, 4, 9]\n"
    );
}

/// The worker program's `nested` task, which builds a pool of its own.
#[procpool::task(name = "nested")]
fn nested(n: i64) -> i64 {
    (0..n).map(|x| x * x).sum()
}

#[test]
fn a_task_may_build_a_pool_of_its_own_on_purpose() {
    let pool = procpool::Pool::builder()
        .processes(1)
        .worker_program(HOSTILE)
        .build()
        .unwrap();
    let worker = pool.pids()[0];
    let outcome = pool.submit(nested, 5).unwrap().wait_outcome().unwrap();
    assert_eq!(outcome.pid, worker);
    assert_eq!(outcome.result, Ok(nested.call(5)));
    assert!(Path::new(HOSTILE).exists());
}

#[test]
fn a_program_with_its_own_sigint_handler_stops_its_map_and_keeps_what_finished() {
    let dir = std::env::temp_dir().join(format!("procpool-own-sigint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = format!("{}-own-sigint", std::process::id());
    let child = Command::new(HOSTILE)
        .env("HOSTILE", "own-sigint")
        .env("HOSTILE_RUN", &token)
        .env("HOSTILE_DIR", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = dir.join("started");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the long task never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    procpool::sys::kill(child.id(), libc::SIGINT).unwrap();
    let output = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(text(&output.stdout), "finished [1, 1, 1]\n");
    assert_eq!(
        text(&output.stderr),
        "hostile: interrupted by signal 2 (SIGINT)\n"
    );
    assert_eq!(output.status.code(), Some(1));
    assert_none_left(&token, "own-sigint");
}
