//! `procpool pi --seeds 0..4 --trials 500000`: the tutorial's Monte Carlo pi,
//! one task per seed; `--compare` times it serially against the pool,
//! `--scaling 1..=8` against pools of each size, `--plot FILE` draws it.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use procpool::{PoolError, TaskError};
use procpool_cli::pi::{self, Comparison, Experiment, Scaling, Summary, Timing};
use procpool_cli::plot::{self, Target};
use procpool_cli::tasks::Pi;
use serde_json::{Value, json};

use crate::cli::{Global, parse_range};
use crate::output::{Printer, report_failure, report_stop};
use crate::run::{build_pool, drive, exit};
use crate::warn;

#[derive(Debug, Args)]
pub struct PiArgs {
    /// Seeds, one task each: A..B (A to B-1, as Python's range), A..=B, or one seed
    #[arg(long, value_name = "A..B", default_value = "0..4", value_parser = parse_seeds, allow_hyphen_values = true)]
    seeds: Range<u64>,
    /// Random points drawn per seed
    #[arg(long, value_name = "N", default_value = "500000", value_parser = parse_trials, allow_hyphen_values = true)]
    trials: u64,
    /// Time the tutorial's cells: one seed alone, all seeds serially in this
    /// process, all seeds on the pool; print speedup and parallel efficiency
    #[arg(long, conflicts_with = "scaling")]
    compare: bool,
    /// Time pools of each size in A..B (1..9 or 1..=8 is 1 to 8 processes)
    /// against the serial run; with --plot, draw speedup against processes
    #[arg(long, value_name = "A..B", value_parser = parse_sizes)]
    scaling: Option<Range<usize>>,
    /// Timed runs per case for --compare and --scaling; medians are reported
    #[arg(long, value_name = "K", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    repeats: u32,
    /// Draw a figure to FILE (.png or .svg): the first seed's points in the
    /// quarter circle, or with --scaling the speedup
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Figure size in pixels [default: 800x800, or 800x600 with --scaling]
    #[arg(long, value_name = "WxH", value_parser = parse_size, requires = "plot")]
    size: Option<(u32, u32)>,
    /// How many of the first seed's points the figure shows
    #[arg(long, value_name = "N", default_value_t = 3000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    points: u32,
}

pub fn run(global: &Global, args: PiArgs) -> anyhow::Result<u8> {
    let mut experiment = Experiment::new(args.seeds.clone(), args.trials)?;
    if let Some(timeline) = crate::recording::shared() {
        experiment = experiment.timeline(timeline);
    }
    let default_size = if args.scaling.is_some() {
        (800, 600)
    } else {
        (800, 800)
    };
    // Checked before any work, so a long run never ends in an unsaveable plot.
    let target = match &args.plot {
        Some(path) => Some(Target::new(path, args.size.unwrap_or(default_size))?),
        None => None,
    };
    let mut printer = Printer::new(global.json);
    let code = if let Some(sizes) = args.scaling.clone() {
        scaling(
            global,
            &args,
            &experiment,
            sizes,
            &mut printer,
            target.as_ref(),
        )?
    } else {
        let code = if args.compare {
            compare(global, &args, &experiment, &mut printer)?
        } else {
            estimates(global, &experiment, &mut printer)?
        };
        // Not after an interrupt: the user asked to stop.
        if let Some(target) = target.as_ref().filter(|_| code < 128) {
            draw_points(target, &experiment, args.points)?;
        }
        code
    };
    Ok(code)
}

/// One task per seed: each estimate as it arrives, then mean and standard error.
fn estimates(
    global: &Global,
    experiment: &Experiment,
    printer: &mut Printer,
) -> anyhow::Result<u8> {
    // One seed per message unless --chunksize says otherwise: a seed is a
    // long task, so each estimate is printed (and safe on disk) as soon as
    // it is computed, instead of waiting for the rest of its chunk.
    let global = &Global {
        chunksize: Some(global.chunksize.unwrap_or(1)),
        ..*global
    };
    let (pool, _) = build_pool(global)?;
    let first = experiment.seeds().start;
    let width = experiment.seeds().end.to_string().len();
    let mut outputs = Vec::new();
    let finished = drive(
        &pool,
        global,
        Pi,
        experiment.inputs(),
        (experiment.seed_count(), "seeds"),
        printer,
        |p, _, o| {
            let seed = first + o.index;
            if let Ok(output) = &o.result {
                outputs.push(*output);
            }
            report_failure(o, format_args!("seed {seed}"));
            let estimate = o.result.as_ref().ok().map(|out| out.estimate());
            if p.json {
                p.json_outcome(o, json!({ "seed": seed, "estimate": estimate }));
            } else if let Some(estimate) = estimate {
                p.line(format_args!(
                    "seed {seed:>width$}  estimate {estimate:.7}  PID {}  {}",
                    o.pid,
                    human(o.elapsed())
                ));
            }
        },
    );
    let summary = Summary::of(&outputs);
    if printer.json {
        let extra = summary.map_or_else(|| json!({}), |s| summary_json(&s, experiment));
        printer.json_summary(&finished, pool.processes(), extra);
    } else if let Some(s) = summary {
        let of = if s.seeds as u64 == experiment.seed_count() {
            String::new()
        } else {
            format!(" ({} of {} seeds)", s.seeds, experiment.seed_count())
        };
        printer.line(format_args!(
            "mean {:.7} +/- {:.7} (standard error) over {} seeds x {} trials{of}",
            s.mean,
            s.standard_error,
            s.seeds,
            experiment.trials()
        ));
        printer.line(format_args!(
            "{:+.7} from pi = {:.2} standard errors",
            s.error(),
            s.error_in_standard_errors()
        ));
    }
    report_stop(&finished, "seeds");
    Ok(finished.exit_code())
}

