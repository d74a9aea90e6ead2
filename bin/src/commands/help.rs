//! `procpool completions SHELL` and `procpool man`: the command line's
//! description, generated from the same clap structs that parse it.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;
use crate::output::Printer;
use crate::run::exit;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell
    #[arg(value_enum)]
    shell: Shell,
}

/// Writes the completion script for the shell on stdout.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "procpool", &mut script);
    print_bytes(&script)
}

/// Writes the manual page (roff) on stdout.
pub fn man() -> anyhow::Result<u8> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    print_bytes(&page)
}

fn print_bytes(bytes: &[u8]) -> anyhow::Result<u8> {
    let mut printer = Printer::new(false);
    printer.line(String::from_utf8_lossy(bytes).trim_end());
    Ok(exit::OK)
}
