//! `procpool whoami 0..6`: the tutorial's `parallel_test`, lines printed as
//! tasks complete (out of order, from different PIDs), then in input order.

use clap::Args;
use procpool_cli::tasks::{Whoami, WhoamiInput};
use serde_json::json;

use crate::cli::{Global, Numbers};
use crate::output::{Printer, report_failure, report_stop};
use crate::run::{build_pool, drive};

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    numbers: Numbers,
    /// Each task pauses a random 0..MS milliseconds, so completion order shows
    #[arg(long, value_name = "MS", default_value_t = 20)]
    max_delay_ms: u64,
}

/// Up to this many tasks, the PIDs are listed again in input order at the end.
const LISTED: u64 = 10_000;

pub fn run(global: &Global, args: WhoamiArgs) -> anyhow::Result<u8> {
    if args.numbers.numbers.iter().any(|r| *r.start() < 0) {
        anyhow::bail!("whoami takes numbers from 0 up");
    }
    let max_delay_ms = args.max_delay_ms;
    let inputs = args.numbers.iter().map(|x| WhoamiInput {
        x: x as u64,
        max_delay_ms,
    });
    let total = args.numbers.count();
    // Lines show as tasks complete: the point of the demonstration.
    let global = &crate::cli::Global {
        unordered: true,
        ..*global
    };
    let (pool, _) = build_pool(global)?;
    let mut printer = Printer::new(global.json);
    let mut pids = vec![None; if total <= LISTED { total as usize } else { 0 }];
    let finished = drive(
        &pool,
        global,
        Whoami,
        inputs,
        (total, "tasks"),
        &mut printer,
        |p, input, o| {
            if let Some(slot) = pids.get_mut(o.index as usize) {
                *slot = o.result.as_ref().ok().map(|me| me.pid);
            }
            if p.json {
                p.json_outcome(o, json!({}));
            } else if let Ok(me) = &o.result {
                let place = p
                    .rank_of(o.pid)
                    .map(|r| format!(", rank {} on {}", r.rank, r.host))
                    .unwrap_or_default();
                p.line(format_args!("x = {}, PID = {}{place}", me.x, me.pid));
            }
            report_failure(o, format_args!("x = {}", input.x));
        },
    );
    if printer.json {
        printer.json_summary(
            &finished,
            pool.processes(),
            json!({ "supervisor_pid": std::process::id() }),
        );
    } else if !pids.is_empty() && finished.stopped.is_none() {
        let pids: Vec<String> = pids
            .iter()
            .map(|pid| pid.map_or_else(|| "error".into(), |pid| pid.to_string()))
            .collect();
        printer.line(format_args!(
            "in input order, the PIDs: [{}]",
            pids.join(", ")
        ));
    }
    report_stop(&finished, "tasks");
    Ok(finished.exit_code())
}
