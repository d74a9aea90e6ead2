//! `procpool whoami 0..6`: the tutorial's `parallel_test`, lines printed as
//! tasks complete (out of order, from different PIDs), then in input order.

use clap::Args;
use procpool::tasks::{Whoami, WhoamiInput};
use serde_json::json;

use crate::cli::{Global, Numbers};
use crate::output::{Printer, report_failures};
use crate::run::{build_pool, drive};

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    numbers: Numbers,
    /// Each task pauses a random 0..MS milliseconds, so completion order shows
    #[arg(long, value_name = "MS", default_value_t = 20)]
    max_delay_ms: u64,
}

pub fn run(global: &Global, args: WhoamiArgs) -> anyhow::Result<u8> {
    let inputs: Vec<WhoamiInput> = args
        .numbers
        .iter()
        .map(|x| WhoamiInput {
            x: x as u64,
            max_delay_ms: args.max_delay_ms,
        })
        .collect();
    if args.numbers.iter().any(|x| x < 0) {
        anyhow::bail!("whoami takes numbers from 0 up");
    }
    // Lines show as tasks complete: the point of the demonstration.
    let global = &crate::cli::Global {
        unordered: true,
        ..*global
    };
    let (pool, _) = build_pool(global)?;
    let mut printer = Printer::new(global.json);
    let finished = drive(
        &pool,
        global,
        Whoami,
        inputs.clone(),
        &mut printer,
        |p, o| {
            if p.json {
                p.json_outcome(o, json!({}));
            } else if let Ok(me) = &o.result {
                let place = p
                    .rank_of(o.pid)
                    .map(|r| format!(", rank {} on {}", r.rank, r.host))
                    .unwrap_or_default();
                p.line(format_args!("x = {}, PID = {}{place}", me.x, me.pid));
            }
        },
    );
    if printer.json {
        printer.json_summary(
            &finished,
            pool.processes(),
            json!({ "supervisor_pid": std::process::id() }),
        );
    } else {
        let pids: Vec<String> = finished
            .outcomes
            .iter()
            .map(|o| {
                o.result
                    .as_ref()
                    .map_or_else(|_| "error".into(), |me| me.pid.to_string())
            })
            .collect();
        printer.line(format_args!(
            "in input order, the PIDs: [{}]",
            pids.join(", ")
        ));
    }
    report_failures(&finished, |i| format!("x = {}", inputs[i].x));
    Ok(finished.exit_code())
}
