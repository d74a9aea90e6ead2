//! The `procpool` command: become a worker if asked, parse, run one
//! subcommand, exit with a code from the table in `run::exit`.

mod backend;
mod cli;
mod commands;
mod output;
mod run;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    procpool::serve_if_requested(&procpool::tasks::builtin());
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("procpool: {e:#}");
            ExitCode::from(run::exit::SETUP)
        }
    }
}
