//! `--timeline FILE`: the chart (SVG, PNG) and the trace (JSON) of real runs,
//! checked against the same run's `--json` output.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;

use procpool_cli::timeline::Status;
use serde_json::Value;

use crate::util::{bin, run, show};

/// Runs `procpool ARGS --json --timeline FILE`; returns the output and the
/// outcome lines (the summary left out).
fn run_with(file: &Path, args: &[&str]) -> (Output, Vec<Value>) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--json", "--timeline", file.to_str().unwrap()]);
    let output = run(&all);
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v| v.get("index").is_some())
        .collect();
    (output, lines)
}

fn pids(lines: &[Value]) -> BTreeSet<u64> {
    lines.iter().map(|l| l["pid"].as_u64().unwrap()).collect()
}

/// A bar of the chart: its lane's PID and its pixels `x..x + width`.
#[derive(Debug)]
struct Bar {
    pid: u64,
    x: f64,
    width: f64,
}

/// The chart's lanes (PID by the label's height) and its bars: rectangles
/// filled with a status colour whose middle lies on a lane.
fn chart(svg: &str) -> (BTreeMap<u64, f64>, Vec<Bar>, usize) {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
    let num = |n: roxmltree::Node, a: &str| n.attribute(a).and_then(|v| v.parse::<f64>().ok());
    let mut lanes = BTreeMap::new();
    for text in doc.descendants().filter(|n| n.has_tag_name("text")) {
        let content: String = text.descendants().filter_map(|n| n.text()).collect();
        // "PID 4711", or on MPI "rank 1 host PID 4711".
        if let Some((_, pid)) = content.rsplit_once("PID ") {
            let pid: u64 = pid.trim().parse().unwrap();
            assert!(
                lanes.insert(pid, num(text, "y").unwrap()).is_none(),
                "two lanes for PID {pid}"
            );
        }
    }
    let ys: Vec<f64> = lanes.values().copied().collect();
    let mut sorted = ys.clone();
    sorted.sort_by(f64::total_cmp);
    let half = sorted
        .windows(2)
        .map(|w| (w[1] - w[0]) / 2.0)
        .fold(20.0, f64::min);
    let colours: Vec<String> = Status::ALL
        .iter()
        .map(|s| {
            let (r, g, b) = s.colour();
            format!("#{r:02X}{g:02X}{b:02X}")
        })
        .collect();
    let mut bars = Vec::new();
    let mut outlined = 0;
    for rect in doc.descendants().filter(|n| n.has_tag_name("rect")) {
        let fill = rect.attribute("fill").unwrap_or("").to_ascii_uppercase();
        let (x, y, w, h) = (
            num(rect, "x").unwrap(),
            num(rect, "y").unwrap(),
            num(rect, "width").unwrap(),
            num(rect, "height").unwrap(),
        );
        let middle = y + h / 2.0;
        let lane = lanes.iter().find(|(_, ly)| (middle - **ly).abs() < half);
        if let Some((&pid, _)) = lane {
            if colours.contains(&fill) {
                bars.push(Bar { pid, x, width: w });
            } else if fill == "NONE" {
                outlined += 1;
            }
        }
    }
    (lanes, bars, outlined)
}

fn no_overlap(bars: &[Bar]) {
    let mut by_lane: BTreeMap<u64, Vec<&Bar>> = BTreeMap::new();
    for bar in bars {
        by_lane.entry(bar.pid).or_default().push(bar);
    }
    for (pid, mut lane) in by_lane {
        lane.sort_by(|a, b| a.x.total_cmp(&b.x));
        for pair in lane.windows(2) {
            assert!(
                pair[0].x + pair[0].width <= pair[1].x,
                "bars overlap on lane {pid}: {pair:?}"
            );
        }
    }
}

