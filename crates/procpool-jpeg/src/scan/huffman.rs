//! Huffman tables as a scan reads them: one look-up for the short codes,
//! a search by length for the long ones.

use super::fast;

/// A Huffman table ready for decoding: codes up to [`FAST_BITS`] long
/// through one look-up, longer ones by length (as libjpeg does).
#[derive(Clone)]
pub(super) struct Huffman {
    /// For each `FAST_BITS`-bit prefix, `(length << 8) | symbol`, or 0 when
    /// the code is longer.
    pub(super) fast: Box<[u16; 1 << FAST_BITS]>,
    /// The largest code of each length (index 1 to 16), -1 when none.
    pub(super) max_code: [i32; 17],
    /// What to add to a code of each length to index `symbols`.
    pub(super) offset: [i32; 17],
    pub(super) symbols: Vec<u8>,
    /// For an AC table, codes and values in one look-up (see
    /// [`fast::fast_ac`]).
    pub(super) fast_ac: Option<Box<[i32; 1 << fast::FAST_AC_BITS]>>,
}

pub(super) const FAST_BITS: u32 = 10;

impl Huffman {
    /// Builds a table from the code counts by length and the symbols, or
    /// `None` if the counts do not describe a valid code.
    pub(super) fn new(counts: &[u8; 16], symbols: &[u8]) -> Option<Huffman> {
        let mut fast = Box::new([0u16; 1 << FAST_BITS]);
        let mut max_code = [-1i32; 17];
        let mut offset = [0i32; 17];
        let mut code = 0i32;
        let mut index = 0usize;
        for length in 1..=16u32 {
            let count = usize::from(counts[length as usize - 1]);
            if count > 0 {
                offset[length as usize] = index as i32 - code;
                for _ in 0..count {
                    if code >= 1 << length {
                        return None;
                    }
                    if length <= FAST_BITS {
                        let shift = FAST_BITS - length;
                        let first = (code as usize) << shift;
                        let entry = (length as u16) << 8 | u16::from(symbols[index]);
                        fast[first..first + (1 << shift)].fill(entry);
                    }
                    code += 1;
                    index += 1;
                }
                max_code[length as usize] = code - 1;
            }
            // A code of all ones is reserved; more codes than fit is no code.
            if code >= 1 << length {
                return None;
            }
            code <<= 1;
        }
        Some(Huffman {
            fast,
            max_code,
            offset,
            symbols: symbols.to_vec(),
            fast_ac: None,
        })
    }

    /// The code at the top of `acc` (16 bits or more of it): its length and
    /// symbol, or `None` for a bit pattern that is no code.
    #[inline(always)]
    pub(super) fn peek(&self, acc: u64) -> Option<(u32, u8)> {
        let peek = (acc >> 48) as u32;
        let entry = self.fast[(peek >> (16 - FAST_BITS)) as usize];
        if entry != 0 {
            return Some((u32::from(entry >> 8), entry as u8));
        }
        for length in FAST_BITS + 1..=16 {
            let code = (peek >> (16 - length)) as i32;
            if code <= self.max_code[length as usize] {
                let index = code + self.offset[length as usize];
                return Some((length, *self.symbols.get(index as usize)?));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::bits::Bits;
    use super::*;

    #[test]
    fn huffman_codes_decode_by_table_and_by_length() {
        // Two codes of length 1 is all ones for the second: invalid.
        let mut counts = [0u8; 16];
        counts[0] = 2;
        assert!(Huffman::new(&counts, &[1, 2]).is_none());
        // 0 -> 7, 10 -> 8, 110 -> 9, then one 12-bit code: 1110 0000 0000.
        let mut counts = [0u8; 16];
        counts[0] = 1;
        counts[1] = 1;
        counts[2] = 1;
        counts[11] = 1;
        let table = Huffman::new(&counts, &[7, 8, 9, 10]).unwrap();
        let data = [0b0101_1011, 0b1000_0000, 0b0011_1111, 0xFF, 0x00];
        let mut bits = Bits::new(&data);
        let mut decode = || {
            bits.refill();
            let (length, symbol) = table.peek(bits.acc)?;
            bits.consume(length);
            Some(symbol)
        };
        let decoded: Vec<_> = (0..5).map(|_| decode()).collect();
        assert_eq!(decoded, [Some(7), Some(8), Some(9), Some(10), None]);
    }
}
