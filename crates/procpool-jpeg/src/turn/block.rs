//! One block's coefficients: their zig-zag order, which change sign when
//! the block turns, requantising from one table to another, and the DCT
//! basis the straddling blocks are made with.

use std::sync::LazyLock;

/// Natural (row-major) index of each zig-zag position.
pub(super) const ZIGZAG: [usize; 64] = zigzag();

pub(super) const fn zigzag() -> [usize; 64] {
    let mut order = [0usize; 64];
    let mut k = 0;
    let mut diagonal: usize = 0;
    while diagonal < 15 {
        // Even diagonals run up (row falling), odd ones down.
        let low = diagonal.saturating_sub(7);
        let high = if diagonal < 7 { diagonal } else { 7 };
        let mut i = 0;
        while i <= high - low {
            let row = if diagonal.is_multiple_of(2) {
                high - i
            } else {
                low + i
            };
            order[k] = row * 8 + (diagonal - row);
            k += 1;
            i += 1;
        }
        diagonal += 1;
    }
    order
}

/// For each zig-zag position, its place in a column-major block
/// (horizontal frequency times eight plus vertical frequency).
pub(super) const ZIGZAG_COLUMNS: [usize; 64] = {
    let mut order = [0usize; 64];
    let mut k = 0;
    while k < 64 {
        order[k] = (ZIGZAG[k] % 8) * 8 + ZIGZAG[k] / 8;
        k += 1;
    }
    order
};

/// For each place in a column-major block, its zig-zag position.
pub(super) const COLUMN_MAJOR: [usize; 64] = {
    let mut order = [0usize; 64];
    let mut k = 0;
    while k < 64 {
        order[ZIGZAG_COLUMNS[k]] = k;
        k += 1;
    }
    order
};

/// `sums` times `reciprocal`, rounded half away from zero, within ±1023.
#[inline(always)]
pub(super) fn quantise(sums: &[f32; 8], reciprocal: &[f32; 8]) -> [i16; 8] {
    let mut out = [0i16; 8];
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_add_ps, _mm_and_ps, _mm_cvttps_epi32, _mm_loadu_ps, _mm_max_ps, _mm_min_ps,
            _mm_mul_ps, _mm_or_ps, _mm_packs_epi32, _mm_set1_ps, _mm_storeu_si128,
        };
        // SAFETY: SSE2 is part of x86_64; the loads read four floats of
        // eight-float arrays at 0 and 4, the store eight i16 of `out`.
        unsafe {
            let half = _mm_set1_ps(0.5);
            let sign = _mm_set1_ps(-0.0);
            let (low, high) = (_mm_set1_ps(-1023.0), _mm_set1_ps(1023.0));
            let round = |at: usize| {
                let x = _mm_mul_ps(
                    _mm_loadu_ps(sums.as_ptr().add(at)),
                    _mm_loadu_ps(reciprocal.as_ptr().add(at)),
                );
                let x = _mm_add_ps(x, _mm_or_ps(half, _mm_and_ps(x, sign)));
                // (A NaN, which finite sums never give, would become 1023.)
                _mm_cvttps_epi32(_mm_max_ps(_mm_min_ps(x, high), low))
            };
            let packed = _mm_packs_epi32(round(0), round(4));
            _mm_storeu_si128(out.as_mut_ptr().cast(), packed);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for ((o, &s), &r) in out.iter_mut().zip(sums).zip(reciprocal) {
        let x = s * r;
        *o = clamp((x + 0.5f32.copysign(x)) as i32);
    }
    out
}

/// Bit `k` set where zig-zag coefficient `k` has an odd horizontal plus
/// vertical frequency: those change sign when a block turns by 180 degrees.
pub(super) const ODD: u64 = odd();

pub(super) const fn odd() -> u64 {
    let mut mask = 0u64;
    let mut k = 0;
    while k < 64 {
        let n = ZIGZAG[k];
        if (n / 8 + n % 8) % 2 == 1 {
            mask |= 1 << k;
        }
        k += 1;
    }
    mask
}

/// From the input's quantisation of a component to the output's, in
/// zig-zag order.
pub(super) struct Requant {
    pub(super) q_in: [i32; 64],
    pub(super) q_out: [i32; 64],
    pub(super) same: bool,
    /// What dequantises the input (zig-zag order), and the reciprocal of
    /// the output's quantiser (in the column-major order of
    /// [`Turn::mixed`]'s sums), as floats.
    pub(super) dequantise: [f32; 64],
    pub(super) reciprocal: [f32; 64],
}

impl Requant {
    pub(super) fn new(q_in: &[u16; 64], q_out: &[u16; 64]) -> Requant {
        Requant {
            q_in: q_in.map(i32::from),
            q_out: q_out.map(i32::from),
            same: q_in == q_out,
            dequantise: q_in.map(f32::from),
            reciprocal: std::array::from_fn(|i| 1.0 / f32::from(q_out[COLUMN_MAJOR[i]])),
        }
    }

    /// Coefficient `k` (already turned) requantised.
    #[inline(always)]
    pub(super) fn one(&self, k: usize, value: i32) -> i32 {
        let value = value * self.q_in[k];
        let half = self.q_out[k] / 2;
        if value < 0 {
            (value - half) / self.q_out[k]
        } else {
            (value + half) / self.q_out[k]
        }
    }
}

/// Baseline JPEG codes values of at most 11 bits (DC differences) and 10
/// bits (AC): within ±1023 every difference fits.
pub(super) fn clamp(value: i32) -> i16 {
    value.clamp(-1023, 1023) as i16
}

/// The orthonormal 8-point DCT basis: `A[x][u]` = c(u)/2 cos((2x+1)uπ/16).
pub(super) static BASIS: LazyLock<[[f64; 8]; 8]> = LazyLock::new(|| {
    std::array::from_fn(|x| {
        std::array::from_fn(|u| {
            let c = if u == 0 {
                std::f64::consts::FRAC_1_SQRT_2
            } else {
                1.0
            };
            let angle = (2 * x + 1) as f64 * u as f64 * std::f64::consts::PI / 16.0;
            c / 2.0 * angle.cos()
        })
    })
});

/// A linear map of one axis of a block's coefficients: `m[w][v]` takes
/// input frequency `w` to output frequency `v`.
pub(super) type Matrix = [[f32; 8]; 8];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zigzag_order_starts_and_ends_as_jpeg_has_it() {
        assert_eq!(ZIGZAG[..10], [0, 1, 8, 16, 9, 2, 3, 10, 17, 24]);
        assert_eq!(ZIGZAG[60..], [47, 55, 62, 63]);
        let mut sorted = ZIGZAG;
        sorted.sort_unstable();
        assert!(sorted.iter().enumerate().all(|(i, &n)| i == n));
    }
}
