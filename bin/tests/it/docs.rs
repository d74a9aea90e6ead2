//! The guides' examples stay true: every `$ procpool ...` line in a
//! ```console, ```text or ```sh block of README.md and docs/*.md runs with
//! the real binary, in a scratch folder per file, in the order written.
//!
//! For each command: clap must accept it (unless the example shows clap's
//! `error:` line), its exit status must be the one shown (`$ echo $?`; else
//! non-zero when the example shows a `procpool:` or `error:` line, else 0),
//! and the lines shown must be the lines printed (stdout and stderr, in any
//! interleaving), once PIDs, times, rates and host names are masked. A
//! `$ cat FILE` followed by lines writes FILE with them, unless a command
//! made FILE (then it is a listing, not checked).
//!
//! Not run (keep this list short):
//! - lines starting with `mpirun` or `srun`: they need an MPI launcher
//!   (tests/it/mpi.rs and cluster.rs run them);
//! - the `--backend mpi` line whose message belongs to the other build
//!   (with or without the `mpi` feature);
//! - `flip --format jpg 'photos/*.jpg'`: needs crafted broken JPEGs (a
//!   decompression bomb, scrambled image data); tests/it/flip.rs makes them;
//! - `--trials 100000000`: seconds of work, too slow for a debug build;
//! - `# Ctrl-C`: needs a signal mid-run (tests/it/signals.rs);
//! - `--submit`: needs a Slurm cluster (tests/it/slurm.rs starts one).
//!
//! Output is not compared (only acceptance and exit status) for `--compare`
//! and `--scaling`, whose speedups vary from run to run, and for the
//! `--timeline` examples, which show the picture instead.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use regex::Regex;

use super::util;

const SKIP: &[&str] = &[
    "flip --format jpg 'photos/*.jpg'",
    "--trials 100000000",
    "# Ctrl-C",
    "--submit",
];
const TIMINGS: &[&str] = &["--compare", "--scaling", "--timeline"];

fn root() -> PathBuf {
    crate::util::root()
}

/// The guides: README.md and every docs/*.md.
fn guides() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .expect("docs/ is readable")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// One `$ ` line of a block and the lines shown after it.
struct Step {
    line: usize,
    command: String,
    shown: Vec<String>,
}

/// The `$ ` steps of every console, text and sh block, in order.
fn steps(text: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_block = false;
    let mut checked = false;
    for (n, line) in text.lines().enumerate() {
        if let Some(info) = line.strip_prefix("```") {
            if in_block {
                in_block = false;
            } else {
                in_block = true;
                checked = matches!(info.trim(), "console" | "text" | "sh");
            }
            continue;
        }
        if !in_block || !checked {
            continue;
        }
        if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                line: n + 1,
                command: command.to_string(),
                shown: Vec::new(),
            });
        } else if let Some(step) = steps.last_mut() {
            step.shown.push(line.to_string());
        }
    }
    steps
}

/// Masks what varies between runs: PIDs, times, rates, dates, host names,
/// source line numbers, and this run's folders.
fn mask(line: &str, scratch: &str) -> String {
    let mut s = line.replace(scratch, "/tmp/demo/work");
    let bin = util::bin();
    s = s.replace(&*bin.to_string_lossy(), "/tmp/demo/bin/procpool");
    static RULES: OnceLock<Vec<(Regex, &str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            (r"PID = \d+", "PID = N"),
            (r"PID \d+", "PID N"),
            (r"worker \d+", "worker N"),
            (r"PIDs: \[[\d, ]*\]", "PIDs: [N]"),
            (r#""pid":\d+"#, r#""pid":N"#),
            (r#""(elapsed_ms|time_elapsed)":[\d.e-]+"#, r#""$1":T"#),
            (
                r#""(time_started|time_ended|hostname|host)":"[^"]*""#,
                r#""$1":"T""#,
            ),
            (r"\d+(\.\d+)? ?(us|µs|ms|s)\b", "T"),
            (r"\(\d+ images/s\)", "(N images/s)"),
            (r"(src/[\w/]+\.rs):\d+:\d+", "$1:L"),
        ]
        .into_iter()
        .map(|(pattern, with)| (Regex::new(pattern).expect("mask pattern"), with))
        .collect()
    });
    for (pattern, with) in rules {
        s = pattern.replace_all(&s, *with).into_owned();
    }
    s
}

