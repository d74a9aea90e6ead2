//! The bit reader of entropy-coded data, and JPEG's sign extension.

/// Reads the bits of entropy-coded data: removes stuffed zero bytes, stops
/// at a marker, and counts the zero bits supplied past it, so that reading
/// beyond the data shows.
#[derive(Clone, Copy)]
pub(super) struct Bits<'a> {
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
    /// Bits not yet consumed, from the top.
    pub(super) acc: u64,
    /// How many bits of `acc` are filled.
    pub(super) filled: u32,
    /// How many of the filled bits were made up past the data's end.
    pub(super) made_up: u32,
    pub(super) at_marker: bool,
}

impl<'a> Bits<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Bits {
            data,
            pos: 0,
            acc: 0,
            filled: 0,
            made_up: 0,
            at_marker: false,
        }
    }

    /// Fills the buffer to more than 32 bits.
    #[inline(always)]
    pub(super) fn refill(&mut self) {
        if self.filled > 32 {
            return;
        }
        // Eight bytes at once when none of them is 0xFF.
        if !self.at_marker
            && let Some(word) = self.data.get(self.pos..self.pos + 8)
        {
            let word = u64::from_be_bytes(word.try_into().unwrap());
            let inverted = !word;
            let has_ff =
                inverted.wrapping_sub(0x0101_0101_0101_0101) & !inverted & 0x8080_8080_8080_8080;
            if has_ff == 0 {
                let take = (64 - self.filled) / 8; // 4 to 8 bytes
                let kept = if take == 8 {
                    word
                } else {
                    word & !(u64::MAX >> (8 * take))
                };
                self.acc |= kept >> self.filled;
                self.filled += 8 * take;
                self.pos += take as usize;
                return;
            }
        }
        self.refill_bytewise();
    }

    /// Near a 0xFF byte or the end: one byte at a time.
    #[inline(never)]
    pub(super) fn refill_bytewise(&mut self) {
        while self.filled <= 56 {
            let byte = self.next_byte();
            self.acc |= u64::from(byte) << (56 - self.filled);
            self.filled += 8;
        }
    }

    pub(super) fn next_byte(&mut self) -> u8 {
        if !self.at_marker {
            match self.data.get(self.pos) {
                Some(0xFF) if self.data.get(self.pos + 1) == Some(&0x00) => {
                    self.pos += 2;
                    return 0xFF;
                }
                Some(0xFF) | None => self.at_marker = true,
                Some(&byte) => {
                    self.pos += 1;
                    return byte;
                }
            }
        }
        self.made_up += 8;
        0
    }

    #[inline]
    pub(super) fn consume(&mut self, n: u32) {
        self.acc <<= n;
        self.filled -= n;
    }

    /// Reads and drops `n` bits (at most 16).
    #[inline]
    pub(super) fn skip(&mut self, n: u32) {
        if n > 0 {
            self.refill();
            self.consume(n);
        }
    }

    /// Reads `n` bits (at most 16) as a number.
    #[inline]
    pub(super) fn read(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        self.refill();
        let value = (self.acc >> (64 - n)) as u32;
        self.consume(n);
        value
    }

    /// Takes `n` bits (at most 15, already in the buffer) as a signed
    /// coefficient: JPEG's sign extension, where a leading 0 means negative.
    #[inline(always)]
    pub(super) fn take_signed(&mut self, n: u32) -> i32 {
        if n == 0 {
            return 0;
        }
        let value = (self.acc >> (64 - n)) as i32;
        self.consume(n);
        extend(value, n)
    }

    /// Whether bits past the end of the data were consumed.
    pub(super) fn overran(&self) -> bool {
        self.made_up > self.filled
    }

    /// Whole bytes of data not read before the next marker (or the end):
    /// the padding of the last byte read does not count.
    pub(super) fn bytes_left(&self) -> usize {
        let buffered = self.filled.saturating_sub(self.made_up) / 8;
        let unread = if self.at_marker {
            0
        } else {
            let rest = &self.data[self.pos..];
            let mut count = 0;
            let mut i = 0;
            while i < rest.len() {
                if rest[i] == 0xFF {
                    if rest.get(i + 1) != Some(&0x00) {
                        break;
                    }
                    i += 1;
                }
                count += 1;
                i += 1;
            }
            count
        };
        buffered as usize + unread
    }

    /// Where the next marker starts, after the bytes left.
    pub(super) fn marker_position(&self) -> usize {
        let mut i = self.pos;
        while i < self.data.len() {
            if self.data[i] == 0xFF && self.data.get(i + 1) != Some(&0x00) {
                return i;
            }
            i += if self.data[i] == 0xFF { 2 } else { 1 };
        }
        self.data.len()
    }

    /// Moves past the restart marker at `at`, if it is RSTn with `n` =
    /// `expected`, and starts afresh behind it; otherwise the marker's code.
    pub(super) fn restart(&mut self, at: usize, expected: u8) -> Result<(), Option<u8>> {
        let mut i = at;
        while self.data.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        match self.data.get(i + 1) {
            Some(&code) if code == 0xD0 + expected => {
                *self = Bits {
                    pos: i + 2,
                    ..Bits::new(self.data)
                };
                Ok(())
            }
            other => Err(other.copied()),
        }
    }
}

/// JPEG's sign extension (EXTEND in T.81) of the `n`-bit value `value`
/// (n at least 1): a leading 0 bit means negative. Both decoders use it.
#[inline(always)]
pub(super) fn extend(value: i32, n: u32) -> i32 {
    if value < 1 << (n - 1) {
        value - (1 << n) + 1
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_unstuff_and_count_what_is_made_up_past_a_marker() {
        let data = [0xAB, 0xFF, 0x00, 0x12, 0xFF, 0xD9];
        let mut bits = Bits::new(&data);
        assert_eq!(bits.read(8), 0xAB);
        assert_eq!(bits.read(16), 0xFF12);
        assert!(!bits.overran());
        assert_eq!(bits.bytes_left(), 0);
        bits.skip(1);
        assert!(bits.overran());
    }

    #[test]
    fn bytes_left_counts_unread_data_before_the_marker() {
        let data = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0xFF, 0xD0];
        let mut bits = Bits::new(&data);
        bits.skip(12);
        // Bits 12 to 15 are the padding of byte 2; bytes 3 to 12 are left.
        assert_eq!(bits.bytes_left(), 10);
        assert_eq!(bits.marker_position(), 12);
    }
}
