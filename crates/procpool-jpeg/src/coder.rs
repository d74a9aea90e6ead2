//! Huffman coding of quantised blocks for the turn: codes and values are
//! written without branching into a scratch buffer (eight bytes stored at
//! every code, the position moved by the whole bytes written), and the
//! zero bytes that must follow each 0xFF are put in by one pass at the end.

use std::cell::Cell;

use super::find_ff;

thread_local! {
    /// The scratch buffer of the last [`Coder`], for the next image.
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A Huffman table for encoding: each symbol's code and length, as
/// `code << 8 | length` (0 when the table has no code for it).
pub(super) struct Code {
    packed: [u32; 256],
}

impl Code {
    pub fn new(counts: &[u8], symbols: &[u8]) -> Code {
        let mut table = Code { packed: [0; 256] };
        let mut code = 0u32;
        let mut symbols = symbols.iter();
        for (length, &count) in (1..=16u32).zip(counts) {
            for _ in 0..count {
                if let Some(&symbol) = symbols.next() {
                    table.packed[usize::from(symbol)] = (code & 0xFFFF) << 8 | length;
                }
                code += 1;
            }
            code <<= 1;
        }
        table
    }

    /// Whether every symbol of values within ±1023 has a code (sizes to 11
    /// for DC differences, to 10 with any run for AC values).
    pub fn is_complete(&self, dc: bool) -> bool {
        let has = |s: usize| self.packed[s] & 0xFF > 0;
        if dc {
            (0..=11).all(has)
        } else {
            let ac = (0..16).flat_map(|run| (1..=10).map(move |size| run << 4 | size));
            [0x00, 0xF0].into_iter().chain(ac).all(has)
        }
    }
}

/// Bytes enough for one block's codes (a DC code and value of at most 27
/// bits, 63 AC ones of at most 26, three runs of sixteen zeros and the
/// end-of-block code of at most 16: 217 bytes), a power of two.
const WINDOW: usize = 256;

/// Entropy-coded data being written.
pub(super) struct Coder {
    /// Written bytes, not yet stuffed, and room after them.
    scratch: Vec<u8>,
    pos: usize,
    /// Bits not yet whole bytes, from the top.
    acc: u64,
    filled: u32,
}

impl Coder {
    /// A coder for about `bytes` bytes of data.
    pub fn new(bytes: usize) -> Coder {
        let mut scratch = SCRATCH.take();
        if scratch.len() < bytes + WINDOW + 8 {
            scratch.resize(bytes + WINDOW + 8, 0);
        }
        Coder {
            scratch,
            pos: 0,
            acc: 0,
            filled: 0,
        }
    }

    /// Room for a block's codes, and the state to write them with.
    #[inline(always)]
    pub fn block(&mut self) -> Put<'_> {
        if self.scratch.len() < self.pos + WINDOW + 8 {
            self.grow();
        }
        let window = &mut self.scratch[self.pos..self.pos + WINDOW + 8];
        Put {
            window: window.try_into().expect("a window"),
            at: 0,
            acc: self.acc,
            filled: self.filled,
        }
    }

    #[inline(never)]
    fn grow(&mut self) {
        let len = (self.scratch.len() * 2).max(self.pos + WINDOW + 8);
        self.scratch.resize(len, 0);
    }

    /// Takes back the state a [`Put`] left.
    #[inline(always)]
    pub fn done(&mut self, (written, acc, filled): (usize, u64, u32)) {
        self.pos += written;
        (self.acc, self.filled) = (acc, filled);
    }

    /// Appends the data to `out`, the last byte padded with ones, a zero
    /// after every 0xFF.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        let pad = (8 - self.filled % 8) % 8;
        let mut put = self.block();
        if pad > 0 {
            put.add((1 << pad) - 1, pad);
        }
        put.flush();
        let state = put.state();
        self.done(state);
        let mut rest = &self.scratch[..self.pos];
        out.reserve(rest.len() + rest.len() / 128 + 2);
        while let Some(at) = find_ff(rest) {
            out.extend_from_slice(&rest[..=at]);
            out.push(0);
            rest = &rest[at + 1..];
        }
        out.extend_from_slice(rest);
        SCRATCH.set(self.scratch);
    }
}