/// A scratch folder with what the examples need: data/*.jpg, a/x.jpg,
/// b/x.jpg, photos/sample_01.jpg and photos/cut.jpg (cut after 9000 bytes),
/// an empty docs/ for the figures, and timeline/jobs.txt (the timeline
/// guide's job file).
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("scratch folder");
    let d = dir.path();
    for sub in ["data", "a", "b", "photos", "docs", "timeline"] {
        fs::create_dir(d.join(sub)).unwrap();
    }
    fs::copy(
        root().join("docs/timeline/jobs.txt"),
        d.join("timeline/jobs.txt"),
    )
    .unwrap();
    for entry in fs::read_dir(root().join("data")).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "jpg") {
            fs::copy(&path, d.join("data").join(path.file_name().unwrap())).unwrap();
        }
    }
    let sample = fs::read(root().join("data/sample_01.jpg")).unwrap();
    fs::write(d.join("a/x.jpg"), &sample).unwrap();
    fs::copy(root().join("data/sample_02.jpg"), d.join("b/x.jpg")).unwrap();
    fs::write(d.join("photos/sample_01.jpg"), &sample).unwrap();
    fs::write(d.join("photos/cut.jpg"), &sample[..9000]).unwrap();
    dir
}

/// Runs one guide's steps; returns what went wrong, one entry per problem.
fn check(guide: &Path) -> (usize, Vec<String>) {
    let text = fs::read_to_string(guide).unwrap();
    let name = guide.strip_prefix(root()).unwrap().display().to_string();
    let dir = scratch();
    let here = dir.path().canonicalize().unwrap();
    let here_str = here.to_string_lossy().into_owned();
    let bin_dir = util::bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut made_by_commands: HashSet<String> = HashSet::new();
    let mut problems = Vec::new();
    let mut ran = 0;
    let all = steps(&text);
    for (i, step) in all.iter().enumerate() {
        let cmd = step.command.trim();
        if let Some(file) = cmd.strip_prefix("cat ") {
            let file = file.trim();
            if !step.shown.is_empty() && !made_by_commands.contains(file) {
                let target = here.join(file);
                if !target.exists() || !made_by_commands.contains(file) {
                    let mut body = step.shown.join("\n");
                    body.push('\n');
                    fs::write(target, body).unwrap();
                }
            }
            continue;
        }
        if !cmd.starts_with("procpool ") {
            continue;
        }
        let shown_text = step.shown.join("\n");
        let mpi_build = cfg!(feature = "mpi");
        if SKIP.iter().any(|s| cmd.contains(s))
            || (mpi_build && shown_text.contains("built without MPI support"))
            || (!mpi_build && shown_text.contains("not started by an MPI launcher"))
        {
            continue;
        }
        ran += 1;
        let before: HashSet<String> = list(&here);
        let started = Instant::now();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(&here)
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh runs");
        let output = loop {
            if child.try_wait().unwrap().is_some() {
                break child.wait_with_output().unwrap();
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                break child.wait_with_output().unwrap();
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        for file in list(&here).difference(&before) {
            made_by_commands.insert(file.clone());
        }
        let at = format!("{name}:{}: `$ {cmd}`", step.line);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let status = output.status.code().unwrap_or(-1);
        let shows_usage_error = step.shown.iter().any(|l| l.starts_with("error: "));
        if status == 2
            && !shows_usage_error
            && (stderr.contains("Usage:") || stderr.contains("error: unexpected argument"))
        {
            problems.push(format!("{at}: not accepted:\n{stderr}"));
            continue;
        }
        // The exit status shown by a following `$ echo $?`.
        let echoed = all
            .get(i + 1)
            .filter(|next| next.command.trim() == "echo $?")
            .and_then(|next| next.shown.first())
            .and_then(|code| code.trim().parse::<i32>().ok());
        let shows_error = step
            .shown
            .iter()
            .any(|l| l.starts_with("procpool: ") || l.starts_with("error: "));
        let status_ok = match echoed {
            Some(code) => status == code,
            None if shows_error => status != 0,
            None => status == 0,
        };
        if !status_ok {
            problems.push(format!(
                "{at}: exit status {status}, the guide shows {}\n--- stdout\n{stdout}--- stderr\n{stderr}",
                echoed.map_or(
                    if shows_error { "non-zero" } else { "0" }.to_string(),
                    |c| c.to_string()
                )
            ));
            continue;
        }
        if TIMINGS.iter().any(|t| cmd.contains(t)) {
            continue;
        }
        let keep = |l: &&str| !l.trim().is_empty() && *l != "For more information, try '--help'.";
        let mut real: Vec<String> = stdout
            .lines()
            .chain(stderr.lines())
            .filter(keep)
            .map(|l| mask(l, &here_str))
            .collect();
        let mut shown: Vec<String> = step
            .shown
            .iter()
            .map(String::as_str)
            .filter(keep)
            .map(|l| mask(l, &here_str))
            .collect();
        real.sort();
        shown.sort();
        if real != shown {
            problems.push(format!(
                "{at}: output differs (masked, sorted)\n--- shown\n{}\n--- real\n{}",
                shown.join("\n"),
                real.join("\n")
            ));
        }
    }
    (ran, problems)
}

/// Every path under `dir`, relative to it.
fn list(dir: &Path) -> HashSet<String> {
    let mut found = HashSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if let Ok(rel) = path.strip_prefix(dir) {
                found.insert(rel.to_string_lossy().into_owned());
            }
            if path.is_dir() {
                todo.push(path);
            }
        }
    }
    found
}