fn summary_json(s: &Summary, experiment: &Experiment) -> Value {
    json!({
        "seeds": s.seeds,
        "trials_per_seed": experiment.trials(),
        "inside": s.inside,
        "mean": s.mean,
        "standard_error": s.standard_error,
        "spread": s.spread,
        "distance_from_pi": s.error(),
        "standard_errors_from_pi": s.error_in_standard_errors(),
    })
}

/// The tutorial's timing cells as a table.
fn compare(
    global: &Global,
    args: &PiArgs,
    experiment: &Experiment,
    printer: &mut Printer,
) -> anyhow::Result<u8> {
    let (pool, interrupt) = build_pool(global)?;
    let experiment = experiment.clone().interrupt_flag(interrupt);
    let c: Comparison = match experiment.compare(&pool, args.repeats as usize) {
        Ok(c) => c,
        Err(e) => return stopped(e),
    };
    let cases = [
        ("one_seed", "one seed alone", &c.one_seed),
        ("serial", "all seeds, serial", &c.serial),
        ("pool", "all seeds, pool.map", &c.pool),
    ];
    if printer.json {
        for (key, _, timing) in cases {
            let mut line = timing_json(timing);
            line["case"] = json!(key);
            printer.line(line);
        }
        printer.line(json!({ "summary": {
            "seeds": experiment.seed_count(),
            "trials_per_seed": experiment.trials(),
            "processes": c.processes,
            "repeats": args.repeats,
            "kernel": pi::Kernel::best().name(),
            "speedup": c.speedup(),
            "efficiency": c.efficiency(),
            "exit_code": exit::OK,
        }}));
        return Ok(exit::OK);
    }
    printer.line(format_args!(
        "pi: {} seeds x {} trials, {} worker processes, median of {} runs in rounds",
        experiment.seed_count(),
        experiment.trials(),
        c.processes,
        args.repeats
    ));
    printer.line(format_args!(
        "{:<22}{:>12}{:>12}{:>12}",
        "case", "median", "min", "max"
    ));
    for (_, label, timing) in cases {
        printer.line(format_args!(
            "{label:<22}{:>12}{:>12}{:>12}",
            human(timing.median()),
            human(timing.min()),
            human(timing.max())
        ));
    }
    printer.line(format_args!(
        "speedup {:.2}x (serial / pool), parallel efficiency {:.0}% (speedup / {} processes)",
        c.speedup(),
        c.efficiency() * 100.0,
        c.processes
    ));
    Ok(exit::OK)
}

/// Pools of each size against the serial run, as a table and maybe a figure.
fn scaling(
    global: &Global,
    args: &PiArgs,
    experiment: &Experiment,
    sizes: Range<usize>,
    printer: &mut Printer,
    target: Option<&Target>,
) -> anyhow::Result<u8> {
    let make_pool = |n: usize| -> anyhow::Result<procpool::Pool> {
        let global = Global {
            processes: Some(n as u32),
            ..*global
        };
        Ok(build_pool(&global)?.0)
    };
    let experiment = experiment.clone().interrupt_flag(crate::run::interrupt());
    let s: Scaling = match experiment.scaling(sizes, args.repeats as usize, make_pool) {
        Ok(s) => s,
        Err(e) => match e.downcast::<pi::Error>() {
            Ok(e) => return stopped(e),
            Err(e) => return Err(e),
        },
    };
    if printer.json {
        for p in &s.points {
            printer.line(json!({
                "processes": p.processes,
                "speedup": p.speedup,
                "efficiency": p.efficiency,
                "serial": timing_json(&p.serial),
                "pool": timing_json(&p.pool),
            }));
        }
        printer.line(json!({ "summary": {
            "seeds": experiment.seed_count(),
            "trials_per_seed": experiment.trials(),
            "repeats": args.repeats,
            "cores": cores(),
            "exit_code": exit::OK,
        }}));
    } else {
        printer.line(format_args!(
            "pi: {} seeds x {} trials, median of {} runs, serial and pool runs alternating",
            experiment.seed_count(),
            experiment.trials(),
            args.repeats,
        ));
        printer.line(format_args!(
            "{:>9}{:>12}{:>12}{:>10}{:>12}",
            "processes", "serial", "pool", "speedup", "efficiency"
        ));
        for p in &s.points {
            printer.line(format_args!(
                "{:>9}{:>12}{:>12}{:>9.2}x{:>11.0}%",
                p.processes,
                human(p.serial.median()),
                human(p.pool.median()),
                p.speedup,
                p.efficiency * 100.0
            ));
        }
    }
    if let Some(target) = target {
        let title = format!(
            "pi: {} seeds x {} trials, {} cores",
            experiment.seed_count(),
            experiment.trials(),
            cores()
        );
        plot::speedup(target, &s, &title)?;
    }
    Ok(exit::OK)
}