/// Writing one block: the coder's state, for the compiler to keep in
/// registers.
pub(super) struct Put<'a> {
    /// Where the block's bytes go, and how many are written.
    window: &'a mut [u8; WINDOW + 8],
    at: usize,
    acc: u64,
    filled: u32,
}

impl Put<'_> {
    /// Appends the low `length` bits of `bits` (1 to 32 of them) and
    /// writes out the whole bytes.
    #[inline(always)]
    pub fn bits(&mut self, bits: u32, length: u32) {
        self.add(bits, length);
        self.flush();
    }

    /// Appends the low `length` bits of `bits` (1 to 32 of them), to be
    /// written out by the next [`Put::bits`]: at most 40 bits may wait.
    #[inline(always)]
    fn add(&mut self, bits: u32, length: u32) {
        debug_assert!((1..=32).contains(&length) && self.filled + length <= 64);
        self.acc |= u64::from(bits) << (64 - self.filled - length);
        self.filled += length;
    }

    /// Writes out the whole bytes (at most seven).
    #[inline(always)]
    fn flush(&mut self) {
        let whole = self.filled >> 3;
        // `at` stays below WINDOW: the mask only spares the bounds check.
        let at = self.at & (WINDOW - 1);
        self.window[at..at + 8].copy_from_slice(&self.acc.to_be_bytes());
        self.at += whole as usize;
        self.acc <<= whole * 8;
        self.filled &= 7;
    }

    /// A value's size category and its bits as JPEG codes them (a negative
    /// value as its complement).
    #[inline(always)]
    fn magnitude(value: i32) -> (u32, u32) {
        let size = 32 - value.unsigned_abs().leading_zeros();
        let bits = (value + (value >> 31)) as u32 & ((1u32 << size) - 1);
        (size, bits)
    }

    /// A DC coefficient `value`, coded as its difference from `prediction`.
    #[inline(always)]
    pub fn dc(&mut self, value: i32, prediction: &mut i32, code: &Code) {
        let (size, bits) = Self::magnitude(value - *prediction);
        *prediction = value;
        let packed = code.packed[size as usize];
        self.bits((packed >> 8) << size | bits, (packed & 0xFF) + size);
    }

    /// An AC coefficient `value` (not zero; beyond ±1023, which baseline
    /// JPEG cannot code, it is clamped) after `run` zeros.
    #[inline(always)]
    pub fn ac(&mut self, run: u32, value: i32, code: &Code) {
        let (bits, length) = self.ac_code(run, value, code);
        self.bits(bits, length);
    }

    /// As [`Put::ac`], its bits left to the next [`Put::bits`] (which any
    /// other method calls, [`Put::ac`] above all): a block's values go in
    /// pairs, one write for two.
    #[inline(always)]
    pub fn ac_waiting(&mut self, run: u32, value: i32, code: &Code) {
        let (bits, length) = self.ac_code(run, value, code);
        self.add(bits, length);
    }

    /// The runs of sixteen zeros before an AC coefficient, written, and its
    /// code and value bits with their length (at most 26).
    #[inline(always)]
    fn ac_code(&mut self, mut run: u32, value: i32, code: &Code) -> (u32, u32) {
        while run >= 16 {
            let zrl = code.packed[0xF0];
            self.bits(zrl >> 8, zrl & 0xFF);
            run -= 16;
        }
        let (mut size, mut bits) = Self::magnitude(value);
        if size > 10 {
            (size, bits) = Self::magnitude(value.clamp(-1023, 1023));
        }
        let packed = code.packed[(run << 4 | size) as usize];
        ((packed >> 8) << size | bits, (packed & 0xFF) + size)
    }

    /// The end-of-block code.
    #[inline(always)]
    pub fn end_of_block(&mut self, code: &Code) {
        let eob = code.packed[0];
        self.bits(eob >> 8, eob & 0xFF);
    }

    /// One block in zig-zag order, the DC value within ±1023: its DC difference,
    /// then runs of zeros and values up to the end-of-block code.
    #[inline(always)]
    pub fn dense(&mut self, block: &[i16; 64], prediction: &mut i32, dc: &Code, ac: &Code) {
        self.dc(i32::from(block[0]), prediction, dc);
        let mut nonzero = nonzero_mask(block) & !1;
        let mut last = 0u32;
        while nonzero != 0 {
            let k = nonzero.trailing_zeros();
            nonzero &= nonzero - 1;
            self.ac(k - last - 1, i32::from(block[k as usize]), ac);
            last = k;
        }
        if last != 63 {
            self.end_of_block(ac);
        }
    }

    /// The state to hand back with [`Coder::done`].
    #[inline(always)]
    pub fn state(&self) -> (usize, u64, u32) {
        (self.at, self.acc, self.filled)
    }
}

