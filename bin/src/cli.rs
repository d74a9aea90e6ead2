//! The command line, as clap structs: global options and one subcommand each.

use std::ops::RangeInclusive;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands;

/// Python's multiprocessing.Pool for the command line: real worker processes,
/// results in input order, each tagged with the PID that computed it.
#[derive(Debug, Parser)]
#[command(name = "procpool", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Clone, Copy, Args)]
pub struct Global {
    /// Number of worker processes [default: available parallelism]
    #[arg(short, long, global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub processes: Option<u32>,
    /// Inputs sent to a worker per message [default: automatic, as Python's]
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub chunksize: Option<u32>,
    /// Print results as they complete instead of in input order
    #[arg(long, global = true)]
    pub unordered: bool,
    /// Print JSON Lines: one object per result, then one summary object
    #[arg(long, global = true)]
    pub json: bool,
    /// Report progress on stderr with --json too: the live line on a terminal, else a plain line every --progress-interval
    #[arg(long, global = true, overrides_with = "no_progress")]
    pub progress: bool,
    /// Never report progress [default: the live line when stderr is a terminal, a plain line every --progress-interval when it is not or NO_COLOR is set; nothing with --json]
    #[arg(long, global = true, overrides_with = "progress")]
    pub no_progress: bool,
    /// Seconds between the plain progress lines written when stderr is no terminal (a batch job's log)
    #[arg(long, global = true, value_name = "SECONDS", default_value = "30", value_parser = parse_seconds)]
    pub progress_interval: Duration,
    /// Stop a task's worker after this many seconds (SIGTERM, then SIGKILL)
    #[arg(long, global = true, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,
    /// Retry a task whose worker died or timed out up to this many times
    #[arg(long, global = true, value_name = "K", default_value_t = 0)]
    pub retries: u32,
    /// Replace each worker after it ran this many tasks
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub maxtasksperchild: Option<u64>,
    /// Let workers run on any CPU instead of binding each to one of its own (binding applies when there are no more workers than CPUs)
    #[arg(long, global = true)]
    pub no_pin: bool,
    /// Where workers run: local processes, or the other ranks of an MPI job (under mpirun)
    #[arg(long, global = true, value_enum, default_value_t = BackendKind::Local)]
    pub backend: BackendKind,
    /// Draw which worker ran what and when: FILE.svg or FILE.png (a chart), FILE.json (a trace for Perfetto)
    #[arg(long, global = true, value_name = "FILE", value_parser = crate::recording::parse_file)]
    pub timeline: Option<crate::recording::TimelineFile>,
    /// Size of the --timeline chart in pixels [default: 1200 wide, high enough for every worker]
    #[arg(long, global = true, value_name = "WxH", value_parser = parse_timeline_size, requires = "timeline")]
    pub timeline_size: Option<(u32, u32)>,
}

/// Parses `--timeline-size WxH`, each within what a chart can be.
fn parse_timeline_size(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = commands::pi::parse_size(text)?;
    let sizes = procpool_cli::plot::SIZES;
    if !sizes.contains(&w) || !sizes.contains(&h) {
        return Err(format!(
            "{text:?}: width and height must each be {} to {} pixels",
            sizes.start(),
            sizes.end()
        ));
    }
    Ok((w, h))
}

