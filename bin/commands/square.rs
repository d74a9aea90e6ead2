//! `procpool square 0..6`: the tutorial's `pool.map(np.square, range(6))`.

use clap::Args;
use procpool::tasks::Square;
use serde_json::json;

use crate::cli::{Global, Numbers};
use crate::output::{Printer, report_failures};
use crate::run::{build_pool, drive};

#[derive(Debug, Args)]
pub struct SquareArgs {
    #[command(flatten)]
    numbers: Numbers,
}

pub fn run(global: &Global, args: SquareArgs) -> anyhow::Result<u8> {
    let inputs: Vec<i64> = args.numbers.iter().collect();
    let (pool, _) = build_pool(global)?;
    let mut printer = Printer::new(global.json);
    let unordered = global.unordered;
    let finished = drive(
        &pool,
        global,
        Square,
        inputs.clone(),
        &mut printer,
        |p, o| {
            if p.json {
                p.json_outcome(o, json!({ "input": inputs[o.index as usize] }));
            } else if let (true, Ok(v)) = (unordered, &o.result) {
                let x = inputs[o.index as usize];
                p.line(format_args!("{x}^2 = {v} (PID {})", o.pid));
            }
        },
    );
    if printer.json {
        printer.json_summary(&finished, pool.processes(), json!({}));
    } else if !unordered {
        let values: Vec<String> = finished
            .outcomes
            .iter()
            .map(|o| {
                o.result
                    .as_ref()
                    .map_or_else(|_| "error".to_string(), |v| v.to_string())
            })
            .collect();
        printer.line(format_args!("[{}]", values.join(", ")));
    }
    report_failures(&finished, |i| format!("input {}", inputs[i]));
    Ok(finished.exit_code())
}
