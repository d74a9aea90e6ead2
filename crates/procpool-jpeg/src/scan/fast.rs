//! The image data of a sequential scan read the fast way, for the turn:
//! assuming it is sound, and saying only whether it was. The bytes are
//! unstuffed first (0xFF 0x00 becomes 0xFF, restart markers split the
//! intervals), so the bit reader refills without looking at them and
//! without branching; most AC codes are short enough that one table look-up
//! gives the run, the value and how many bits they took together. Whatever
//! this does not take (a damaged file above all) is walked again by
//! [`Walk`](super::Walk), which finds and words the error.

use std::cell::Cell;

use super::super::find_ff;
use super::{Block, Component, Frame, Huffman, ScanComponent, Sparse};

thread_local! {
    /// The buffer [`Clean`] unstuffs into, kept for the next image.
    pub(super) static CLEAN: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    /// Tests turn the fast way off to compare it with the walk.
    #[cfg(test)]
    pub(crate) static OFF: Cell<bool> = const { Cell::new(false) };
    /// How many scans were read the fast way, for tests.
    #[cfg(test)]
    pub(crate) static READ: Cell<u32> = const { Cell::new(0) };
}

/// Whether the fast way is to be tried (always, outside tests).
pub(super) fn on() -> bool {
    #[cfg(test)]
    if OFF.get() {
        return false;
    }
    true
}

/// Bits of the look-ahead [`Huffman::fast_ac`] is indexed by.
pub(super) const FAST_AC_BITS: u32 = 10;

/// The flag of an end-of-block entry of [`fast_ac`] (runs are below 16).
const END_OF_BLOCK: i32 = 0x8000;

/// For a table of AC codes: for each [`FAST_AC_BITS`]-bit prefix whose code
/// and the value bits after it fit in it, `value << 16 | run << 8 | bits`
/// (the value sign-extended), or [`END_OF_BLOCK`] with the code's length;
/// 0 for every other prefix (runs of sixteen zeros, long codes).
pub(super) fn fast_ac(huffman: &Huffman) -> Box<[i32; 1 << FAST_AC_BITS]> {
    let mut table = Box::new([0i32; 1 << FAST_AC_BITS]);
    for (index, entry) in table.iter_mut().enumerate() {
        let acc = (index as u64) << (64 - FAST_AC_BITS);
        let Some((length, symbol)) = huffman.peek(acc) else {
            continue;
        };
        // A code longer than the prefix is not known by it: `peek` read it
        // with zeros for the bits the prefix lacks.
        if length > FAST_AC_BITS {
            continue;
        }
        let (run, size) = (u32::from(symbol >> 4), u32::from(symbol & 0x0F));
        if symbol == 0 {
            *entry = END_OF_BLOCK | length as i32;
            continue;
        }
        if size == 0 || length + size > FAST_AC_BITS {
            continue;
        }
        let bits = (index as u32 >> (FAST_AC_BITS - length - size)) & ((1 << size) - 1);
        let value = if bits < 1 << (size - 1) {
            bits as i32 - (1 << size) + 1
        } else {
            bits as i32
        };
        *entry = value << 16 | (run << 8) as i32 | (length + size) as i32;
    }
    table
}

/// Unstuffed image data: its bytes, then [`PAD`] zeros to read ahead into.
pub(super) struct Clean {
    bytes: Vec<u8>,
    /// Where each restart interval ends in `bytes`.
    ends: Vec<usize>,
}

impl Clean {
    /// `data` unstuffed, split at restart markers, which must come in
    /// order (RST0, RST1, ... RST7, RST0); `None` for anything else.
    pub fn new(data: &[u8], mut bytes: Vec<u8>) -> Option<Clean> {
        bytes.clear();
        bytes.reserve(data.len() + PAD);
        let mut ends = Vec::new();
        let mut rest = data;
        let mut expected = 0u8;
        while let Some(at) = find_ff(rest) {
            bytes.extend_from_slice(&rest[..at]);
            let mut next = at + 1;
            while rest.get(next) == Some(&0xFF) {
                next += 1;
            }
            match *rest.get(next)? {
                0x00 if next == at + 1 => bytes.push(0xFF),
                code if code == 0xD0 + expected => {
                    ends.push(bytes.len());
                    expected = (expected + 1) % 8;
                }
                _ => return None,
            }
            rest = &rest[next + 1..];
        }
        bytes.extend_from_slice(rest);
        ends.push(bytes.len());
        bytes.extend_from_slice(&[0; PAD]);
        Some(Clean { bytes, ends })
    }

