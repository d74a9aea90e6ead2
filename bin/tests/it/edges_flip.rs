//! `procpool flip` at its edges (issue 11): signals at several moments of a
//! run, a worker killed mid-run, an unusable `--out`, inputs that vanish and
//! an output folder that turns read-only midway. Every test checks what the
//! user is promised: the exit code, one line per error with no panic text,
//! no process left, and in the output folder only complete outputs: no
//! hidden temporary, nothing half-written.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use image::{Rgb, RgbImage};

use crate::util::{bin, children, run, show, wait_gone};

/// Tiny images, so that hundreds flip in a second or two in a debug build.
const SIDE: (u32, u32) = (32, 24);

/// `count` small distinct PNG images `img_NNNN.png` in a fresh folder.
fn tiny_images(count: usize) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let inputs = (0..count)
        .map(|i| {
            let image = RgbImage::from_fn(SIDE.0, SIDE.1, |x, y| {
                Rgb([(x * 8) as u8, (y * 10) as u8, (i % 251) as u8])
            });
            let path = dir.path().join(format!("img_{i:04}.png"));
            image.save(&path).unwrap();
            path
        })
        .collect();
    (dir, inputs)
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `procpool -p 2 flip ARGS...` started in the background, its stdout and
/// stderr going to files in `logs`.
fn start(args: &[&str], logs: &Path) -> Child {
    start_as(Command::new(bin()), "2", args, logs)
}

