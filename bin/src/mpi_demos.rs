//! The tutorial's MPI examples on rsmpi (feature `mpi`): every rank calls the
//! same function and gets its own part of the result, as with mpi4py. Objects
//! travel encoded by the pool's codec (bincode), as mpi4py pickles them.

use std::num::NonZeroUsize;

use mpi::traits::{Communicator, Destination, Root, Source};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use procpool::mpi::{MpiError, MpiWorld};

/// What rank 0 sends to rank 1 in [`send`].
pub const GREETING: &str = "Hello, world";
/// The mean of the values [`scatter`] draws.
pub const MEAN: f64 = 10.0;
/// The standard deviation of the values [`scatter`] draws.
pub const DEVIATION: f64 = 5.0;

/// One rank's greeting in [`hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hello {
    /// This rank.
    pub rank: u32,
    /// How many ranks the job has.
    pub size: u32,
    /// This rank's process id.
    pub pid: u32,
    /// This rank's host.
    pub host: String,
}

/// `procpool mpi hello`: each rank's rank, the job's size, its PID and host.
pub fn hello(world: &MpiWorld) -> Hello {
    Hello {
        rank: world.rank(),
        size: world.size(),
        pid: std::process::id(),
        host: world.host().to_string(),
    }
}

/// What one rank did in [`send`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "did", rename_all = "lowercase")]
pub enum Exchange {
    /// Rank 0 sent `message` to rank `to`.
    Sent {
        /// The receiving rank.
        to: u32,
        /// What was sent.
        message: String,
    },
    /// Rank 1 received `message` from rank `from`.
    Received {
        /// The sending rank.
        from: u32,
        /// What arrived.
        message: String,
    },
    /// Any other rank: it takes no part.
    Watched,
}

/// `procpool mpi send`: rank 0 sends [`GREETING`] to rank 1.
///
/// # Errors
///
/// [`MpiError::TooFewRanks`] with one rank; [`MpiError::Protocol`] if what
/// arrives does not decode.
pub fn send(world: &MpiWorld) -> Result<Exchange, MpiError> {
    world.require("`mpi send` (rank 0 sends to rank 1)", 2)?;
    let comm = world.comm();
    match world.rank() {
        0 => {
            let bytes = encode(world, &GREETING)?;
            comm.process_at_rank(1).send(&bytes[..]);
            Ok(Exchange::Sent {
                to: 1,
                message: GREETING.into(),
            })
        }
        1 => {
            let (bytes, _) = comm.process_at_rank(0).receive_vec::<u8>();
            Ok(Exchange::Received {
                from: 0,
                message: decode(world, &bytes)?,
            })
        }
        _ => Ok(Exchange::Watched),
    }
}

/// The small record rank 0 broadcasts in [`bcast`], after the tutorial's
/// `{'key1': [7, 2.72], 'key2': ('abc', 'xyz')}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Some numbers.
    pub key1: Vec<f64>,
    /// Two words.
    pub key2: (String, String),
    /// The ranks that appended themselves to this copy.
    pub ranks: Vec<u32>,
}

impl Record {
    /// The record as rank 0 makes it.
    ///
    /// ```
    /// let record = procpool::backend::mpi_demos::Record::tutorial();
    /// assert_eq!(record.key1, [7.0, 2.72]);
    /// assert!(record.ranks.is_empty());
    /// ```
    pub fn tutorial() -> Record {
        Record {
            key1: vec![7.0, 2.72],
            key2: ("abc".into(), "xyz".into()),
            ranks: Vec::new(),
        }
    }
}

/// `procpool mpi bcast`: rank 0 broadcasts [`Record::tutorial`]; every rank
/// appends its rank to its own copy and returns it.
///
/// # Errors
///
/// [`MpiError::Protocol`] if the broadcast bytes do not decode.
pub fn bcast(world: &MpiWorld) -> Result<Record, MpiError> {
    let comm = world.comm();
    let root = comm.process_at_rank(0);
    let mut bytes = match world.rank() {
        0 => encode(world, &Record::tutorial())?,
        _ => Vec::new(),
    };
    // The receivers learn the size first, as a pickle-based bcast does.
    let mut len = bytes.len() as u64;
    root.broadcast_into(&mut len);
    bytes.resize(len as usize, 0);
    root.broadcast_into(&mut bytes[..]);
    let mut record: Record = decode(world, &bytes)?;
    record.ranks.push(world.rank());
    Ok(record)
}

/// One rank's part of [`scatter`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Share {
    /// This rank.
    pub rank: u32,
    /// How many values it received.
    pub count: usize,
    /// Their average.
    pub average: f64,
    /// Rank 0 only: the averages it gathered and their average.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gathered: Option<Gathered>,
}

/// What rank 0 computes from the gathered averages in [`scatter`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gathered {
    /// Every rank's average, by rank.
    pub averages: Vec<f64>,
    /// How many values were drawn in all.
    pub values: usize,
    /// The average of all values: the shares are equal, so the average of the averages.
    pub average: f64,
    /// The seed rank 0 drew with, to repeat the run.
    pub seed: u64,
}

/// `procpool mpi scatter`: rank 0 draws `per_rank` values for every rank
/// from a normal distribution ([`MEAN`], [`DEVIATION`]) with `seed`, and
/// scatters them; each rank averages its share; rank 0 gathers the averages.
pub fn scatter(world: &MpiWorld, per_rank: NonZeroUsize, seed: u64) -> Share {
    let comm = world.comm();
    let root = comm.process_at_rank(0);
    let per_rank = per_rank.get();
    let mut share = vec![0.0f64; per_rank];
    if world.rank() == 0 {
        let normal = Normal::new(MEAN, DEVIATION).expect("a positive deviation is valid");
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        let values: Vec<f64> = (0..per_rank * world.size() as usize)
            .map(|_| normal.sample(&mut rng))
            .collect();
        root.scatter_into_root(&values[..], &mut share[..]);
    } else {
        root.scatter_into(&mut share[..]);
    }
    let average = share.iter().sum::<f64>() / per_rank as f64;
    let gathered = if world.rank() == 0 {
        let mut averages = vec![0.0f64; world.size() as usize];
        root.gather_into_root(&average, &mut averages[..]);
        Some(Gathered {
            average: averages.iter().sum::<f64>() / averages.len() as f64,
            values: per_rank * averages.len(),
            averages,
            seed,
        })
    } else {
        root.gather_into(&average);
        None
    };
    Share {
        rank: world.rank(),
        count: per_rank,
        average,
        gathered,
    }
}

/// bincode's standard encoding, with a limit on what one decode may allocate.
const CODEC: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<{ 1 << 30 }>,
> = bincode::config::standard().with_limit::<{ 1 << 30 }>();

fn encode<T: Serialize + ?Sized>(world: &MpiWorld, value: &T) -> Result<Vec<u8>, MpiError> {
    bincode::serde::encode_to_vec(value, CODEC).map_err(|e| MpiError::Protocol {
        rank: world.rank(),
        message: e.to_string(),
    })
}

fn decode<T: serde::de::DeserializeOwned>(world: &MpiWorld, bytes: &[u8]) -> Result<T, MpiError> {
    let fail = |message: String| MpiError::Protocol {
        rank: world.rank(),
        message: format!("from rank 0: {message}"),
    };
    let (value, used) =
        bincode::serde::decode_from_slice(bytes, CODEC).map_err(|e| fail(e.to_string()))?;
    if used != bytes.len() {
        return Err(fail(format!("{} bytes left over", bytes.len() - used)));
    }
    Ok(value)
}