#[test]
fn the_chart_has_a_lane_per_worker_and_a_bar_per_task() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sleep.svg");
    let (output, lines) = run_with(
        &file,
        &["-p", "3", "sleep", "40", "40", "40", "40", "40", "40", "40"],
    );
    assert!(output.status.success(), "{}", show(&output));
    assert_eq!(lines.len(), 7);
    let svg = std::fs::read_to_string(&file).unwrap();
    let (lanes, bars, _) = chart(&svg);
    assert_eq!(lanes.keys().copied().collect::<BTreeSet<_>>(), pids(&lines));
    assert_eq!(bars.len(), 7, "{bars:?}");
    for pid in pids(&lines) {
        let tasks = lines.iter().filter(|l| l["pid"] == pid).count();
        let drawn = bars.iter().filter(|b| b.pid == pid).count();
        assert_eq!(drawn, tasks, "lane of PID {pid}");
    }
    no_overlap(&bars);
    assert!(
        svg.contains("procpool -p 3 sleep"),
        "the title names the command"
    );
}

#[test]
fn the_trace_matches_the_json_output() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("square.json");
    let (output, lines) = run_with(&file, &["-p", "2", "square", "0..40", "--chunksize", "3"]);
    assert!(output.status.success(), "{}", show(&output));
    let trace: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    for event in events {
        let ph = event["ph"].as_str().unwrap();
        assert!(["M", "X", "i"].contains(&ph), "{event}");
        assert!(event["pid"].is_u64() && event["tid"].is_u64(), "{event}");
        if ph != "M" {
            assert!(event["ts"].as_f64().unwrap() >= 0.0, "{event}");
        }
    }
    let spans: BTreeMap<u64, &Value> = events
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| (e["args"]["index"].as_u64().unwrap(), e))
        .collect();
    assert_eq!(spans.len(), 40);
    for line in &lines {
        let span = spans[&line["index"].as_u64().unwrap()];
        assert_eq!(span["pid"], line["pid"], "{span} vs {line}");
        assert_eq!(span["args"]["outcome"], "ok");
        assert_eq!(span["args"]["input"], line["index"].to_string());
        // elapsed_ms is whole microseconds; the trace keeps nanoseconds.
        let trace_ms = span["dur"].as_f64().unwrap() / 1e3;
        let json_ms = line["elapsed_ms"].as_f64().unwrap();
        assert!(
            (0.0..0.0011).contains(&(trace_ms - json_ms)),
            "{span} vs {line}"
        );
    }
    // Each worker is named, and runs one task at a time.
    for pid in pids(&lines) {
        assert!(
            events
                .iter()
                .any(|e| e["ph"] == "M" && e["name"] == "process_name" && e["pid"] == pid),
            "no name for {pid}"
        );
        let mut own: Vec<(f64, f64)> = spans
            .values()
            .filter(|e| e["pid"] == pid)
            .map(|e| (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap()))
            .collect();
        own.sort_by(|a, b| a.0.total_cmp(&b.0));
        for pair in own.windows(2) {
            assert!(pair[0].0 + pair[0].1 <= pair[1].0 + 1e-3, "{pair:?}");
        }
    }
    assert_eq!(trace["otherData"]["clock_uncertainty_us"], 0.0);
    assert_eq!(trace["otherData"]["merged_tasks"], 0);
}

