//! The live progress line as a person sees it: the real binary on a
//! pseudo-terminal (its own session, the terminal its controlling one, so
//! Ctrl-C is the terminal's), and the screen read back through a terminal
//! emulator (vt100).

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::pty::{Winsize, openpty};

use super::util;

const ROWS: u16 = 40;
const COLS: u16 = 120;
/// The longest any run here may take.
const DEADLINE: Duration = Duration::from_secs(60);

/// Where a stream of the command goes.
#[derive(Clone, Copy, PartialEq)]
enum To {
    Terminal,
    Pipe,
}

/// The command running on a pseudo-terminal, with what it wrote there and
/// to the pipes.
struct Run {
    child: Child,
    master: std::fs::File,
    screen: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Run {
    fn start(args: &[&str], stdout: To, stderr: To, env: &[(&str, &str)]) -> Run {
        let size = Winsize {
            ws_row: ROWS,
            ws_col: COLS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(&size, None).expect("a pseudo-terminal");
        let on = |to: To| -> Stdio {
            match to {
                To::Terminal => Stdio::from(pty.slave.try_clone().expect("dup the terminal")),
                To::Pipe => Stdio::piped(),
            }
        };
        let mut command = Command::new(util::bin());
        command
            .args(args)
            .stdin(Stdio::from(
                pty.slave.try_clone().expect("dup the terminal"),
            ))
            .stdout(on(stdout))
            .stderr(on(stderr))
            .env_remove("NO_COLOR")
            .env("TERM", "xterm-256color");
        for (key, value) in env {
            command.env(key, value);
        }
        // SAFETY: between fork and exec the child calls only setsid and
        // ioctl, both async-signal-safe, and allocates nothing.
        unsafe {
            command.pre_exec(|| {
                // Its own session, with the terminal (its stdin) as the
                // controlling one: Ctrl-C there signals its process group.
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("procpool starts");
        drop::<OwnedFd>(pty.slave);
        let master = std::fs::File::from(pty.master);
        let screen = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let mut master = master.try_clone().expect("dup the master");
            let screen = Arc::clone(&screen);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                // Ends with EIO once every process holding the terminal exited.
                while let Ok(n @ 1..) = master.read(&mut buf) {
                    screen.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            })
        };
        Run {
            child,
            master,
            screen,
            reader: Some(reader),
        }
    }

    /// Everything written to the terminal so far.
    fn bytes(&self) -> Vec<u8> {
        self.screen.lock().unwrap().clone()
    }

    /// Waits until the terminal shows `text` (written at some point).
    fn wait_for(&mut self, text: &str) {
        let start = Instant::now();
        while !String::from_utf8_lossy(&self.bytes()).contains(text) {
            if start.elapsed() > DEADLINE || self.child.try_wait().unwrap().is_some() {
                let _ = self.child.kill();
                panic!(
                    "the terminal never showed {text:?}:\n{}",
                    String::from_utf8_lossy(&self.bytes())
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Types on the terminal's keyboard.
    fn type_keys(&mut self, keys: &[u8]) {
        self.master
            .write_all(keys)
            .expect("the terminal takes keys");
    }

    /// Waits for the end: its status, its piped stdout and stderr, and the
    /// terminal's last screen.
    fn finish(mut self) -> Finished {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > DEADLINE {
                let _ = self.child.kill();
                panic!("procpool did not finish within {DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let read = |pipe: Option<&mut dyn Read>| {
            let mut text = String::new();
            if let Some(pipe) = pipe {
                pipe.read_to_string(&mut text).expect("a pipe reads");
            }
            text
        };
        let stdout = read(self.child.stdout.as_mut().map(|p| p as &mut dyn Read));
        let stderr = read(self.child.stderr.as_mut().map(|p| p as &mut dyn Read));
        // Its workers have the terminal too; they exit with it.
        let reader = self.reader.take().unwrap();
        let start = Instant::now();
        while !reader.is_finished() {
            assert!(start.elapsed() < DEADLINE, "the terminal stayed open");
            std::thread::sleep(Duration::from_millis(10));
        }
        reader.join().unwrap();
        let bytes = self.bytes();
        let size = |n| std::num::NonZeroU16::new(n).expect("a screen has a size");
        let mut parser = vt100::Parser::new(size(ROWS), size(COLS), 0);
        parser.process(&bytes);
        Finished {
            status,
            stdout,
            stderr,
            written: String::from_utf8_lossy(&bytes).into_owned(),
            screen: parser.screen().contents(),
        }
    }
}

struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    /// Every byte written to the terminal, escapes and all.
    written: String,
    /// The terminal's last screen, as text.
    screen: String,
}

impl std::fmt::Debug for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout\n{}--- stderr\n{}--- screen\n{}",
            self.status, self.stdout, self.stderr, self.screen
        )
    }
}

/// What only progress writes: the live line's bar, and the busy workers.
fn has_line(text: &str) -> bool {
    has_drawn_line(text) || text.contains(" busy")
}

/// What only the drawn line has: its bar.
fn has_drawn_line(text: &str) -> bool {
    text.contains('█') || text.contains('░')
}

fn sleeps(count: usize, ms: &str) -> Vec<&str> {
    let mut args = vec!["sleep", "-p", "2"];
    args.extend(std::iter::repeat_n(ms, count));
    args
}

#[test]
fn the_live_line_is_drawn_on_stderr_and_never_on_stdout() {
    let mut run = Run::start(&sleeps(8, "150"), To::Pipe, To::Terminal, &[]);
    run.wait_for("/8 tasks");
    let end = run.finish();
    assert!(end.status.success(), "{end:?}");
    assert!(has_line(&end.written), "{end:?}");
    // stdout, a pipe here, holds the results and nothing else.
    let lines: Vec<&str> = end.stdout.lines().collect();
    assert_eq!(lines.len(), 8, "{end:?}");
    for (i, line) in lines.iter().enumerate() {
        assert!(
            line.starts_with(&format!("task {i} slept 150 ms on PID ")),
            "{end:?}"
        );
    }
    assert!(
        !has_line(&end.stdout) && !end.stdout.contains('\x1b'),
        "{end:?}"
    );
    // Taken away at the end: a blank screen.
    assert_eq!(end.screen.trim(), "", "{end:?}");
}

#[test]
fn no_line_is_drawn_when_stderr_is_not_a_terminal_unless_asked() {
    let end = Run::start(&sleeps(4, "50"), To::Terminal, To::Pipe, &[]).finish();
    assert!(end.status.success(), "{end:?}");
    assert_eq!(end.stderr, "", "{end:?}");
    assert!(!has_line(&end.written), "{end:?}");
    assert_eq!(
        end.screen.lines().filter(|l| l.contains(" slept ")).count(),
        4,
        "{end:?}"
    );

    // Off a terminal, progress is a plain line now and then (a batch
    // job's log), whole lines without escapes, and never on stdout.
    let mut args = sleeps(8, "100");
    args.extend(["--progress-interval", "0.1"]);
    let end = Run::start(&args, To::Terminal, To::Pipe, &[("SLURM_JOB_ID", "7")]).finish();
    assert!(end.status.success(), "{end:?}");
    let plain: Vec<&str> = end.stderr.lines().collect();
    assert!(!plain.is_empty() && !end.stderr.contains('\x1b'), "{end:?}");
    for line in &plain {
        assert!(
            line.starts_with("procpool: ")
                && line.contains("/8 tasks (")
                && line.ends_with(" busy"),
            "{end:?}"
        );
    }
    assert!(!end.screen.contains("procpool: "), "{end:?}");
}

#[test]
fn plain_lines_come_with_no_color_and_not_with_json_unless_asked() {
    let mut args = sleeps(6, "100");
    args.extend(["--progress-interval", "0.1"]);
    let end = Run::start(&args, To::Pipe, To::Terminal, &[("NO_COLOR", "1")]).finish();
    assert!(
        end.status.success() && !has_drawn_line(&end.written),
        "{end:?}"
    );
    assert!(end.written.contains("/6 tasks ("), "{end:?}");
    args.push("--json");
    let end = Run::start(&args, To::Pipe, To::Pipe, &[]).finish();
    assert!(end.status.success() && end.stderr.is_empty(), "{end:?}");
    args.push("--progress");
    let end = Run::start(&args, To::Pipe, To::Pipe, &[]).finish();
    assert!(
        end.status.success() && end.stderr.contains("/6 tasks ("),
        "{end:?}"
    );
    assert!(end.stdout.lines().all(|l| l.starts_with('{')), "{end:?}");
}

#[test]
fn no_line_is_drawn_with_json_no_progress_or_no_color() {
    let runs: [(&str, &[(&str, &str)]); 3] = [
        ("--json", &[]),
        ("--no-progress", &[]),
        ("--unordered", &[("NO_COLOR", "1")]),
    ];
    for (flag, env) in runs {
        let mut args = sleeps(4, "50");
        args.push(flag);
        let end = Run::start(&args, To::Terminal, To::Terminal, env).finish();
        assert!(end.status.success(), "{flag}: {end:?}");
        assert!(!has_line(&end.written), "{flag}: {end:?}");
    }
}

#[test]
fn the_last_screen_holds_the_summary_and_no_half_drawn_line() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = dir.path().join("jobs.txt");
    let mut lines: Vec<String> = (0..12).map(|_| "sleep 0.1".to_string()).collect();
    lines[5] = "sleep 0.1; exit 3".into();
    std::fs::write(&jobs, lines.join("\n") + "\n").unwrap();
    let status = dir.path().join("status.tsv");
    let logs = dir.path().join("logs");
    let args = [
        "jobs",
        jobs.to_str().unwrap(),
        "-p",
        "2",
        "--status",
        status.to_str().unwrap(),
        "--logs",
        logs.to_str().unwrap(),
    ];
    let mut run = Run::start(&args, To::Terminal, To::Terminal, &[]);
    run.wait_for("/12 jobs");
    let end = run.finish();
    assert_eq!(end.status.code(), Some(1), "{end:?}");
    assert!(
        end.written.contains("1 failed"),
        "the line counts the failure: {end:?}"
    );
    let screen: Vec<&str> = end
        .screen
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    // Whole lines only: the failure as it came, the summary, the failed IDs.
    assert_eq!(screen.len(), 3, "{end:?}");
    assert!(screen[0].starts_with("procpool: job 5 "), "{end:?}");
    assert!(
        screen[1].starts_with("12 of 12 job(s) ran: 11 succeeded, 1 failed; status in "),
        "{end:?}"
    );
    assert_eq!(screen[2], "procpool: failed Job_IDs: 5", "{end:?}");
}

#[test]
fn ctrl_c_leaves_the_summary_and_no_line() {
    let mut run = Run::start(&sleeps(40, "200"), To::Terminal, To::Terminal, &[]);
    run.wait_for("task 1 slept");
    run.wait_for("/40 tasks");
    run.type_keys(b"\x03");
    let end = run.finish();
    assert_eq!(end.status.code(), Some(130), "{end:?}");
    let last = end.screen.lines().rfind(|l| !l.trim().is_empty()).unwrap();
    assert!(
        last.starts_with("procpool: interrupted by signal 2 (SIGINT); ")
            && last.contains(" of 40 tasks finished; not finished: "),
        "{end:?}"
    );
    assert!(!has_line(&end.screen), "{end:?}");
}

#[test]
fn flip_shows_its_images_on_the_line_and_ends_with_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let samples = procpool_cli::flip::samples::file_name;
    for i in 0..6 {
        let jpeg = procpool_cli::flip::samples::jpeg(i);
        std::fs::write(dir.path().join(samples(i)), jpeg).unwrap();
    }
    let folder = dir.path().to_str().unwrap();
    let args = ["flip", "-p", "2", "--format", "bmp", folder];
    let end = Run::start(&args, To::Terminal, To::Terminal, &[]).finish();
    assert!(end.status.success(), "{end:?}");
    assert!(end.written.contains("/6 images"), "{end:?}");
    assert!(!has_line(&end.screen), "{end:?}");
    let last = end.screen.lines().rfind(|l| !l.trim().is_empty()).unwrap();
    assert!(
        last.starts_with("flipped 6 of 6 images to BMP in "),
        "{end:?}"
    );
}
