//! `procpool pi`: Monte Carlo pi over seeds, its timings and its figures.

use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::time::{Duration, Instant};

use procpool_cli::pi::{Experiment, count_inside};
use serde_json::Value;

use crate::util::{bin, pool, run, show, wait_gone};

/// Runs the binary with `--json` and returns its JSON Lines, after checking
/// it succeeded.
fn json_lines(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run(&all);
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Seed -> points inside, from the per-task JSON lines.
fn counts(lines: &[Value]) -> BTreeMap<u64, u64> {
    lines
        .iter()
        .filter(|l| l.get("seed").is_some())
        .map(|l| {
            let inside = l["output"]["inside"].as_u64().expect("an output");
            (l["seed"].as_u64().unwrap(), inside)
        })
        .collect()
}

#[test]
fn estimates_are_the_same_whatever_the_pool_size_chunk_size_or_order() {
    let common = ["--seeds", "3..10", "--trials", "20003"];
    let layouts: [&[&str]; 5] = [
        &["-p", "1"],
        &["-p", "2", "--chunksize", "1"],
        &["-p", "2", "--chunksize", "3", "--unordered"],
        &["-p", "4", "--chunksize", "2"],
        &["-p", "4", "--chunksize", "7"],
    ];
    // What this process's own copy of the library computes for each seed.
    let expected: BTreeMap<u64, u64> = (3..10).map(|s| (s, count_inside(s, 20003))).collect();
    for layout in layouts {
        let mut args = layout.to_vec();
        args.push("pi");
        args.extend_from_slice(&common);
        let lines = json_lines(&args);
        assert_eq!(counts(&lines), expected, "{args:?}");
        let pids: std::collections::BTreeSet<u64> =
            lines.iter().filter_map(|l| l["pid"].as_u64()).collect();
        assert!(!pids.contains(&u64::from(std::process::id())));
    }
}

#[test]
fn the_library_gives_the_same_outputs_on_a_pool_as_serially() {
    let experiment = Experiment::new(0..9, 12_345).unwrap();
    let pool = pool(3);
    assert_eq!(
        experiment.run_on(&pool).unwrap(),
        experiment.run_serial().unwrap()
    );
}

#[test]
fn the_mean_lies_within_four_standard_errors_of_pi() {
    let lines = json_lines(&["-p", "2", "pi", "--seeds", "0..8"]);
    let estimates: Vec<f64> = lines
        .iter()
        .filter_map(|l| l["estimate"].as_f64())
        .collect();
    assert_eq!(estimates.len(), 8);
    let summary = &lines.last().unwrap()["summary"];
    let mean = summary["mean"].as_f64().unwrap();
    let se = summary["standard_error"].as_f64().unwrap();
    assert!((mean - estimates.iter().sum::<f64>() / 8.0).abs() < 1e-12);
    // The binomial standard error of the mean of 8 estimates of 500,000 points.
    let p = mean / 4.0;
    let binomial = 4.0 * (p * (1.0 - p) / (8.0 * 500_000.0)).sqrt();
    assert!((se / binomial - 1.0).abs() < 1e-6, "{summary}");
    assert!((mean - PI).abs() < 4.0 * se, "{summary}");
    assert!((summary["distance_from_pi"].as_f64().unwrap() - (mean - PI)).abs() < 1e-12);
    assert_eq!(summary["tasks"], 8);
    assert_eq!(summary["exit_code"], 0);
}

#[test]
fn the_text_output_shows_each_seed_with_its_pid_and_time_then_the_mean() {
    let out = run(&["-p", "2", "pi", "--seeds", "0..3", "--trials", "1000"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    for (seed, line) in lines[..3].iter().enumerate() {
        let estimate = 4.0 * count_inside(seed as u64, 1000) as f64 / 1000.0;
        assert!(
            line.starts_with(&format!("seed {seed}  estimate {estimate:.7}  PID ")),
            "{line}"
        );
        assert!(line.ends_with(" us") || line.ends_with(" ms"), "{line}");
    }
    assert!(
        lines[3].starts_with("mean ")
            && lines[3].contains("(standard error) over 3 seeds x 1000 trials")
    );
    assert!(lines[4].contains("from pi = ") && lines[4].ends_with("standard errors"));
}

/// A quick comparison on two workers.
const COMPARE: &[&str] = &["-p", "2", "pi", "--compare", "--trials", "20000"];

#[test]
fn compare_prints_the_tutorials_timing_cells() {
    let out = run(&[COMPARE, &["--repeats", "3"]].concat());
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(
        lines[0].contains("4 seeds x 20000 trials, 2 worker processes, median of 3 runs in rounds")
    );
    for (line, case) in
        lines[2..5]
            .iter()
            .zip(["one seed alone", "all seeds, serial", "all seeds, pool.map"])
    {
        assert!(line.starts_with(case), "{text}");
    }
    assert!(lines[5].starts_with("speedup ") && lines[5].contains("parallel efficiency"));
}

#[test]
fn compare_json_gives_runs_medians_speedup_and_efficiency() {
    let lines = json_lines(&[COMPARE, &["--repeats", "4"]].concat());
    assert_eq!(lines.len(), 4);
    let median = |i: usize| lines[i]["median_ms"].as_f64().unwrap();
    for (line, case) in lines.iter().zip(["one_seed", "serial", "pool"]) {
        assert_eq!(line["case"], case);
        let runs = line["runs_ms"].as_array().unwrap();
        assert_eq!(runs.len(), 4);
        let mut runs: Vec<f64> = runs.iter().map(|r| r.as_f64().unwrap()).collect();
        runs.sort_by(f64::total_cmp);
        assert!((line["median_ms"].as_f64().unwrap() - (runs[1] + runs[2]) / 2.0).abs() < 1e-6);
        assert_eq!(line["min_ms"].as_f64().unwrap(), runs[0]);
    }
    let summary = &lines[3]["summary"];
    let speedup = summary["speedup"].as_f64().unwrap();
    assert!(
        (speedup - median(1) / median(2)).abs() < 1e-6 * speedup,
        "{summary}"
    );
    assert!((summary["efficiency"].as_f64().unwrap() - speedup / 2.0).abs() < 1e-9);
    assert_eq!(summary["processes"], 2);
}

#[test]
fn scaling_times_each_pool_size_and_draws_the_speedup() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("speedup.png");
    let quick = ["pi", "--trials", "20000", "--repeats", "2", "--scaling"];
    let plot = [
        "1..=3",
        "--plot",
        png.to_str().unwrap(),
        "--size",
        "640x480",
    ];
    let out = run(&[&quick[..], &plot].concat());
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let sizes: Vec<&str> = text
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(sizes, ["1", "2", "3"], "{text}");
    let image = image::open(&png).expect("the plot decodes as PNG");
    assert_eq!((image.width(), image.height()), (640, 480));

    let lines = json_lines(&[&quick[..], &["2..4"]].concat());
    assert_eq!(lines.len(), 3);
    for (line, n) in lines.iter().zip([2, 3]) {
        assert_eq!(line["processes"], n);
        let median = |case: &str| line[case]["median_ms"].as_f64().unwrap();
        let speedup = median("serial") / median("pool");
        assert!((line["speedup"].as_f64().unwrap() / speedup - 1.0).abs() < 1e-6);
        assert_eq!(line["pool"]["runs_ms"].as_array().unwrap().len(), 2);
    }
    assert_eq!(lines[2]["summary"]["repeats"], 2);
}

#[test]
fn the_points_figure_decodes_at_the_asked_size_with_both_colours() {
    let dir = tempfile::tempdir().unwrap();
    for (name, size, expected) in [
        ("default.png", None, (800, 800)),
        ("wide.PNG", Some("500x300"), (500, 300)),
    ] {
        let path = dir.path().join(name);
        let mut args = vec!["pi", "--trials", "1000", "--plot", path.to_str().unwrap()];
        if let Some(size) = size {
            args.extend(["--size", size]);
        }
        let out = run(&args);
        assert!(out.status.success(), "{}", show(&out));
        let image = image::open(&path)
            .expect("the plot decodes as PNG")
            .to_rgb8();
        assert_eq!(image.dimensions(), expected);
        // Points inside and outside the circle, in their two colours.
        for colour in [[31, 119, 180], [255, 127, 14]] {
            let n = image.pixels().filter(|p| p.0 == colour).count();
            assert!(n > 100, "{name}: only {n} pixels of {colour:?}");
        }
    }

    let svg = dir.path().join("pi.svg");
    let out = run(&[
        "pi",
        "--trials",
        "1000",
        "--plot",
        svg.to_str().unwrap(),
        "--size",
        "640x480",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("the plot parses as XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        (root.attribute("width"), root.attribute("height")),
        (Some("640"), Some("480"))
    );
    let circles = root
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .count();
    assert!(circles >= 3000, "{circles} circles for 3000 points");
}

#[test]
fn bad_arguments_get_one_line_naming_them_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("x.png");
    let png = png.to_str().unwrap();
    let cases: [(&[&str], &str); 13] = [
        (&["--trials", "0"], "\"0\": need at least 1 trial"),
        (&["--trials", "-5"], "-5"),
        (&["--trials", "abc"], "\"abc\" is not a whole number"),
        (&["--trials", "99999999999999999999"], "too large"),
        (&["--seeds", "4..2"], "\"4..2\" is empty or reversed"),
        (&["--seeds", "3..3"], "\"3..3\" is empty or reversed"),
        (&["--seeds", "-1..2"], "seeds start at 0"),
        (&["--seeds", "0..99999999999999999999"], "fits 64 bits"),
        (
            &["--seeds", "0..3", "--trials", "9223372036854775807"],
            "fit in 64 bits",
        ),
        (&["--scaling", "0..3"], "from 1 to 256"),
        (&["--plot", "pi.jpg"], "must end in .png or .svg"),
        (&["--plot", "/no/such/folder/pi.png"], "does not exist"),
        (
            &["--plot", png, "--size", "10x10"],
            "must be between 200 and 8192",
        ),
    ];
    for (args, cause) in cases {
        let mut all = vec!["pi"];
        all.extend_from_slice(args);
        let out = run(&all);
        assert_eq!(out.status.code(), Some(2), "{all:?}\n{}", show(&out));
        assert!(out.stdout.is_empty(), "{all:?}\n{}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error:") || l.starts_with("procpool:"))
            .collect();
        assert_eq!(errors.len(), 1, "{all:?}\n{stderr}");
        assert!(errors[0].contains(cause), "{all:?}: {}", errors[0]);
    }
    assert!(!std::path::Path::new(png).exists());
    let out = run(&["pi", "--compare", "--scaling", "1..3"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}

#[test]
fn an_interrupted_comparison_exits_130_and_leaves_no_worker() {
    // Far more work than the test will wait for: only SIGINT can end it soon.
    let child = std::process::Command::new(bin())
        .args(["-p", "2", "pi", "--compare", "--trials", "100000000000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("procpool starts");
    let mut child = KillOnDrop(child);
    let pid = child.0.id();
    // The pool is built first; then the supervisor runs the serial cells.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut workers = Vec::new();
    while workers.len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        workers = children_of_any_thread(pid);
    }
    assert_eq!(workers.len(), 2, "the pool did not start");
    procpool::sys::kill(pid, libc::SIGINT).unwrap();
    let status = child.wait(Duration::from_secs(30));
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted by signal 2"), "{stderr}");
    assert_eq!(wait_gone(&workers, 10.0), Vec::<u32>::new());
}

/// The children of every thread of `pid` (workers are spawned off the main thread).
fn children_of_any_thread(pid: u32) -> Vec<u32> {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    threads
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// A child process that is killed and reaped if the test ends early.
struct KillOnDrop(std::process::Child);

impl KillOnDrop {
    /// Waits up to `limit` for the child to exit.
    fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().expect("wait works") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