    /// The buffer, for the next image.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Zeros after the data: the reader loads eight bytes at a time, up to
/// seven bytes ahead of what it has consumed.
const PAD: usize = 16;

/// Reads bits from unstuffed data, most significant first.
struct Reader<'a> {
    bytes: &'a [u8],
    /// The next byte to load.
    pos: usize,
    /// Bits not yet consumed, from the top.
    acc: u64,
    /// How many bits of `acc` are loaded.
    filled: u32,
}

impl Reader<'_> {
    /// Loads bytes until at least 56 bits are in `acc`; `None` past the
    /// end (only damaged data reads that far).
    #[inline(always)]
    fn refill(&mut self) -> Option<()> {
        let word = self.bytes.get(self.pos..self.pos + 8)?;
        let word = u64::from_be_bytes(word.try_into().expect("eight bytes"));
        self.acc |= word >> self.filled;
        self.pos += ((63 - self.filled) >> 3) as usize;
        self.filled |= 56;
        Some(())
    }

    #[inline(always)]
    fn consume(&mut self, n: u32) {
        self.acc <<= n;
        self.filled -= n;
    }

    /// Takes `n` bits (at most 15, already loaded) as JPEG's signed value.
    #[inline(always)]
    fn signed(&mut self, n: u32) -> i32 {
        if n == 0 {
            return 0;
        }
        let value = (self.acc >> (64 - n)) as i32;
        self.consume(n);
        super::extend(value, n)
    }

    /// Bits consumed since byte `start`.
    fn consumed(&self, start: usize) -> u64 {
        8 * (self.pos - start) as u64 - u64::from(self.filled)
    }
}

/// One component of a scan: its tables, and where its blocks are.
struct Part<'a> {
    dc: &'a Huffman,
    ac: &'a Huffman,
    fast: &'a [i32; 1 << FAST_AC_BITS],
    index: usize,
    h: usize,
    v: usize,
    /// Blocks across its grid.
    stride: usize,
}

/// Reads the sequential scan of `components` from `clean` into `planes`
/// (the frame's, each already `blocks` long), for `total` MCUs (or blocks,
/// in a scan of one component) restarting every `interval`; `false` if
/// the data is not exactly what the scan needs.
pub(super) fn sequential(
    frame: &Frame,
    components: &[ScanComponent],
    tables: &[Option<Huffman>; 8],
    interval: u32,
    clean: &Clean,
    planes: &mut [Sparse],
) -> bool {
    let (mcus_x, _) = frame.mcus();
    let single = components.len() == 1;
    let mut parts = Vec::with_capacity(components.len());
    for c in components {
        let component: &Component = &frame.components[c.index];
        let (Some(dc), Some(ac)) = (
            tables[usize::from(c.dc)].as_ref(),
            tables[4 + usize::from(c.ac)].as_ref(),
        ) else {
            return false;
        };
        let Some(fast) = ac.fast_ac.as_deref() else {
            return false;
        };
        parts.push(Part {
            dc,
            ac,
            fast,
            index: c.index,
            h: if single { 1 } else { usize::from(component.h) },
            v: if single { 1 } else { usize::from(component.v) },
            stride: (mcus_x * u32::from(component.h)) as usize,
        });
    }
    let (across, total) = if single {
        let (bx, by) = frame.blocks(&frame.components[components[0].index]);
        (bx as usize, bx as usize * by as usize)
    } else {
        let (mx, my) = frame.mcus();
        (mx as usize, mx as usize * my as usize)
    };
    let interval = if interval == 0 {
        total
    } else {
        interval as usize
    };
    if clean.ends.len() != total.div_ceil(interval).max(1) {
        return false;
    }
    let mut start = 0;
    for (n, &end) in clean.ends.iter().enumerate() {
        let mut reader = Reader {
            bytes: &clean.bytes,
            pos: start,
            acc: 0,
            filled: 0,
        };
        let mut predictions = [0i32; 4];
        for mcu in n * interval..((n + 1) * interval).min(total) {
            let (mx, my) = (mcu % across, mcu / across);
            for part in &parts {
                let plane = &mut planes[part.index];
                for y in 0..part.v {
                    for x in 0..part.h {
                        let block = (my * part.v + y) * part.stride + mx * part.h + x;
                        let prediction = &mut predictions[part.index];
                        if block_kept(&mut reader, part, prediction, plane, block).is_none() {
                            return false;
                        }
                    }
                }
            }
        }
        // Every byte of the interval read, the last one's padding aside.
        let consumed = reader.consumed(start);
        let bits = 8 * (end - start) as u64;
        if consumed > bits || consumed + 8 <= bits {
            return false;
        }
        start = end;
    }
    #[cfg(test)]
    READ.set(READ.get() + 1);
    true
}

