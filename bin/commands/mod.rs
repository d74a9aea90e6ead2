//! One module per subcommand: each turns its arguments into one library call
//! and hands the results to the printer.

pub mod pi;
pub mod square;
pub mod whoami;

use crate::cli::{Cli, Command};

/// Runs the chosen subcommand; returns the exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Square(args) => square::run(&cli.global, args),
        Command::Whoami(args) => whoami::run(&cli.global, args),
        Command::Pi(args) => pi::run(&cli.global, args),
    }
}