#[test]
fn every_guide_example_runs_as_shown() {
    // One thread per guide: each has its own scratch folder.
    let handles: Vec<_> = guides()
        .into_iter()
        .map(|guide| std::thread::spawn(move || check(&guide)))
        .collect();
    let mut ran = 0;
    let mut problems = Vec::new();
    for handle in handles {
        let (n, p) = handle.join().expect("a guide's check panicked");
        ran += n;
        problems.extend(p);
    }
    assert!(ran >= 30, "only {ran} examples ran: is the parser broken?");
    eprintln!("{ran} examples ran");
    assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
}

#[test]
fn the_readme_is_a_page() {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines; move detail to docs/"
    );
}

#[test]
fn links_between_guides_point_at_files_and_headings_that_exist() {
    let link = Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut broken = Vec::new();
    for guide in guides() {
        let text = fs::read_to_string(&guide).unwrap();
        for cap in link.captures_iter(&text) {
            let target = &cap[1];
            if target.starts_with("http") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if file.is_empty() {
                guide.clone()
            } else {
                guide.parent().unwrap().join(file)
            };
            if !file.exists() {
                broken.push(format!("{}: {target}", guide.display()));
                continue;
            }
            if !anchor.is_empty() {
                let body = fs::read_to_string(&file).unwrap_or_default();
                if !anchors(&body).contains(anchor) {
                    broken.push(format!("{}: {target} (no such heading)", guide.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// GitHub's anchors for the headings of a Markdown text.
fn anchors(text: &str) -> HashSet<String> {
    let mut in_block = false;
    let mut found = HashSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
        }
        if in_block || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim().to_lowercase();
        let anchor: String = title
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        found.insert(anchor);
    }
    found
}
