//! `procpool sleep` and `procpool misbehave`: diagnostics for seeing how the
//! pool handles slow, failing and crashing tasks (`--timeout`, `--retries`,
//! Ctrl-C, a worker killed by hand).

use clap::Args;
use procpool_cli::tasks::{Misbehave, Misbehavior, Sleep};
use serde_json::json;

use crate::cli::Global;
use crate::output::{Printer, report_failure, report_stop};
use crate::run::{build_pool, drive};

#[derive(Debug, Args)]
pub struct SleepArgs {
    /// Milliseconds each task sleeps
    #[arg(required = true, value_name = "MS")]
    millis: Vec<u64>,
}

#[derive(Debug, Args)]
pub struct MisbehaveArgs {
    /// What each task does: ok, fail, panic, exit=N, abort, segv, signal=N, hang=MS
    #[arg(required = true, value_name = "SPEC", value_parser = parse_misbehavior)]
    specs: Vec<Misbehavior>,
}

fn parse_misbehavior(text: &str) -> Result<Misbehavior, String> {
    let number = |v: &str| {
        v.parse()
            .map_err(|_| format!("{text:?}: {v:?} is not a number"))
    };
    Ok(match text.split_once('=') {
        None if text == "ok" => Misbehavior::Behave,
        None if text == "fail" => Misbehavior::Fail,
        None if text == "panic" => Misbehavior::Panic,
        None if text == "abort" => Misbehavior::Abort,
        None if text == "segv" => Misbehavior::Segfault,
        Some(("exit", v)) => Misbehavior::Exit(number(v)?),
        Some(("signal", v)) => Misbehavior::Signal(number(v)?),
        Some(("hang", v)) => Misbehavior::Hang(number(v)? as u64),
        _ => {
            return Err(format!(
                "{text:?} is not one of ok, fail, panic, exit=N, abort, segv, signal=N, hang=MS"
            ));
        }
    })
}

pub fn sleep(global: &Global, args: SleepArgs) -> anyhow::Result<u8> {
    let (pool, _) = build_pool(global)?;
    let mut printer = Printer::new(global.json);
    let total = args.millis.len() as u64;
    let finished = drive(
        &pool,
        global,
        Sleep,
        args.millis,
        (total, "tasks"),
        &mut printer,
        |p, ms, o| {
            if p.json {
                p.json_outcome(o, json!({}));
            } else if o.result.is_ok() {
                p.line(format_args!(
                    "task {} slept {ms} ms on PID {}",
                    o.index, o.pid
                ));
            }
            report_failure(o, format_args!("sleep {ms} ms"));
        },
    );
    if printer.json {
        printer.json_summary(&finished, pool.processes(), json!({}));
    }
    report_stop(&finished, "tasks");
    Ok(finished.exit_code())
}

pub fn misbehave(global: &Global, args: MisbehaveArgs) -> anyhow::Result<u8> {
    let (pool, _) = build_pool(global)?;
    let total = args.specs.len() as u64;
    let inputs = args.specs.into_iter().zip(0..);
    let mut printer = Printer::new(global.json);
    let finished = drive(
        &pool,
        global,
        Misbehave,
        inputs,
        (total, "tasks"),
        &mut printer,
        |p, (spec, _), o| {
            if p.json {
                p.json_outcome(o, json!({}));
            } else if o.result.is_ok() {
                p.line(format_args!("task {} ok on PID {}", o.index, o.pid));
            }
            report_failure(o, format_args!("{spec:?}"));
        },
    );
    if printer.json {
        printer.json_summary(&finished, pool.processes(), json!({}));
    }
    report_stop(&finished, "tasks");
    Ok(finished.exit_code())
}
