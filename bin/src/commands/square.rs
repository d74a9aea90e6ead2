//! `procpool square 0..6`: the tutorial's `pool.map(np.square, range(6))`,
//! one square per line in input order, streamed: `square 0..1000000000 |
//! head` prints at once, and memory stays flat whatever the range.

use clap::Args;
use procpool_cli::tasks::Square;
use serde_json::json;

use crate::cli::{Global, Numbers};
use crate::output::{Printer, report_failure, report_stop};
use crate::run::{build_pool, drive};

#[derive(Debug, Args)]
pub struct SquareArgs {
    #[command(flatten)]
    numbers: Numbers,
}

pub fn run(global: &Global, args: SquareArgs) -> anyhow::Result<u8> {
    let (pool, _) = build_pool(global)?;
    let mut printer = Printer::new(global.json);
    let unordered = global.unordered;
    // Line n is input n's square; results that come after a gap (a stop
    // left an earlier input unfinished) name their input instead.
    let mut next = 0;
    let finished = drive(
        &pool,
        global,
        Square,
        args.numbers.iter(),
        (args.numbers.count(), "squares"),
        &mut printer,
        |p, &x, o| {
            if p.json {
                p.json_outcome(o, json!({ "input": x }));
            } else {
                let in_line = !unordered && o.index == next;
                next = o.index + 1;
                match (&o.result, in_line) {
                    (Ok(v), true) => p.line(v),
                    (Ok(v), false) => p.line(format_args!("{x}^2 = {v} (PID {})", o.pid)),
                    (Err(_), true) => p.line("error"),
                    (Err(_), false) => {}
                }
            }
            report_failure(o, format_args!("input {x}"));
        },
    );
    if printer.json {
        printer.json_summary(&finished, pool.processes(), json!({}));
    }
    report_stop(&finished, "tasks");
    Ok(finished.exit_code())
}