#[test]
fn a_killed_worker_and_its_retry_show_in_the_trace_and_the_chart() {
    let dir = tempfile::tempdir().unwrap();
    // The tasks around the killed one last long enough to be bars of their own.
    let args = [
        "-p",
        "2",
        "--retries",
        "1",
        "misbehave",
        "hang=60",
        "signal=9",
        "hang=60",
    ];
    let file = dir.path().join("killed.json");
    let (output, lines) = run_with(&file, &args);
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let killed = lines.iter().find(|l| l["index"] == 1).unwrap();
    assert_eq!(killed["attempts"], 2);
    let trace: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let mut attempts: Vec<&Value> = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["args"]["index"] == 1)
        .collect();
    attempts.sort_by_key(|e| e["args"]["attempt"].as_u64());
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0]["args"]["attempt"], 1);
    assert_eq!(attempts[0]["args"]["retried"], true);
    assert_eq!(attempts[1]["args"]["attempt"], 2);
    assert_eq!(attempts[1]["pid"], killed["pid"]);
    assert!(
        attempts
            .iter()
            .all(|e| e["args"]["outcome"] == "worker died")
    );
    // The second attempt started after the first ended.
    let end = |e: &Value| e["ts"].as_f64().unwrap() + e["dur"].as_f64().unwrap();
    assert!(end(attempts[0]) <= attempts[1]["ts"].as_f64().unwrap());
    let instants = |name: &str| {
        events
            .iter()
            .filter(|e| e["ph"] == "i" && e["name"] == name)
            .count()
    };
    assert_eq!(instants("worker died"), 2);
    assert_eq!(instants("retry"), 1);

    let file = dir.path().join("killed.svg");
    let (output, lines) = run_with(&file, &args);
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let svg = std::fs::read_to_string(&file).unwrap();
    let (lanes, bars, outlined) = chart(&svg);
    let attempts: u64 = lines.iter().map(|l| l["attempts"].as_u64().unwrap()).sum();
    assert_eq!(bars.len() as u64, attempts, "{bars:?}\n{lines:?}\n{svg}");
    assert!(pids(&lines).iter().all(|pid| lanes.contains_key(pid)));
    // Both attempts of the retried task are outlined.
    assert_eq!(outlined, 2);
    no_overlap(&bars);
}

#[test]
fn a_png_decodes_at_the_size_asked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.png");
    let (output, _) = run_with(
        &file,
        &["-p", "2", "square", "0..10", "--timeline-size", "640x360"],
    );
    assert!(output.status.success(), "{}", show(&output));
    let image = image::open(&file).unwrap();
    assert_eq!((image.width(), image.height()), (640, 360));
}

