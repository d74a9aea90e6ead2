//! Helpers shared by the integration tests.

use std::path::PathBuf;
use std::process::Output;

use assert_cmd::Command;
use procpool::Pool;

/// The top of the workspace: README.md, docs/, data/.
pub fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .canonicalize()
        .expect("the workspace root exists")
}

/// The real `procpool` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_procpool"))
}

/// A command for the real binary.
pub fn procpool() -> Command {
    Command::new(bin())
}

/// A pool whose workers are the real binary (under `cargo test` the current
/// program is the test harness, which knows no tasks).
pub fn pool(processes: usize) -> Pool {
    Pool::builder()
        .processes(processes)
        .worker_program(bin())
        .build()
        .expect("pool starts")
}

/// Everything worth seeing when a command did not do what a test expected.
pub fn show(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs the binary with `args` and returns its output, whatever the status.
pub fn run(args: &[&str]) -> Output {
    procpool()
        .args(args)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .expect("procpool runs")
}

/// Whether a process with this id still exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// Waits up to `secs` for every pid to be gone; returns those still alive.
pub fn wait_gone(pids: &[u32], secs: f64) -> Vec<u32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() || std::time::Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Whether some thread of process `pid` is blocked in a sleep system call.
/// For a worker, that means it is running a task that sleeps (`Sleep`,
/// `procpool sleep`): a worker waiting for work waits on its socket instead.
pub fn sleeping_in_a_task(pid: u32) -> bool {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    threads.flatten().any(|thread| {
        // The first field is the number of the system call the thread is
        // blocked in ("running" when it is in none).
        std::fs::read_to_string(thread.path().join("syscall"))
            .ok()
            .and_then(|call| call.split_whitespace().next()?.parse::<libc::c_long>().ok())
            .is_some_and(|n| n == libc::SYS_clock_nanosleep || n == libc::SYS_nanosleep)
    })
}

/// Waits up to `secs` for `ready`; whether it came. Callers fail loudly
/// (after stopping what they started) when it did not.
pub fn wait_until(secs: f64, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    while !ready() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    true
}

/// The pids of the direct children of `pid`, whichever of its threads
/// started them (procpool starts workers on a spawner thread).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut kids: Vec<u32> = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    kids.sort_unstable();
    kids
}

/// A scratch directory holding a job file `jobs.txt`, for the jobs tests.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new(job_file: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("jobs.txt"), job_file).unwrap();
        Scratch { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `procpool ARGS` in the directory.
    pub fn run(&self, args: &[&str]) -> Output {
        procpool()
            .current_dir(self.dir.path())
            .args(args)
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .expect("procpool runs")
    }

    /// The default status file's rows by Job_ID (the last row wins).
    pub fn rows(&self) -> std::collections::BTreeMap<u64, procpool_cli::jobs::StatusRow> {
        self.rows_of("jobs_status.tsv")
    }

    pub fn rows_of(
        &self,
        name: &str,
    ) -> std::collections::BTreeMap<u64, procpool_cli::jobs::StatusRow> {
        let status =
            procpool_cli::jobs::StatusFile::read(self.path(name)).expect("a readable status file");
        status.rows.into_iter().map(|r| (r.job_id, r)).collect()
    }

    /// A file's text, or nothing if it does not exist.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// The pid a job wrote into file `name`.
    pub fn pid(&self, name: &str) -> u32 {
        self.read(name)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} holds a pid"))
    }

    /// The names in the directory, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// Waits for `child` to exit; kills it and fails the test after `within`.
pub fn wait_with_deadline(
    child: &mut std::process::Child,
    within: std::time::Duration,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            panic!("procpool did not exit within {within:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