fn draw_points(target: &Target, experiment: &Experiment, count: u32) -> anyhow::Result<()> {
    let seed = experiment.seeds().start;
    let points: Vec<_> = pi::points(seed).take(count as usize).collect();
    let inside = points.iter().filter(|p| p.inside).count();
    let title = format!(
        "seed {seed}: {count} points, pi ~ {:.4}",
        4.0 * inside as f64 / f64::from(count)
    );
    plot::quarter_circle(target, &points, &title)?;
    Ok(())
}

/// The exit code for a comparison that could not finish, after saying why.
fn stopped(e: pi::Error) -> anyhow::Result<u8> {
    match e {
        pi::Error::Pool(PoolError::Interrupted { signal }) | pi::Error::Interrupted { signal } => {
            warn!(
                "procpool: interrupted by {}",
                procpool::signal::signal_name(signal)
            );
            Ok(exit::signal(signal))
        }
        pi::Error::Task { seed, error } => {
            warn!("procpool: seed {seed}: {error}");
            Ok(match error {
                TaskError::Cancelled => exit::SETUP,
                _ => exit::TASKS_FAILED,
            })
        }
        e => Err(e.into()),
    }
}

/// Median, min, max and every run of one case, in milliseconds.
fn timing_json(timing: &Timing) -> Value {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    json!({
        "median_ms": ms(timing.median()),
        "min_ms": ms(timing.min()),
        "max_ms": ms(timing.max()),
        "runs_ms": timing.runs.iter().map(|&d| ms(d)).collect::<Vec<_>>(),
    })
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A duration in the unit that suits it: `812.4 us`, `1.65 ms`, `2.310 s`.
fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1e-3 {
        format!("{:.1} us", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.3} s")
    }
}

/// Seeds as a range from 0 up, in the syntax of the other subcommands.
fn parse_seeds(text: &str) -> Result<Range<u64>, String> {
    let range = parse_range(text)?;
    if *range.start() < 0 {
        return Err(format!("{text:?}: seeds start at 0"));
    }
    Ok(*range.start() as u64..*range.end() as u64 + 1)
}

/// A positive whole number of trials; `_` may group digits (`500_000`).
fn parse_trials(text: &str) -> Result<u64, String> {
    match text.replace('_', "").parse::<u64>() {
        Ok(0) => Err(format!("{text:?}: need at least 1 trial per seed")),
        Ok(n) => Ok(n),
        Err(e) => Err(format!(
            "{text:?} is not a whole number of trials that fits 64 bits ({e})"
        )),
    }
}

/// Pool sizes from 1 up to 256, in the range syntax.
fn parse_sizes(text: &str) -> Result<Range<usize>, String> {
    let range = parse_range(text)?;
    if *range.start() < 1 || *range.end() > 256 {
        return Err(format!("{text:?}: pool sizes run from 1 to 256 processes"));
    }
    Ok(*range.start() as usize..*range.end() as usize + 1)
}

/// `WxH` in pixels, e.g. `800x600`.
pub fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{text:?} is not a size WIDTHxHEIGHT in pixels, such as 800x600");
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(bad)?;
    let w = w.trim().parse().map_err(|_| bad())?;
    let h = h.trim().parse().map_err(|_| bad())?;
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse_and_bad_ones_name_themselves() {
        assert_eq!(parse_seeds("0..4").unwrap(), 0..4);
        assert_eq!(parse_seeds("7").unwrap(), 7..8);
        assert_eq!(parse_trials("500_000").unwrap(), 500_000);
        assert_eq!(parse_sizes("1..=8").unwrap(), 1..9);
        assert_eq!(parse_size("640x480").unwrap(), (640, 480));
        for (bad, e) in [
            ("-2..3", parse_seeds("-2..3").unwrap_err()),
            ("0", parse_trials("0").unwrap_err()),
            ("1e6", parse_trials("1e6").unwrap_err()),
            ("0..4", parse_sizes("0..4").unwrap_err()),
            ("800", parse_size("800").unwrap_err()),
        ] {
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn durations_read_in_a_fitting_unit() {
        assert_eq!(human(Duration::from_micros(812)), "812.0 us");
        assert_eq!(human(Duration::from_micros(1650)), "1.65 ms");
        assert_eq!(human(Duration::from_millis(2310)), "2.310 s");
    }
}
