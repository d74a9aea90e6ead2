//! The CLI skeleton: square and whoami through the real binary.

use crate::util::{run, show};

#[test]
fn square_prints_the_tutorials_squares_a_line_each() {
    let out = run(&["square", "0..6"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n1\n4\n9\n16\n25\n");
}

#[test]
fn square_takes_numbers_and_ranges_in_order() {
    let out = run(&[
        "-p",
        "3",
        "--chunksize",
        "2",
        "square",
        "5",
        "-2",
        "10..12",
        "--",
        "-1..=-1",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "25\n4\n100\n121\n1\n");
}

#[test]
fn an_overflowing_square_fails_alone_with_exit_1() {
    let out = run(&["square", "2", "3037000500", "3"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "4\nerror\n9\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("task 1 (input 3037000500)") && stderr.contains("overflows"),
        "{stderr}"
    );
}

#[test]
fn bad_ranges_are_usage_errors() {
    for bad in ["6..0", "3..3", "x"] {
        let out = run(&["square", bad]);
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(bad),
            "{}",
            show(&out)
        );
    }
}

#[test]
fn json_lines_carry_index_pid_and_output_then_a_summary() {
    let out = run(&["--json", "-p", "2", "square", "0..4"]);
    assert!(out.status.success(), "{}", show(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 5);
    for (i, line) in lines[..4].iter().enumerate() {
        assert_eq!(line["index"], i);
        assert_eq!(line["output"], (i * i) as u64);
        assert!(line["pid"].as_u64().unwrap() > 0);
    }
    assert_eq!(lines[4]["summary"]["tasks"], 4);
    assert_eq!(lines[4]["summary"]["ok"], 4);
}

#[test]
fn whoami_reports_several_worker_pids_none_the_supervisors() {
    let out = run(&["--json", "-p", "4", "whoami", "0..8"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let supervisor = lines.last().unwrap()["summary"]["supervisor_pid"]
        .as_u64()
        .unwrap();
    let pids: std::collections::BTreeSet<u64> = lines[..8]
        .iter()
        .map(|l| l["output"]["pid"].as_u64().unwrap())
        .collect();
    assert!(pids.len() >= 2, "{text}");
    assert!(!pids.contains(&supervisor), "{text}");
    let mut xs: Vec<u64> = lines[..8]
        .iter()
        .map(|l| l["output"]["x"].as_u64().unwrap())
        .collect();
    xs.sort_unstable();
    assert_eq!(xs, (0..8).collect::<Vec<_>>());
}

#[test]
fn whoami_prints_the_tutorials_lines_then_pids_in_input_order() {
    let out = run(&["-p", "3", "whoami", "0..6"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    let mut xs: Vec<&str> = lines[..6]
        .iter()
        .map(|l| {
            l.strip_prefix("x = ")
                .and_then(|r| r.split(',').next())
                .expect("x = N, PID = P")
        })
        .collect();
    xs.sort_unstable();
    assert_eq!(xs, ["0", "1", "2", "3", "4", "5"]);
    assert!(
        lines[6].starts_with("in input order, the PIDs: ["),
        "{text}"
    );
}

#[cfg(not(feature = "mpi"))]
#[test]
fn without_the_mpi_feature_mpi_says_how_to_get_it() {
    for args in [
        &["--backend", "mpi", "square", "1"][..],
        &["mpi", "hello"][..],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{}", show(&out));
        assert!(
            stderr.contains("built without MPI support") && stderr.contains("--features mpi"),
            "{}",
            show(&out)
        );
    }
}

#[test]
fn completions_and_the_manual_page_are_generated_for_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run(&["completions", shell]);
        assert!(out.status.success(), "{}", show(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        for subcommand in [
            "square",
            "whoami",
            "pi",
            "flip",
            "jobs",
            "sleep",
            "misbehave",
        ] {
            assert!(script.contains(subcommand), "{shell}: no {subcommand}");
        }
    }
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["man"]);
    assert!(out.status.success(), "{}", show(&out));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH procpool 1"),
        "{page}"
    );
    assert!(
        page.contains("--processes") || page.contains("\\-\\-processes"),
        "{page}"
    );
}
