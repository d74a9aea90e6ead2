//! The `procpool` command: become a worker if asked, parse, run one
//! subcommand, exit with a code from the table in `run::exit`.

mod backend;
mod cli;
mod commands;
mod live;
mod output;
mod recording;
mod run;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    procpool::init();
    quiet_panics();
    let cli = cli::Cli::parse();
    if let Err(e) = run::install_signals() {
        warn!("procpool: cannot handle signals: {e}");
        return ExitCode::from(run::exit::SETUP);
    }
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            warn!("procpool: {}", output::causes(e.as_ref()));
            match e.downcast_ref::<procpool::PoolError>() {
                // Stopped while the workers started: nothing ran.
                Some(procpool::PoolError::Interrupted { signal }) => {
                    ExitCode::from(run::exit::signal(*signal))
                }
                _ => ExitCode::from(run::exit::SETUP),
            }
        }
    }
}

/// A panic is a bug, but the user still gets one line, not a backtrace; one
/// on procpool's own threads (a dependency's, which the library turns into
/// an error) prints nothing here.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        if thread
            .name()
            .is_some_and(|name| name.starts_with("procpool-"))
        {
            return;
        }
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        warn!("procpool: internal error{place}: {message}");
    }));
}
