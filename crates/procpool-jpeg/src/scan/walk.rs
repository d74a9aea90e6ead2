//! Walking one scan's blocks: the codes of each block, checked and, for a
//! sequential scan, kept.

use super::bits::Bits;
use super::huffman::Huffman;
use super::{Block, Coefficients, ScanComponent, Sparse, corrupt};
use crate::Error;

pub(super) enum BlockError {
    BadCode,
    PastTheEnd,
}

/// The codes of one block of a sequential scan: a DC difference, then AC
/// coefficients up to the end-of-block code or the 64th coefficient.
#[inline(always)]
pub(super) fn sequential_block(
    bits: &mut Bits,
    dc: &Huffman,
    ac: &Huffman,
) -> Result<(), BlockError> {
    bits.refill();
    let (length, size) = dc.peek(bits.acc).ok_or(BlockError::BadCode)?;
    if size > 15 {
        return Err(BlockError::BadCode);
    }
    bits.consume(length + u32::from(size));
    let mut k = 1;
    while k < 64 {
        bits.refill();
        let (length, symbol) = ac.peek(bits.acc).ok_or(BlockError::BadCode)?;
        let (run, size) = (u32::from(symbol >> 4), symbol & 0x0F);
        bits.consume(length + u32::from(size));
        if size == 0 && run < 15 {
            break; // end of block
        }
        // The coefficient `run` zeros on (or the 16th zero).
        k += run;
        if k > 63 {
            return Err(BlockError::PastTheEnd);
        }
        k += 1;
    }
    Ok(())
}

/// As [`sequential_block`], keeping the block's coefficients in `plane`
/// as `block`: the DC coefficient made absolute with `prediction`, the
/// non-zero AC ones appended to its values. A DC value that overflows 16
/// bits (only damaged data has them) is clamped.
#[inline(always)]
pub(super) fn sequential_block_kept(
    bits: &mut Bits,
    dc: &Huffman,
    ac: &Huffman,
    prediction: &mut i32,
    plane: &mut Sparse,
    block: usize,
) -> Result<(), BlockError> {
    bits.refill();
    let (length, size) = dc.peek(bits.acc).ok_or(BlockError::BadCode)?;
    if size > 15 {
        return Err(BlockError::BadCode);
    }
    bits.consume(length);
    *prediction = prediction.wrapping_add(bits.take_signed(u32::from(size)));
    let start = plane.used;
    let room = plane.room();
    // At most 63 values: `k` grows with each.
    let mut n = 0;
    let mut mask = 0u64;
    let mut k = 1;
    while k < 64 {
        bits.refill();
        let (length, symbol) = ac.peek(bits.acc).ok_or(BlockError::BadCode)?;
        let (run, size) = (u32::from(symbol >> 4), symbol & 0x0F);
        bits.consume(length);
        if size == 0 && run < 15 {
            break; // end of block
        }
        k += run;
        if k > 63 {
            return Err(BlockError::PastTheEnd);
        }
        if size > 0 {
            // 15 bits at most: within i16 once signed, and never zero.
            room[n & 63] = bits.take_signed(u32::from(size)) as i16;
            n += 1;
            mask |= 1 << k;
        }
        k += 1;
    }
    plane.used += n;
    plane.blocks[block] = Block {
        mask,
        start: start as u32,
        dc: (*prediction).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16,
    };
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Sequential,
    DcFirst,
    DcRefine,
    AcFirst,
    AcRefine,
}

/// Walking one scan's blocks.
pub(super) struct Walk<'a, 'd> {
    pub(super) bits: Bits<'d>,
    pub(super) tables: &'a [Option<Huffman>; 8],
    pub(super) nonzero: &'a mut Vec<Vec<u64>>,
    pub(super) ss: u32,
    pub(super) se: u32,
    pub(super) eob_run: u32,
    pub(super) kind: Kind,
    pub(super) offset: usize,
    /// Where a sequential scan's coefficients go, if they are kept.
    pub(super) keep: Option<&'a mut Coefficients>,
    /// The DC prediction of each frame component, when keeping.
    pub(super) predictions: [i32; 4],
}

