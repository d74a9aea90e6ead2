//! The sampling kernel: points of the unit square from `LANES` generators
//! seeded from the seed alone, counted inside the quarter circle, built for
//! the best instruction set this processor has.

use rand_pcg::rand_core::{Rng, SeedableRng};
use rand_pcg::{Pcg32, Pcg64Mcg};

use super::LANES;

/// Which compiled version of the sampling loop runs; all give the same counts.
///
/// ```
/// use procpool_cli::pi::{Kernel, count_inside_with};
/// let best = Kernel::best();
/// assert!(best.is_supported());
/// assert_eq!(
///     count_inside_with(best, 7, 1_001),
///     count_inside_with(Kernel::Portable, 7, 1_001),
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Built for the baseline of the target: runs anywhere.
    Portable,
    /// Built for x86-64 with AVX2.
    Avx2,
    /// Built for x86-64 with AVX-512 (F, DQ, VL).
    Avx512,
}

impl Kernel {
    /// Every kernel, slowest first.
    pub const ALL: [Kernel; 3] = [Kernel::Portable, Kernel::Avx2, Kernel::Avx512];

    /// Whether this processor can run the kernel.
    pub fn is_supported(self) -> bool {
        match self {
            Kernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The fastest kernel this processor runs.
    pub fn best() -> Kernel {
        Kernel::ALL
            .into_iter()
            .rev()
            .find(|k| k.is_supported())
            .unwrap_or(Kernel::Portable)
    }

    /// A short lowercase name: `portable`, `avx2`, `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512 => "avx512",
        }
    }
}

/// The generators for `seed`: a `Pcg64Mcg` seeded from the seed seeds one
/// `Pcg32` per lane, as the rand book advises for several streams.
fn lanes(seed: u64) -> [Pcg32; LANES] {
    let mut master = Pcg64Mcg::seed_from_u64(seed);
    std::array::from_fn(|_| Pcg32::from_rng(&mut master))
}

/// One 64-bit draw as the point (high half, low half) of a 2^32 x 2^32
/// grid; inside the quarter circle when x^2 + y^2 < 2^64, that is when the
/// 64-bit sum does not carry. Exact integer arithmetic: no rounding, so every
/// kernel agrees bit for bit.
#[inline(always)]
fn is_inside(draw: u64) -> bool {
    let (x, y) = (draw >> 32, draw & 0xffff_ffff);
    !(x * x).overflowing_add(y * y).1
}

/// `rounds` draws from every lane, counting the points inside.
#[inline(always)]
fn count_rounds(lanes: &mut [Pcg32; LANES], rounds: u64) -> u64 {
    let mut counts = [0u64; LANES];
    for _ in 0..rounds {
        for (lane, count) in lanes.iter_mut().zip(&mut counts) {
            *count += u64::from(is_inside(lane.next_u64()));
        }
    }
    counts.iter().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{LANES, Pcg32, count_rounds};

    #[target_feature(enable = "avx2")]
    pub(super) fn count_rounds_avx2(lanes: &mut [Pcg32; LANES], rounds: u64) -> u64 {
        count_rounds(lanes, rounds)
    }

    #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
    pub(super) fn count_rounds_avx512(lanes: &mut [Pcg32; LANES], rounds: u64) -> u64 {
        count_rounds(lanes, rounds)
    }
}

/// How many of `trials` points drawn for `seed` fall inside the quarter
/// circle, with the fastest kernel this processor runs.
///
/// ```
/// let inside = procpool_cli::pi::count_inside(0, 1_000_000);
/// assert!((4.0 * inside as f64 / 1e6 - std::f64::consts::PI).abs() < 0.01);
/// ```
pub fn count_inside(seed: u64, trials: u64) -> u64 {
    count_inside_with(Kernel::best(), seed, trials)
}

/// [`count_inside`] with a chosen kernel, for benchmarks and tests.
///
/// # Panics
///
/// If this processor cannot run `kernel` (see [`Kernel::is_supported`]).
pub fn count_inside_with(kernel: Kernel, seed: u64, trials: u64) -> u64 {
    count_inside_until(kernel, seed, trials, &|| false)
        .expect("a run that is never stopped finishes")
}

/// Rounds (of [`LANES`] points) between two looks at `stop`: a few
/// milliseconds of work, a negligible share of it spent looking.
pub(super) const ROUNDS_PER_BLOCK: u64 = 1 << 20;

/// [`count_inside_with`] that gives up, returning `None`, when `stop()` says
/// so; it is asked every [`ROUNDS_PER_BLOCK`] rounds. Blocks continue the same
/// generators, so the count does not depend on the block size.
pub(super) fn count_inside_until(
    kernel: Kernel,
    seed: u64,
    trials: u64,
    stop: &dyn Fn() -> bool,
) -> Option<u64> {
    assert!(
        kernel.is_supported(),
        "this processor cannot run the {} kernel",
        kernel.name()
    );
    let mut lanes = lanes(seed);
    let mut rounds = trials / LANES as u64;
    let mut inside = 0;
    while rounds > 0 {
        if stop() {
            return None;
        }
        let block = rounds.min(ROUNDS_PER_BLOCK);
        inside += match kernel {
            Kernel::Portable => count_rounds(&mut lanes, block),
            // SAFETY: the assert above checked that the CPU has these features.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { x86::count_rounds_avx2(&mut lanes, block) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { x86::count_rounds_avx512(&mut lanes, block) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("only the portable kernel is supported here"),
        };
        rounds -= block;
    }
    // The last trials % LANES points come from the first lanes, in turn.
    let rest = (trials % LANES as u64) as usize;
    let tail: u64 = lanes[..rest]
        .iter_mut()
        .map(|lane| u64::from(is_inside(lane.next_u64())))
        .sum();
    Some(inside + tail)
}

/// One sampled point of the unit square.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// From 0 up to 1.
    pub x: f64,
    /// From 0 up to 1.
    pub y: f64,
    /// Whether it lies inside the quarter circle, as the estimate counts it.
    pub inside: bool,
}

/// The points `seed` draws, in the order the estimate counts them: the first
/// `n` of them hold exactly [`count_inside`]`(seed, n)` points inside.
///
/// ```
/// let first: Vec<_> = procpool_cli::pi::points(3).take(1000).collect();
/// let inside = first.iter().filter(|p| p.inside).count() as u64;
/// assert_eq!(inside, procpool_cli::pi::count_inside(3, 1000));
/// ```
pub fn points(seed: u64) -> impl Iterator<Item = Point> {
    let mut lanes = lanes(seed);
    (0..LANES).cycle().map(move |lane| {
        let draw = lanes[lane].next_u64();
        let scale = 1.0 / 4_294_967_296.0;
        Point {
            x: (draw >> 32) as f64 * scale,
            y: (draw & 0xffff_ffff) as f64 * scale,
            inside: is_inside(draw),
        }
    })
}