/// The values of `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// Worker processes started by procpool on this machine
    Local,
    /// Rank 0 supervises, ranks 1..n-1 work: start with `mpirun -n N procpool --backend mpi ...`
    Mpi,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Square integers on the pool: the tutorial's pool.map(np.square, range(6))
    Square(commands::square::SquareArgs),
    /// Report x and the worker's PID as tasks complete: the tutorial's parallel_test
    Whoami(commands::whoami::WhoamiArgs),
    /// Estimate pi by Monte Carlo, one task per seed: the tutorial's pi_mc over seeds
    Pi(commands::pi::PiArgs),
    /// Rotate images by 180 degrees and convert them (PDF by default): the tutorial's image_flipper
    Flip(commands::flip::FlipArgs),
    /// Run each line of a job file with sh -c on the pool, recording each job in a status TSV (as dSQ)
    Jobs(Box<commands::jobs::JobsArgs>),
    /// The tutorial's MPI examples, under mpirun: hello, send, bcast, scatter
    Mpi(commands::mpi::MpiArgs),
    /// Diagnostics: tasks that sleep this many milliseconds (try --timeout, Ctrl-C)
    Sleep(commands::diag::SleepArgs),
    /// Diagnostics: tasks that fail, panic, exit, abort or crash on purpose
    Misbehave(commands::diag::MisbehaveArgs),
    /// Print a shell completion script: procpool completions bash > /etc/bash_completion.d/procpool
    Completions(commands::help::CompletionsArgs),
    /// Print the manual page (roff): procpool man | man -l -
    Man,
}

/// Parses a positive number of seconds such as `2` or `0.25`.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(seconds > 0.0 && seconds < 1e9) {
        return Err(format!(
            "{text:?} must be more than 0 and less than 1e9 seconds"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses `5`, `0..6` (0 to 5, as Python's `range(6)`) or `2..=4`, as the
/// inclusive range of the numbers it names.
pub fn parse_range(text: &str) -> Result<RangeInclusive<i64>, String> {
    let number = |s: &str| -> Result<i64, String> {
        s.trim()
            .parse::<i64>()
            .map_err(|e| format!("{s:?} in {text:?} is not a whole number that fits 64 bits ({e})"))
    };
    let (start, end) = if let Some((a, b)) = text.split_once("..=") {
        (number(a)?, number(b)?)
    } else if let Some((a, b)) = text.split_once("..") {
        let (start, end) = (number(a)?, number(b)?);
        if start >= end {
            return Err(format!(
                "{text:?} is empty or reversed: a range a..b runs from a up to b-1"
            ));
        }
        (start, end - 1)
    } else {
        let n = number(text)?;
        (n, n)
    };
    if start > end {
        return Err(format!(
            "{text:?} is reversed: a range a..=b runs from a up to b"
        ));
    }
    Ok(start..=end)
}

/// Numbers and ranges given on the command line, in order, as one list.
#[derive(Debug, Clone, Args)]
pub struct Numbers {
    /// Numbers or ranges: 3, 0..6 (0 to 5, as Python's range(6)), 2..=4
    #[arg(required = true, value_name = "N|A..B", value_parser = parse_range, allow_negative_numbers = true)]
    pub numbers: Vec<RangeInclusive<i64>>,
}

impl Numbers {
    /// The numbers, lazily: a range is never held in memory.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.numbers.iter().flat_map(|r| r.clone())
    }

    /// How many numbers there are (a sum that cannot overflow: at most
    /// 4096 arguments of at most 2^64 numbers each).
    pub fn count(&self) -> u64 {
        let total: u128 = self
            .numbers
            .iter()
            .map(|r| (*r.end() as i128 - *r.start() as i128 + 1) as u128)
            .sum();
        u64::try_from(total).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_half_open_like_python() {
        assert_eq!(parse_range("0..6").unwrap(), 0..=5);
        assert_eq!(parse_range("2..=4").unwrap(), 2..=4);
        assert_eq!(parse_range("-3").unwrap(), -3..=-3);
        assert_eq!(
            parse_range("9223372036854775807").unwrap(),
            i64::MAX..=i64::MAX
        );
        assert_eq!(
            parse_range("0..=9223372036854775807").unwrap(),
            0..=i64::MAX
        );
    }

    #[test]
    fn bad_ranges_are_refused_with_the_input_named() {
        for bad in ["5..5", "6..0", "x", "1..y", "99999999999999999999", "3..=2"] {
            let e = parse_range(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn seconds_must_be_positive() {
        assert_eq!(parse_seconds("0.5").unwrap(), Duration::from_millis(500));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
    }
}
