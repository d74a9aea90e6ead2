//! `procpool mpi hello|send|bcast|scatter`: the tutorial's MPI examples, run
//! under `mpirun`. Every rank runs the command and prints its own lines, as
//! the tutorial's ranks do; mpirun collects them, in no set order.

use clap::{Args, Subcommand};

use crate::cli::Global;

/// Why `procpool mpi` and `--backend mpi` cannot run in this build.
#[cfg_attr(feature = "mpi", allow(dead_code))]
pub const NOT_BUILT: &str = "this procpool was built without MPI support: rebuild it with \
     `cargo build --release -p procpool-cli --features mpi` (needs Open MPI: see docs/mpi.md)";

#[derive(Debug, Args)]
pub struct MpiArgs {
    #[command(subcommand)]
    example: Example,
}

#[derive(Debug, Subcommand)]
enum Example {
    /// Every rank prints its rank, the job's size, its PID and host
    Hello,
    /// Rank 0 sends "Hello, world" to rank 1, which prints it
    Send,
    /// Rank 0 broadcasts a small record; every rank appends its rank and prints it
    Bcast,
    /// Rank 0 scatters normal values (mean 10, deviation 5); every rank averages
    /// its share; rank 0 gathers the averages and prints the full average
    Scatter {
        /// Values each rank receives
        #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        per_rank: u64,
        /// Seed for rank 0's draws [default: random, printed by rank 0]
        #[arg(long, value_name = "S")]
        seed: Option<u64>,
    },
}

impl Example {
    fn name(&self) -> &'static str {
        match self {
            Example::Hello => "hello",
            Example::Send => "send",
            Example::Bcast => "bcast",
            Example::Scatter { .. } => "scatter",
        }
    }
}

#[cfg(not(feature = "mpi"))]
pub fn run(_global: &Global, args: MpiArgs) -> anyhow::Result<u8> {
    anyhow::bail!("mpi {}: {NOT_BUILT}", args.example.name())
}

#[cfg(feature = "mpi")]
pub fn run(global: &Global, args: MpiArgs) -> anyhow::Result<u8> {
    use anyhow::Context;
    use procpool::mpi::MpiWorld;
    use procpool_cli::mpi_demos::{self as demos, Exchange};
    use serde_json::json;

    use crate::output::Printer;

    let world = MpiWorld::init().with_context(|| format!("mpi {}", args.example.name()))?;
    let mut printer = Printer::new(global.json);
    let rank = world.rank();
    match args.example {
        Example::Hello => {
            let me = demos::hello(&world);
            if printer.json {
                printer.line(json!(me));
            } else {
                printer.line(format_args!(
                    "Hello from rank {} of {} on {} (PID {})",
                    me.rank, me.size, me.host, me.pid
                ));
            }
        }
        Example::Send => {
            let exchange = demos::send(&world)?;
            if printer.json {
                if exchange != Exchange::Watched {
                    let mut object = json!(exchange);
                    object["rank"] = json!(rank);
                    printer.line(object);
                }
            } else {
                match exchange {
                    Exchange::Sent { to, message } => {
                        printer.line(format_args!("rank {rank} sent {message:?} to rank {to}"))
                    }
                    Exchange::Received { from, message } => printer.line(format_args!(
                        "rank {rank} received {message:?} from rank {from}"
                    )),
                    Exchange::Watched => {}
                }
            }
        }
        Example::Bcast => {
            let record = demos::bcast(&world)?;
            if printer.json {
                printer.line(json!({ "rank": rank, "record": record }));
            } else {
                printer.line(format_args!("rank {rank}: {}", json!(record)));
            }
        }
        Example::Scatter { per_rank, seed } => {
            let per_rank = std::num::NonZeroUsize::new(per_rank as usize)
                .context("--per-rank must be at least 1")?;
            let seed = seed.unwrap_or_else(rand::random);
            let share = demos::scatter(&world, per_rank, seed);
            if printer.json {
                printer.line(json!({
                    "rank": share.rank,
                    "count": share.count,
                    "average": share.average,
                }));
                if let Some(gathered) = &share.gathered {
                    printer.line(json!({ "summary": gathered }));
                }
            } else {
                printer.line(format_args!(
                    "rank {}: average of {} values = {:.4}",
                    share.rank, share.count, share.average
                ));
                if let Some(g) = &share.gathered {
                    printer.line(format_args!(
                        "rank 0 gathered {} averages: average of all {} values = {:.4} \
                         (drawn with mean {}, deviation {}, seed {})",
                        g.averages.len(),
                        g.values,
                        g.average,
                        demos::MEAN,
                        demos::DEVIATION,
                        g.seed
                    ));
                }
            }
        }
    }
    Ok(crate::run::exit::OK)
}