impl<'a> Walk<'a, '_> {
    pub(super) fn bad_code(&self) -> Error {
        corrupt(format!(
            "bad Huffman code in the image data near byte {}",
            self.offset + self.bits.pos
        ))
    }

    /// libjpeg's words for image data that stops before its last block.
    pub(super) fn premature_end(&self) -> Error {
        corrupt(format!(
            "premature end of data segment (the image data stops at byte {} with blocks to go)",
            self.offset + self.bits.marker_position()
        ))
    }

    pub(super) fn past_the_block(&self) -> Error {
        corrupt(format!(
            "coefficients past the end of a block in the image data near byte {}",
            self.offset + self.bits.pos
        ))
    }

    /// Reads one code of `table` and the `extra` bits that its symbol says
    /// follow it (a DC size, or an AC coefficient's size): at most 16 + 15
    /// bits, which one refill provides.
    #[inline(always)]
    pub(super) fn symbol(
        &mut self,
        table: &Huffman,
        extra: impl Fn(u8) -> u32,
    ) -> Result<u8, Error> {
        self.bits.refill();
        let (length, symbol) = table.peek(self.bits.acc).ok_or_else(|| self.bad_code())?;
        self.bits.consume(length + extra(symbol));
        Ok(symbol)
    }

    pub(super) fn table(&self, index: usize) -> &'a Huffman {
        self.tables[index]
            .as_ref()
            .expect("checked before the scan")
    }

    /// Reads the codes of one block of component `c`, the `block`th of its
    /// (MCU-padded) grid.
    pub(super) fn block(&mut self, c: &ScanComponent, block: usize) -> Result<(), Error> {
        let dc = usize::from(c.dc);
        let ac = 4 + usize::from(c.ac);
        match self.kind {
            Kind::Sequential if self.keep.is_some() => {
                let mut bits = self.bits;
                let plane = &mut self.keep.as_mut().expect("checked").planes[c.index];
                let result = sequential_block_kept(
                    &mut bits,
                    self.tables[dc].as_ref().expect("checked before the scan"),
                    self.tables[ac].as_ref().expect("checked before the scan"),
                    &mut self.predictions[c.index],
                    plane,
                    block,
                );
                self.bits = bits;
                result.map_err(|e| match e {
                    BlockError::BadCode => self.bad_code(),
                    BlockError::PastTheEnd => self.past_the_block(),
                })?;
            }
            Kind::Sequential => {
                // On a copy of the reader, which the compiler keeps in
                // registers: this loop is most of the time of the check.
                let mut bits = self.bits;
                let result = sequential_block(&mut bits, self.table(dc), self.table(ac));
                self.bits = bits;
                result.map_err(|e| match e {
                    BlockError::BadCode => self.bad_code(),
                    BlockError::PastTheEnd => self.past_the_block(),
                })?;
            }
            Kind::DcFirst => self.dc(dc)?,
            Kind::DcRefine => self.bits.skip(1),
            Kind::AcFirst => self.ac_first(ac, c.index, block)?,
            Kind::AcRefine => self.ac_refine(ac, c.index, block)?,
        }
        Ok(())
    }

    /// A DC difference: its size category, then that many bits.
    pub(super) fn dc(&mut self, table: usize) -> Result<(), Error> {
        let size = self.symbol(self.table(table), |s| u32::from(s.min(15)))?;
        if size > 15 {
            return Err(self.bad_code());
        }
        Ok(())
    }

    pub(super) fn ac_first(
        &mut self,
        ac: usize,
        component: usize,
        block: usize,
    ) -> Result<(), Error> {
        if self.eob_run > 0 {
            self.eob_run -= 1;
            return Ok(());
        }
        let table = self.table(ac);
        let mut k = self.ss;
        while k <= self.se {
            let symbol = self.symbol(table, |s| u32::from(s & 0x0F))?;
            let (run, size) = (u32::from(symbol >> 4), symbol & 0x0F);
            if size == 0 && run < 15 {
                self.eob_run = (1 << run) + self.bits.read(run) - 1;
                break;
            }
            k += run;
            if k > self.se {
                return Err(self.past_the_block());
            }
            if size > 0 {
                self.mark(component, block, k);
            }
            k += 1;
        }
        Ok(())
    }

    /// A refinement scan: one correction bit for every coefficient already
    /// non-zero, and the positions of those that become non-zero.
    pub(super) fn ac_refine(
        &mut self,
        ac: usize,
        component: usize,
        block: usize,
    ) -> Result<(), Error> {
        let mut nonzero = self.nonzero[component][block];
        let table = self.table(ac);
        let mut k = self.ss;
        if self.eob_run == 0 {
            while k <= self.se {
                // A new coefficient's sign bit follows its code.
                let symbol = self.symbol(table, |s| u32::from(s & 0x0F == 1))?;
                let (mut run, size) = (i32::from(symbol >> 4), symbol & 0x0F);
                if size == 0 && run < 15 {
                    self.eob_run = (1 << run) + self.bits.read(run as u32);
                    break;
                }
                if size > 1 {
                    return Err(self.bad_code());
                }
                // Skip `run` coefficients that are still zero, reading a
                // correction bit for each non-zero one passed on the way.
                loop {
                    if nonzero & (1 << k) != 0 {
                        self.bits.skip(1);
                    } else {
                        if run == 0 {
                            break;
                        }
                        run -= 1;
                    }
                    k += 1;
                    if k > self.se {
                        break;
                    }
                }
                if size == 1 {
                    if k > self.se {
                        return Err(self.past_the_block());
                    }
                    nonzero |= 1 << k;
                }
                k += 1;
            }
        }
        if self.eob_run > 0 {
            for k in k..=self.se {
                if nonzero & (1 << k) != 0 {
                    self.bits.skip(1);
                }
            }
            self.eob_run -= 1;
        }
        self.nonzero[component][block] = nonzero;
        Ok(())
    }

    pub(super) fn mark(&mut self, component: usize, block: usize, k: u32) {
        self.nonzero[component][block] |= 1 << k;
    }

    /// At the end of a restart interval or of the scan: the data must end
    /// here, give or take the padding of the last byte.
    pub(super) fn end_of_interval(&self, next: &str) -> Result<(), Error> {
        if self.bits.overran() {
            return Err(self.premature_end());
        }
        match self.bits.bytes_left() {
            0 => Ok(()),
            1 => Err(corrupt(format!(
                "1 extraneous byte in the image data before {next}"
            ))),
            n => Err(corrupt(format!(
                "{n} extraneous bytes in the image data before {next}"
            ))),
        }
    }
}
