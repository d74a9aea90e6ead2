//! What the programs of tests/programs/ are run with: each run marks its
//! processes, and no process of a run may be left after it.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const HOSTILE: &str = env!("CARGO_BIN_EXE_procpool-hostile");

/// The processes whose environment holds `token` (a run's own mark, which
/// its workers inherit).
pub fn marked(token: &str) -> Vec<u32> {
    let needle = format!("HOSTILE_RUN={token}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
        })
        // A zombie has exited: only its parent can reap it.
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                !stat
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
        })
        .collect()
}

/// Runs the hostile program in `mode` and waits for it (a hang fails the
/// test after 60 s); then no process of that run may be left.
pub fn run(mode: &str) -> Output {
    let token = format!("{}-{mode}", std::process::id());
    let mut child = Command::new(HOSTILE)
        .env("HOSTILE", mode)
        .env("HOSTILE_RUN", &token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{mode}: still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().unwrap();
    assert_none_left(&token, mode);
    output
}

/// No process of the run marked `token` is left.
pub fn assert_none_left(token: &str, mode: &str) {
    // Workers die with their supervisor: give the kernel a moment to reap them.
    let until = Instant::now() + Duration::from_secs(5);
    while !marked(token).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(marked(token), Vec::<u32>::new(), "{mode}: processes left");
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