/// `command -p PROCESSES flip ARGS...` started like [`start`].
fn start_as(mut command: Command, processes: &str, args: &[&str], logs: &Path) -> Child {
    let file = |name: &str| std::fs::File::create(logs.join(name)).unwrap();
    command
        .args(["-p", processes, "flip"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(file("stdout"))
        .stderr(file("stderr"))
        .spawn()
        .expect("procpool starts")
}

/// The names in `dir` (none if it does not exist), sorted.
fn names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Checks that `dir` holds nothing but complete outputs of `inputs`: no
/// hidden or stray file, every PDF a whole document, every PNG decodable
/// at the input's size. Returns how many outputs there are.
fn assert_only_complete_outputs(dir: &Path, inputs: &[PathBuf]) -> usize {
    let expected: std::collections::HashSet<String> = inputs
        .iter()
        .flat_map(|input| {
            let stem = input.file_stem().unwrap().to_str().unwrap().to_owned();
            [format!("{stem}_flipped.pdf"), format!("{stem}_flipped.png")]
        })
        .collect();
    let found = names(dir);
    for name in &found {
        assert!(
            expected.contains(name),
            "stray file {name} in {} (of {} files)",
            dir.display(),
            found.len()
        );
        let bytes = std::fs::read(dir.join(name)).unwrap();
        if name.ends_with(".pdf") {
            assert!(bytes.starts_with(b"%PDF-"), "{name}: no PDF header");
            assert!(bytes.trim_ascii_end().ends_with(b"%%EOF"), "{name}: cut");
            lopdf::Document::load_mem(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else {
            let image = image::load_from_memory(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!((image.width(), image.height()), SIDE, "{name}");
        }
    }
    found.len()
}

/// Polls `until` every millisecond for up to 20 s, failing with the
/// stderr in `logs` if `child` exits first.
fn wait_for(child: &mut Child, logs: &Path, what: &str, mut until: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !until() {
        if let Some(status) = child.try_wait().unwrap() {
            let stderr = read(logs.join("stderr"));
            panic!("procpool ended ({status}) before {what}:\n{stderr}");
        }
        assert!(Instant::now() < deadline, "{what} never came");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits up to `secs` for `child` to exit.
fn wait_exit(child: &mut Child, secs: f64) -> Option<ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// When, in a run, the signal is sent.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// Once the supervisor has started a worker process: the workers are
    /// still starting.
    Starting,
    /// Once this many outputs exist.
    Outputs(usize),
}

/// Flips 600 tiny images into a new `--out` folder, sends `signal` to the
/// supervisor at each moment in turn (a fresh run each time), and checks
/// the exit code (`expected`, or death by the signal when `None`), the time
/// to exit, that no worker is left, and that the folder holds only
/// complete outputs (or does not exist).
fn signal_mid_run(signal: libc::c_int, expected: Option<i32>) {
    const COUNT: usize = 600;
    let (dir, inputs) = tiny_images(COUNT);
    for (run, moment) in [
        Moment::Starting,
        Moment::Outputs(1),
        Moment::Outputs(COUNT / 3),
    ]
    .into_iter()
    .enumerate()
    {
        let out = dir.path().join(format!("out{run}"));
        let logs = tempfile::tempdir().unwrap();
        let mut child = start(&["--out", s(&out), s(dir.path())], logs.path());
        let pid = child.id();
        match moment {
            Moment::Starting => wait_for(&mut child, logs.path(), "a worker process", || {
                !children(pid).is_empty()
            }),
            Moment::Outputs(n) => {
                wait_for(&mut child, logs.path(), &format!("{n} outputs"), || {
                    names(&out).len() >= n
                })
            }
        }
        let workers = children(pid);
        // SAFETY: kill takes no pointers; `pid` is our own child, not reaped.
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
        let sent = Instant::now();
        let status = wait_exit(&mut child, 10.0);
        let took = sent.elapsed();
        let stderr = read(logs.path().join("stderr"));
        let what = format!("signal {signal} at {moment:?}: {status:?} after {took:?}\n{stderr}");
        let status = status.unwrap_or_else(|| panic!("no exit within 10 s: {what}"));
        match expected {
            Some(code) => assert_eq!(status.code(), Some(code), "{what}"),
            None => {
                use std::os::unix::process::ExitStatusExt;
                assert_eq!(status.signal(), Some(signal), "{what}");
            }
        }
        assert!(took < Duration::from_secs(2), "slow exit: {what}");
        assert!(wait_gone(&workers, 2.0).is_empty(), "workers left: {what}");
        assert!(!stderr.contains("panicked"), "{what}");
        let written = assert_only_complete_outputs(&out, &inputs);
        assert!(written < COUNT, "the signal came after the end: {what}");
        // Every output reported exists; after a handled signal, every output
        // that exists is reported, but for at most the images the two
        // workers were finishing when they were stopped.
        let stdout = read(logs.path().join("stdout"));
        let reported: Vec<&str> = stdout
            .lines()
            .filter_map(|line| line.split_once(" -> ").map(|(_, output)| output))
            .collect();
        let on_disk = names(&out);
        for output in &reported {
            let name = Path::new(output).file_name().unwrap().to_str().unwrap();
            assert!(
                on_disk.iter().any(|n| n == name),
                "{output} reported, not written: {what}"
            );
        }
        if expected.is_some() {
            assert!(
                reported.len() + 2 >= on_disk.len(),
                "{} written, {} reported: {what}",
                on_disk.len(),
                reported.len()
            );
        }
    }
}

#[test]
fn sigkill_of_the_supervisor_leaves_only_complete_outputs_and_no_worker() {
    signal_mid_run(libc::SIGKILL, None);
}

#[test]
fn sigint_mid_flip_exits_130_with_only_complete_outputs() {
    signal_mid_run(libc::SIGINT, Some(130));
}

#[test]
fn sigterm_mid_flip_exits_143_with_only_complete_outputs() {
    signal_mid_run(libc::SIGTERM, Some(143));
}

/// A dropped SSH session: handled like SIGTERM, exit 129 (issue 11, item 2).
#[test]
fn sighup_mid_flip_exits_129_with_only_complete_outputs() {
    signal_mid_run(libc::SIGHUP, Some(129));
}

#[test]
fn a_worker_killed_mid_run_costs_at_most_its_image_and_leaves_no_temporary() {
    const COUNT: usize = 400;
    let (dir, inputs) = tiny_images(COUNT);
    let out = dir.path().join("out");
    let logs = tempfile::tempdir().unwrap();
    let mut child = start(
        &["--format", "png", "--out", s(&out), s(dir.path())],
        logs.path(),
    );
    wait_for(&mut child, logs.path(), "50 outputs", || {
        names(&out).len() >= 50
    });
    let worker = children(child.id())[0];
    // SAFETY: kill takes no pointers.
    unsafe { libc::kill(worker as libc::pid_t, libc::SIGKILL) };
    let status = wait_exit(&mut child, 20.0).expect("procpool ends");
    let stderr = read(logs.path().join("stderr"));
    let failures: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("died: killed by signal 9"))
        .collect();
    // Killed between two images it costs none, during one it costs that one.
    assert!(failures.len() <= 1, "{stderr}");
    assert_eq!(status.code(), Some(failures.len() as i32), "{stderr}");
    let written = assert_only_complete_outputs(&out, &inputs);
    // Every other image is written. The one whose worker died may be there
    // too, whole, if the kill fell between writing it and reporting it.
    assert!(
        written + failures.len() >= COUNT && written <= COUNT,
        "{written} written: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Runs the binary as user `nobody` when the tests run as root (who may
/// write anywhere), as the current user otherwise; `None` when that cannot
/// be done here.
fn unprivileged() -> Option<Command> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some(Command::new(bin()));
    }
    let ok = Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "true",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("running as root without setpriv: the unwritable half is skipped");
        return None;
    }
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(bin());
    Some(command)
}

/// Lets any user into `dir` (tempfile makes its folders private).
fn open_to_all(dir: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Exit 2 and one line naming `--out` and the cause.
fn assert_one_line_exit_2(output: &std::process::Output, out: &Path, cause: &str) {
    assert_eq!(output.status.code(), Some(2), "{}", show(output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let prefix = format!("procpool: --out {}: ", out.display());
    assert!(
        stderr.lines().count() == 1 && stderr.starts_with(&prefix) && stderr.contains(cause),
        "{}",
        show(output)
    );
}

#[test]
fn an_unusable_out_is_one_line_exit_2_and_nothing_made() {
    let (dir, inputs) = tiny_images(2);
    let p = |name: &str| dir.path().join(name);
    std::fs::write(p("file"), b"not a folder").unwrap();
    for (out, cause) in [
        (p("file"), "exists and is not a folder"),
        (p("missing/out"), "its parent folder"),
        (p("file/out"), "is not a folder"),
    ] {
        let output = run(&["-p", "2", "flip", "--out", s(&out), s(&inputs[0])]);
        assert_one_line_exit_2(&output, &out, cause);
    }
    assert_eq!(std::fs::read(p("file")).unwrap(), b"not a folder");
    assert!(!p("missing").exists());

    // A folder this user may not write in, and a new folder inside it.
    if unprivileged().is_none() {
        return;
    }
    open_to_all(dir.path(), 0o755);
    let locked = p("locked");
    std::fs::create_dir(&locked).unwrap();
    open_to_all(&locked, 0o555);
    for (out, cause) in [
        (locked.clone(), "folder is not writable: Permission denied"),
        (locked.join("new"), "cannot create it in"),
    ] {
        let output = unprivileged()
            .unwrap()
            .args(["-p", "2", "flip", "--out", s(&out), s(&inputs[0])])
            .output()
            .unwrap();
        assert_one_line_exit_2(&output, &out, cause);
    }
    assert!(names(&locked).is_empty());
}

#[test]
fn a_run_that_writes_nothing_makes_no_out_folder() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    std::fs::create_dir(p("no_images")).unwrap();
    std::fs::write(p("no_images/notes.txt"), b"text").unwrap();
    std::fs::write(p("empty.png"), b"").unwrap();
    std::fs::write(p("corrupt.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let out = p("out");
    let output = run(&[
        "-p",
        "2",
        "flip",
        "--out",
        s(&out),
        s(&p("no_images")),
        s(&p("empty.png")),
        s(&p("corrupt.png")),
        s(&p("missing.png")),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for (input, cause) in [
        ("no_images", "folder holds no image files"),
        ("empty.png", "empty file (0 bytes)"),
        ("corrupt.png", "cannot decode"),
        ("missing.png", "no such file"),
    ] {
        let prefix = format!("procpool: {}: ", p(input).display());
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with(&prefix)).collect();
        assert_eq!(lines.len(), 1, "{input}: {}", show(&output));
        assert!(lines[0].contains(cause), "{input}: {}", show(&output));
    }
    assert!(!stderr.contains("panicked"), "{}", show(&output));
    assert!(!out.exists(), "{} was made for nothing", out.display());

    // Nothing at all to flip: no pool, no folder.
    let output = run(&["flip", "--out", s(&out), s(&p("no_images"))]);
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    assert!(!out.exists());
}

#[test]
fn an_input_that_vanishes_after_planning_is_reported_and_the_rest_flipped() {
    const COUNT: usize = 200;
    let (dir, inputs) = tiny_images(COUNT);
    let out = dir.path().join("out");
    let logs = tempfile::tempdir().unwrap();
    let args = ["--format", "png", "--out", s(&out), s(dir.path())];
    // One worker takes the images in order: the last is read last.
    let mut child = Command::new(bin())
        .args(["-p", "1", "flip"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(logs.path().join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let last = inputs.last().unwrap();
    wait_for(&mut child, logs.path(), "the first output", || {
        !names(&out).is_empty()
    });
    std::fs::remove_file(last).unwrap();
    let status = wait_exit(&mut child, 20.0).expect("procpool ends");
    let stderr = read(logs.path().join("stderr"));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("procpool: {}: no such file\n", last.display())),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().count(),
        2,
        "the error and the summary: {stderr}"
    );
    assert_eq!(assert_only_complete_outputs(&out, &inputs), COUNT - 1);
}

#[test]
fn an_output_folder_made_read_only_midway_fails_the_rest_one_line_each() {
    const COUNT: usize = 200;
    let Some(command) = unprivileged() else {
        return;
    };
    let (dir, inputs) = tiny_images(COUNT);
    open_to_all(dir.path(), 0o777);
    let out = dir.path().join("out");
    let logs = tempfile::tempdir().unwrap();
    open_to_all(logs.path(), 0o777);
    let mut child = start_as(
        command,
        "1",
        &["--format", "png", "--out", s(&out), s(dir.path())],
        logs.path(),
    );
    wait_for(&mut child, logs.path(), "the first output", || {
        !names(&out).is_empty()
    });
    open_to_all(&out, 0o555);
    let status = wait_exit(&mut child, 20.0).expect("procpool ends");
    open_to_all(&out, 0o755);
    let stderr = read(logs.path().join("stderr"));
    assert_eq!(status.code(), Some(1), "{stderr}");
    let written = assert_only_complete_outputs(&out, &inputs);
    let failed: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(": cannot write ") && l.ends_with("Permission denied (os error 13)"))
        .collect();
    assert!(!failed.is_empty(), "{stderr}");
    assert_eq!(written + failed.len(), COUNT, "{stderr}");
    // One line per failure, then the summary.
    assert_eq!(stderr.lines().count(), failed.len() + 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_double_star_pattern_does_not_follow_links_to_folders_round_and_round() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("loop");
    std::fs::create_dir_all(tree.join("a")).unwrap();
    std::fs::create_dir_all(tree.join("b/c")).unwrap();
    std::os::unix::fs::symlink("..", tree.join("a/up")).unwrap();
    std::os::unix::fs::symlink("../loop", tree.join("self")).unwrap();
    let sample = crate::util::root().join("data/sample_01.jpg");
    std::fs::copy(sample, tree.join("b/c/x.jpg")).unwrap();
    let started = Instant::now();
    let out = Command::new(bin())
        .current_dir(dir.path())
        .args([
            "-p",
            "2",
            "flip",
            "--format",
            "png",
            "-o",
            "out",
            "loop/**/*.jpg",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", crate::util::show(&out));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(names(&dir.path().join("out")), ["x_flipped.png"]);
}