/// Bit `k` set where coefficient `k` is not zero.
#[inline(always)]
fn nonzero_mask(block: &[i16; 64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi16, _mm_loadu_si128, _mm_movemask_epi8, _mm_packs_epi16,
            _mm_setzero_si128,
        };
        let mut mask = 0u64;
        for (i, pair) in block.chunks_exact(16).enumerate() {
            // SAFETY: SSE2 is part of x86_64; each load reads eight i16
            // inside `pair`, which has sixteen.
            let zeros = unsafe {
                let zero = _mm_setzero_si128();
                let a = _mm_loadu_si128(pair.as_ptr().cast::<__m128i>());
                let b = _mm_loadu_si128(pair.as_ptr().add(8).cast::<__m128i>());
                let packed = _mm_packs_epi16(_mm_cmpeq_epi16(a, zero), _mm_cmpeq_epi16(b, zero));
                _mm_movemask_epi8(packed) as u32
            };
            mask |= u64::from(!zeros & 0xFFFF) << (16 * i);
        }
        mask
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        block
            .iter()
            .enumerate()
            .fold(0u64, |mask, (k, &v)| mask | u64::from(v != 0) << k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nonzero_mask_marks_every_nonzero_coefficient() {
        let mut block = [0i16; 64];
        for k in [0, 5, 15, 16, 33, 63] {
            block[k] = if k % 2 == 0 { -3 } else { 1024 };
        }
        assert_eq!(
            nonzero_mask(&block),
            (1 << 0) | (1 << 5) | (1 << 15) | (1 << 16) | (1 << 33) | (1 << 63)
        );
    }

    #[test]
    fn bits_come_out_in_order_padded_with_ones_and_0xff_stuffed() {
        let mut coder = Coder::new(0);
        let mut put = coder.block();
        put.bits(0b101, 3);
        put.bits(0x1F_FFFF, 21); // 1 0111 1111 ... : 0xBF 0xFF 0xFF
        put.bits(0, 4);
        let state = put.state();
        coder.done(state);
        let mut out = vec![0xAA];
        coder.finish(&mut out);
        assert_eq!(out, [0xAA, 0xBF, 0xFF, 0x00, 0xFF, 0x00, 0x0F]);
    }

    #[test]
    fn values_are_coded_as_jpeg_codes_them() {
        assert_eq!(Put::magnitude(0), (0, 0));
        assert_eq!(Put::magnitude(1), (1, 1));
        assert_eq!(Put::magnitude(-1), (1, 0));
        assert_eq!(Put::magnitude(5), (3, 5));
        assert_eq!(Put::magnitude(-5), (3, 2));
        assert_eq!(Put::magnitude(-1023), (10, 0));
        assert_eq!(Put::magnitude(1023), (10, 1023));
    }
}