/// One block's codes, kept as [`super::sequential_block_kept`] keeps them.
#[inline(always)]
fn block_kept(
    reader: &mut Reader,
    part: &Part,
    prediction: &mut i32,
    plane: &mut Sparse,
    block: usize,
) -> Option<()> {
    reader.refill()?;
    let (length, size) = part.dc.peek(reader.acc)?;
    if size > 15 {
        return None;
    }
    reader.consume(length);
    *prediction = prediction.wrapping_add(reader.signed(u32::from(size)));
    let start = plane.used;
    let room = plane.room();
    // At most 63 values: `k` grows with each.
    let mut n = 0;
    let mut mask = 0u64;
    let mut k = 1u32;
    while k < 64 {
        reader.refill()?;
        let entry = part.fast[(reader.acc >> (64 - FAST_AC_BITS)) as usize];
        if entry != 0 {
            reader.consume((entry & 0xFF) as u32);
            if entry & END_OF_BLOCK != 0 {
                break;
            }
            k += (entry >> 8 & 0xFF) as u32;
            if k > 63 {
                return None;
            }
            room[n & 63] = (entry >> 16) as i16;
            n += 1;
            mask |= 1 << k;
            k += 1;
            continue;
        }
        let (length, symbol) = part.ac.peek(reader.acc)?;
        let (run, size) = (u32::from(symbol >> 4), u32::from(symbol & 0x0F));
        reader.consume(length);
        if size == 0 && run < 15 {
            break; // end of block
        }
        k += run;
        if k > 63 {
            return None;
        }
        if size > 0 {
            room[n & 63] = reader.signed(size) as i16;
            n += 1;
            mask |= 1 << k;
        }
        k += 1;
    }
    plane.used += n;
    *plane.blocks.get_mut(block)? = Block {
        mask,
        start: start as u32,
        dc: (*prediction).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16,
    };
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_ac_knows_only_codes_that_fit_its_prefix() {
        // "0" is a coefficient (run 0, size 1); the end of block is the
        // 12-bit code 1000 0000 0000, longer than the prefix.
        let mut counts = [0u8; 16];
        counts[0] = 1;
        counts[11] = 1;
        let table = Huffman::new(&counts, &[0x01, 0x00]).unwrap();
        let fast = fast_ac(&table);
        // 1000000000 begins the end of block but also 1000 0000 0001, which
        // is no code: the prefix alone decides neither.
        assert_eq!(fast[0b10_0000_0000], 0);
        // "0" and its one value bit fit: a 1 is +1 and a 0 is -1.
        assert_eq!(fast[0b01_0000_0000], 1 << 16 | 2);
        assert_eq!(fast[0], -1 << 16 | 2);
    }
}
