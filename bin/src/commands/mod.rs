//! One module per subcommand: each turns its arguments into one library call
//! and hands the results to the printer.

pub mod diag;
pub mod flip;
pub mod help;
pub mod jobs;
pub mod mpi;
pub mod pi;
pub mod report;
pub mod square;
pub mod whoami;

use crate::cli::{Cli, Command};

/// Runs the chosen subcommand; returns the exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    crate::recording::start(&cli.global);
    let global = cli.global;
    let code = match cli.command {
        Command::Square(args) => square::run(&cli.global, args),
        Command::Whoami(args) => whoami::run(&cli.global, args),
        Command::Pi(args) => pi::run(&cli.global, args),
        Command::Mpi(args) => mpi::run(&cli.global, args),
        Command::Flip(args) => flip::run(&cli.global, args),
        Command::Jobs(args) => jobs::run(&cli.global, *args),
        Command::Sleep(args) => diag::sleep(&cli.global, args),
        Command::Misbehave(args) => diag::misbehave(&cli.global, args),
        Command::Completions(args) => help::completions(args),
        Command::Man => help::man(),
    }?;
    // What ran is drawn, also when tasks failed or a signal stopped the run.
    crate::recording::save(&global)?;
    Ok(code)
}