#[test]
fn a_bad_file_name_is_a_usage_error_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["t.txt", "no/such/dir/t.svg"] {
        let file = dir.path().join(bad);
        let output = run(&["square", "0..3", "--timeline", file.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{}", show(&output));
        assert!(output.stdout.is_empty(), "{}", show(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().next().unwrap_or("");
        assert!(
            first.contains("--timeline") && first.contains(bad),
            "{stderr}"
        );
        assert!(!file.exists());
    }
    let output = run(&["square", "1", "--timeline-size", "640x360"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "size without a file: {}",
        show(&output)
    );
}

#[test]
fn pi_compare_puts_the_serial_runs_on_the_supervisor_lane() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pi.json");
    let compare = |file: &std::path::Path| {
        run(&[
            "pi",
            "--compare",
            "--seeds",
            "0..3",
            "--trials",
            "20000",
            "--repeats",
            "1",
            "-p",
            "2",
            "--timeline",
            file.to_str().unwrap(),
        ])
    };
    let output = compare(&file);
    assert!(output.status.success(), "{}", show(&output));
    let trace: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let phases: Vec<&str> = events
        .iter()
        .filter(|e| e["cat"] == "supervisor")
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    // A warm-up and one timed round: the first seed alone, then all seeds.
    assert_eq!(
        phases,
        [
            "serial: 1 seed",
            "serial: 3 seeds",
            "serial: 1 seed",
            "serial: 3 seeds"
        ]
    );
    let tasks = events.iter().filter(|e| e["cat"] == "task").count();
    assert_eq!(tasks, 6, "3 seeds on the pool, twice");
    let svg = dir.path().join("pi.svg");
    let output = compare(&svg);
    assert!(output.status.success(), "{}", show(&output));
    let svg = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    assert!(
        texts.contains(&"supervisor"),
        "a supervisor lane: {texts:?}"
    );
    let (r, g, b) = (90, 110, 160);
    let phase_fill = format!("#{r:02X}{g:02X}{b:02X}");
    assert!(
        doc.descendants()
            .any(|n| n.has_tag_name("rect") && n.attribute("fill") == Some(phase_fill.as_str())),
        "phases drawn"
    );
}

#[test]
fn a_job_that_failed_after_a_retry_is_one_bar_marked_retried() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = dir.path().join("jobs.txt");
    std::fs::write(&jobs, "true\nexit 3\necho hi\n").unwrap();
    let file = dir.path().join("jobs.json");
    let output = run(&[
        "jobs",
        jobs.to_str().unwrap(),
        "--no-logs",
        "--status",
        dir.path().join("status.tsv").to_str().unwrap(),
        "--retries",
        "1",
        "-p",
        "2",
        "--timeline",
        file.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let trace: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let spans: Vec<&Value> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .collect();
    assert_eq!(spans.len(), 3);
    // Job_IDs count lines from 0: `exit 3` is job 1.
    let failed = spans.iter().find(|e| e["args"]["index"] == 1).unwrap();
    assert_eq!(failed["args"]["outcome"], "failed");
    assert_eq!(failed["args"]["attempt"], 2);
    assert_eq!(failed["args"]["input"], "job 1");
    assert!(
        spans
            .iter()
            .filter(|e| e["args"]["index"] != 1)
            .all(|e| e["args"]["outcome"] == "ok" && e["args"]["attempt"] == 1)
    );
}

#[test]
fn a_stopped_run_still_draws_what_finished() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stopped.json");
    let mut child = std::process::Command::new(bin())
        .args([
            "-p",
            "2",
            "sleep",
            "10",
            "10",
            "20000",
            "20000",
            "--timeline",
        ])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The signal comes once both short tasks are printed, so both are done
    // however slow the machine is.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    for expected in ["task 0 slept 10 ms", "task 1 slept 10 ms"] {
        let line = lines.next().expect("a result line").unwrap();
        assert!(line.starts_with(expected), "{line}");
    }
    // SAFETY: kill on the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let trace: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let done: BTreeSet<u64> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X" && e["args"]["outcome"] == "ok")
        .map(|e| e["args"]["index"].as_u64().unwrap())
        .collect();
    assert_eq!(done, BTreeSet::from([0, 1]));
}

/// The same checks on the MPI backend (feature `mpi`, needs Open MPI): a
/// lane per worker rank named with its rank, host and PID, the trace's
/// times on rank 0's clock with the offsets' uncertainty in its metadata.
#[cfg(feature = "mpi")]
#[test]
fn on_mpi_lanes_are_ranks_and_the_trace_says_how_sure_its_clock_is() {
    let dir = tempfile::tempdir().unwrap();
    let sleeps = ["30", "30", "30", "30", "30", "30"];
    let lines_of = |name: &str| {
        let file = dir.path().join(name);
        let mut args = vec!["--backend", "mpi", "--json", "sleep"];
        args.extend(sleeps);
        args.extend(["--timeline", file.to_str().unwrap()]);
        let output = crate::mpi::mpirun(3, &args);
        assert!(output.status.success(), "{}", show(&output));
        let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v.get("index").is_some())
            .collect();
        (file, lines)
    };
    let (file, lines) = lines_of("mpi.json");
    let trace: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    for line in &lines {
        let span = events
            .iter()
            .find(|e| e["ph"] == "X" && e["args"]["index"] == line["index"])
            .unwrap();
        assert_eq!(span["pid"], line["pid"]);
        let trace_ms = span["dur"].as_f64().unwrap() / 1e3;
        assert!((0.0..0.0011).contains(&(trace_ms - line["elapsed_ms"].as_f64().unwrap())));
        let name = events
            .iter()
            .find(|e| e["name"] == "process_name" && e["pid"] == line["pid"])
            .unwrap();
        let expected = format!(
            "rank {} {} PID {}",
            line["rank"],
            line["host"].as_str().unwrap(),
            line["pid"]
        );
        assert!(
            name["args"]["name"].as_str().unwrap().ends_with(&expected),
            "{name}"
        );
    }
    let uncertainty = trace["otherData"]["clock_uncertainty_us"].as_f64().unwrap();
    assert!(uncertainty > 0.0 && uncertainty < 1e5, "{uncertainty} µs");

    let (file, lines) = lines_of("mpi.svg");
    let (lanes, bars, _) = chart(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(lanes.keys().copied().collect::<BTreeSet<_>>(), pids(&lines));
    assert_eq!(bars.len(), sleeps.len());
    no_overlap(&bars);
}

/// The spans of a trace file, by index.
fn spans_of(file: &Path) -> (Value, Vec<Value>) {
    let trace: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let spans = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .cloned()
        .collect();
    (trace, spans)
}

#[test]
fn flip_bars_are_named_after_their_images() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flip.json");
    let data = crate::util::root().join("data");
    let out = dir.path().join("out");
    let output = run(&[
        "-p",
        "2",
        "flip",
        data.join("sample_01.jpg").to_str().unwrap(),
        data.join("sample_02.jpg").to_str().unwrap(),
        "--format",
        "png",
        "--out",
        out.to_str().unwrap(),
        "--timeline",
        file.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", show(&output));
    let (_, spans) = spans_of(&file);
    let inputs: BTreeSet<&str> = spans
        .iter()
        .map(|e| e["args"]["input"].as_str().unwrap())
        .collect();
    assert_eq!(inputs, BTreeSet::from(["sample_01.jpg", "sample_02.jpg"]));
}

#[test]
fn pi_scaling_puts_each_pools_workers_on_lanes_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scaling.json");
    let output = run(&[
        "pi",
        "--scaling",
        "1..=2",
        "--seeds",
        "0..2",
        "--trials",
        "1000",
        "--repeats",
        "1",
        "--timeline",
        file.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", show(&output));
    let (trace, spans) = spans_of(&file);
    let workers: BTreeSet<u64> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "process_name" && e["args"]["name"] != "supervisor")
        .map(|e| e["pid"].as_u64().unwrap())
        .collect();
    // One worker, then two new ones: three lanes.
    assert_eq!(workers.len(), 3, "{workers:?}");
    let tasks = spans.iter().filter(|e| e["cat"] == "task").count();
    assert_eq!(tasks, 2 * 2 * 2, "2 seeds, warm-up and one round, 2 pools");
    let phases = spans.iter().filter(|e| e["cat"] == "supervisor").count();
    assert_eq!(phases, 4, "a serial warm-up and round per pool");
}

#[test]
fn beyond_the_limit_tasks_are_merged_and_the_files_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let limit = procpool_cli::timeline::Timeline::DEFAULT_LIMIT as u64;
    let total = limit + 5_000;
    let range = format!("0..{total}");
    let file = dir.path().join("many.json");
    let (output, lines) = run_with(&file, &["-p", "2", "square", &range]);
    assert!(output.status.success(), "{}", show(&output));
    assert_eq!(lines.len() as u64, total);
    let (trace, spans) = spans_of(&file);
    assert_eq!(trace["otherData"]["tasks"], total);
    assert_eq!(trace["otherData"]["merged_tasks"], 5_000);
    let single = spans.iter().filter(|e| e["cat"] == "task").count() as u64;
    let merged: u64 = spans
        .iter()
        .filter(|e| e["cat"] == "merged")
        .map(|e| e["args"]["tasks"].as_u64().unwrap())
        .sum();
    assert_eq!((single, merged), (limit, 5_000));
    let svg = dir.path().join("many.svg");
    let output = run(&[
        "-p",
        "2",
        "square",
        &range,
        "--timeline",
        svg.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", show(&output));
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(
        svg.contains("5000 after the first 10000 merged"),
        "the chart says so"
    );
    let (lanes, bars, _) = chart(&svg);
    assert_eq!(lanes.len(), 2);
    no_overlap(&bars);
}

#[test]
fn a_timeline_is_never_written_in_place_of_a_fifo_and_goes_through_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("f.svg");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
    let refused = run(&["square", "0..3", "--timeline", fifo.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2), "{}", show(&refused));
    assert!(refused.stdout.is_empty(), "refused before any work");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a regular file"));
    let target = dir.path().join("t.svg");
    std::fs::write(&target, "old").unwrap();
    let link = dir.path().join("l.svg");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let written = run(&["square", "0..3", "--timeline", link.to_str().unwrap()]);
    assert!(written.status.success(), "{}", show(&written));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::read_to_string(&target)
            .unwrap()
            .starts_with("<svg")
    );
}
