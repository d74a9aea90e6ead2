//! `procpool flip data/*.jpg`: the tutorial's `image_flipper` mapped over
//! images on the pool, each rotated by 180 degrees and converted.

use std::path::PathBuf;

use clap::Args;
use procpool::TaskError;
use procpool_cli::flip::{
    DEFAULT_MAX_PIXELS, DEFAULT_QUALITY, FlipOptions, Format, Plan, PlanError,
};
use procpool_cli::tasks::Flip;
use serde_json::json;

use crate::cli::Global;
use crate::output::{Printer, report_stop};
use crate::run::{build_pool, drive, exit};
use crate::warn;

#[derive(Debug, Args)]
#[command(
    after_help = "Each output is <stem>_flipped.<format>, beside its input or in --out DIR. \
Images go to the workers one per message unless --chunksize says otherwise. \
Exit status: 0 all flipped, 1 some images failed, 2 usage error or colliding outputs \
(nothing flipped), 128+N stopped by signal N (130 SIGINT, 143 SIGTERM, 129 SIGHUP)."
)]
pub struct FlipArgs {
    /// Image files, folders (their images) or glob patterns
    #[arg(required = true, value_name = "IMAGE|FOLDER|PATTERN")]
    inputs: Vec<PathBuf>,
    /// Output format
    #[arg(short, long, default_value = "pdf", value_parser = parse_format,
          hide_possible_values = true, value_name = "pdf|png|jpg|webp|tiff|bmp")]
    format: Format,
    /// Write outputs into this folder (created when the first is written) instead of beside each input
    #[arg(short, long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Overwrite existing outputs
    #[arg(long)]
    force: bool,
    /// Refuse images with more pixels than this, before decoding (Pillow's limit by default)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_PIXELS,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_pixels: u64,
    /// JPEG quality for jpg and pdf, 1 to 100
    #[arg(long, value_name = "Q", default_value_t = DEFAULT_QUALITY,
          value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
}

fn parse_format(text: &str) -> Result<Format, String> {
    text.parse()
}

pub fn run(global: &Global, args: FlipArgs) -> anyhow::Result<u8> {
    let options = FlipOptions {
        format: args.format,
        quality: args.quality,
        max_pixels: args.max_pixels,
        force: args.force,
        ..FlipOptions::default()
    };
    let plan = match Plan::new(&args.inputs, args.out.as_deref(), options) {
        Ok(plan) => plan,
        Err(PlanError::Collisions(collisions)) => {
            for collision in &collisions {
                warn!("procpool: {collision}");
            }
            warn!(
                "procpool: nothing was flipped: {} output collision{} (rename the inputs, or flip them into separate --out folders)",
                collisions.len(),
                if collisions.len() == 1 { "" } else { "s" }
            );
            return Ok(exit::SETUP);
        }
        Err(e) => return Err(e.into()),
    };

    let mut printer = Printer::new(global.json);
    // Errors go to stderr in every mode, as JSON objects on stdout too with --json.
    for rejected in &plan.rejected {
        if printer.json {
            let argument = rejected.argument.to_string_lossy();
            printer.line(json!({ "input": argument, "error": rejected.cause }));
        }
        warn!("procpool: {rejected}");
    }
    let jobs = plan.jobs;
    let total = jobs.len() + plan.rejected.len();
    if jobs.is_empty() {
        if printer.json {
            printer.line(json!({ "summary": {
                "tasks": 0, "ok": 0, "failed": 0, "rejected": plan.rejected.len(),
                "exit_code": exit::TASKS_FAILED,
            }}));
        }
        warn!("procpool: no image to flip");
        return Ok(exit::TASKS_FAILED);
    }

    // One image per message unless --chunksize says otherwise: an image takes
    // a millisecond or more, so sending each alone costs little, balances the
    // load better than Python's chunks, and moves the progress bar steadily.
    let global = &Global {
        chunksize: Some(global.chunksize.unwrap_or(1)),
        ..*global
    };
    let (pool, _) = build_pool(global)?;
    let to_flip = jobs.len() as u64;
    let mut failed: Vec<PathBuf> = Vec::new();
    let finished = drive(
        &pool,
        global,
        Flip,
        jobs,
        (to_flip, "images"),
        &mut printer,
        |p, job, o| {
            let input = &job.input;
            if p.json {
                p.json_outcome(o, json!({ "input": input.to_string_lossy() }));
            }
            match &o.result {
                Ok(_) if p.json => {}
                Ok(flipped) => p.line(format_args!(
                    "{} -> {}",
                    input.display(),
                    flipped.path.display()
                )),
                Err(error) => match &**error {
                    // A task's own failure already names the file.
                    TaskError::Failed { message } => warn!("procpool: {message}"),
                    other => warn!("procpool: {}: {other}", input.display()),
                },
            }
            if o.result.is_err() {
                failed.push(input.clone());
            }
        },
    );

    failed.extend(plan.rejected.iter().map(|r| r.argument.clone()));
    let flipped = finished.ok;
    let mut code = finished.exit_code();
    if code == exit::OK && !failed.is_empty() {
        code = exit::TASKS_FAILED;
    }
    let seconds = finished.elapsed.as_secs_f64();
    if printer.json {
        let extra = json!({
            "format": args.format.extension(),
            "rejected": plan.rejected.len(),
            "exit_code": code,
        });
        printer.json_summary(&finished, pool.processes(), extra);
    } else {
        printer.line(format_args!(
            "flipped {flipped} of {total} images to {} in {seconds:.2} s ({:.0} images/s) on {} processes",
            args.format.extension().to_uppercase(),
            flipped as f64 / seconds.max(1e-9),
            pool.processes()
        ));
    }
    report_stop(&finished, "images");
    if !failed.is_empty() {
        let names: Vec<String> = failed.iter().map(|p| p.display().to_string()).collect();
        warn!(
            "procpool: {} of {total} failed: {}",
            failed.len(),
            names.join(", ")
        );
    }
    Ok(code)
}
