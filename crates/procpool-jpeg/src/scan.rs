//! The entropy-coded image data of Huffman JPEGs, checked without decoding
//! any pixel: every Huffman code must be defined, every block must fit its
//! 64 coefficients, each scan must hold exactly its blocks (no more data, no
//! less), and restart markers must come where the restart interval says.
//!
//! libjpeg-turbo reports these as warnings ("premature end of data
//! segment", "extraneous bytes before marker", "bad Huffman code"); the
//! pure-Rust decoder fills in what is missing without complaint, so a JPEG
//! whose image data was zeroed or scrambled would decode to a damaged
//! picture silently. Walking the codes costs a fraction of a decode: no
//! inverse DCT, no colour conversion, no coefficient values kept (for
//! progressive refinement scans, one bit per coefficient says whether it is
//! already non-zero). For the DCT-domain turn, a sequential scan keeps its
//! non-zero coefficients ([`Sparse`]), read first the fast way ([`fast`]),
//! which only says whether the data was sound; data that was not is walked
//! again here, for the error.

use crate::Error;

pub(crate) mod fast;
mod sparse;

pub(crate) use sparse::{Block, Coefficients, Sparse, spare};

/// One component of the frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Component {
    /// The identifier scans refer to it by.
    pub id: u8,
    /// Horizontal sampling factor, 1 to 4.
    pub h: u8,
    /// Vertical sampling factor, 1 to 4.
    pub v: u8,
    /// The quantisation table it uses, 0 to 3.
    pub tq: u8,
}

/// How the image data is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    /// Baseline or extended sequential, Huffman coded: checked.
    Sequential,
    /// Progressive, Huffman coded: checked.
    Progressive,
    /// Lossless, hierarchical or arithmetic coded (the frame marker's code):
    /// left to the decoder.
    Other(u8),
}

/// The frame header: size, coding and components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Bits per sample: 8, or 12 (extended), 2 to 16 (lossless).
    pub precision: u8,
    pub width: u32,
    pub height: u32,
    pub coding: Coding,
    pub components: Vec<Component>,
}

impl Frame {
    pub fn max_sampling(&self) -> (u32, u32) {
        let h = self.components.iter().map(|c| c.h).max().unwrap_or(1);
        let v = self.components.iter().map(|c| c.v).max().unwrap_or(1);
        (u32::from(h), u32::from(v))
    }

    /// MCUs across and down an interleaved scan.
    pub fn mcus(&self) -> (u32, u32) {
        let (h, v) = self.max_sampling();
        (self.width.div_ceil(8 * h), self.height.div_ceil(8 * v))
    }

    /// Blocks across and down component `c` in a scan of that component alone.
    pub fn blocks(&self, c: &Component) -> (u32, u32) {
        let (h, v) = self.max_sampling();
        let width = (self.width * u32::from(c.h)).div_ceil(h);
        let height = (self.height * u32::from(c.v)).div_ceil(v);
        (width.div_ceil(8), height.div_ceil(8))
    }
}

/// A Huffman table ready for decoding: codes up to [`FAST_BITS`] long
/// through one look-up, longer ones by length (as libjpeg does).
#[derive(Clone)]
struct Huffman {
    /// For each `FAST_BITS`-bit prefix, `(length << 8) | symbol`, or 0 when
    /// the code is longer.
    fast: Box<[u16; 1 << FAST_BITS]>,
    /// The largest code of each length (index 1 to 16), -1 when none.
    max_code: [i32; 17],
    /// What to add to a code of each length to index `symbols`.
    offset: [i32; 17],
    symbols: Vec<u8>,
    /// For an AC table, codes and values in one look-up (see
    /// [`fast::fast_ac`]).
    fast_ac: Option<Box<[i32; 1 << fast::FAST_AC_BITS]>>,
}

const FAST_BITS: u32 = 10;

impl Huffman {
    /// Builds a table from the code counts by length and the symbols, or
    /// `None` if the counts do not describe a valid code.
    fn new(counts: &[u8; 16], symbols: &[u8]) -> Option<Huffman> {
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
    fn peek(&self, acc: u64) -> Option<(u32, u8)> {
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

/// Reads the bits of entropy-coded data: removes stuffed zero bytes, stops
/// at a marker, and counts the zero bits supplied past it, so that reading
/// beyond the data shows.
#[derive(Clone, Copy)]
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    /// Bits not yet consumed, from the top.
    acc: u64,
    /// How many bits of `acc` are filled.
    filled: u32,
    /// How many of the filled bits were made up past the data's end.
    made_up: u32,
    at_marker: bool,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
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
    fn refill(&mut self) {
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
    fn refill_bytewise(&mut self) {
        while self.filled <= 56 {
            let byte = self.next_byte();
            self.acc |= u64::from(byte) << (56 - self.filled);
            self.filled += 8;
        }
    }

    fn next_byte(&mut self) -> u8 {
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
    fn consume(&mut self, n: u32) {
        self.acc <<= n;
        self.filled -= n;
    }

    /// Reads and drops `n` bits (at most 16).
    #[inline]
    fn skip(&mut self, n: u32) {
        if n > 0 {
            self.refill();
            self.consume(n);
        }
    }

    /// Reads `n` bits (at most 16) as a number.
    #[inline]
    fn read(&mut self, n: u32) -> u32 {
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
    fn take_signed(&mut self, n: u32) -> i32 {
        if n == 0 {
            return 0;
        }
        let value = (self.acc >> (64 - n)) as i32;
        self.consume(n);
        extend(value, n)
    }

    /// Whether bits past the end of the data were consumed.
    fn overran(&self) -> bool {
        self.made_up > self.filled
    }

    /// Whole bytes of data not read before the next marker (or the end):
    /// the padding of the last byte read does not count.
    fn bytes_left(&self) -> usize {
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
    fn marker_position(&self) -> usize {
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
    fn restart(&mut self, at: usize, expected: u8) -> Result<(), Option<u8>> {
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

/// What the Huffman tables, restart interval and earlier scans of one image
/// have set, as its segments are walked in order.
#[derive(Default)]
pub(crate) struct Entropy {
    /// DC tables 0 to 3, then AC tables 0 to 3.
    tables: [Option<Huffman>; 8],
    restart_interval: u32,
    /// For progressive images, per component: one bit per coefficient (in
    /// zig-zag order) of each block, set once it is non-zero.
    nonzero: Vec<Vec<u64>>,
}

fn corrupt(what: impl Into<String>) -> Error {
    Error::Corrupt(what.into())
}

impl Entropy {
    /// Reads a DHT segment (after its length) at byte `at`.
    pub fn define_tables(&mut self, mut segment: &[u8], at: usize) -> Result<(), Error> {
        let bad = || corrupt(format!("bad Huffman table at byte {at}"));
        while let [class_id, rest @ ..] = segment {
            let (class, id) = (class_id >> 4, class_id & 0x0F);
            if class > 1 || id > 3 {
                return Err(bad());
            }
            let counts: &[u8; 16] = rest.get(..16).ok_or_else(bad)?.try_into().unwrap();
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let symbols = rest.get(16..16 + total).ok_or_else(bad)?;
            if total > 256 {
                return Err(bad());
            }
            let mut table = Huffman::new(counts, symbols).ok_or_else(bad)?;
            if class == 1 {
                table.fast_ac = Some(fast::fast_ac(&table));
            }
            self.tables[usize::from(class * 4 + id)] = Some(table);
            segment = &rest[16 + total..];
        }
        Ok(())
    }

    /// Reads a DRI segment (after its length) at byte `at`.
    pub fn define_restart_interval(&mut self, segment: &[u8], at: usize) -> Result<(), Error> {
        let [high, low] = *segment else {
            return Err(corrupt(format!(
                "bad restart interval segment at byte {at}"
            )));
        };
        self.restart_interval = u32::from(u16::from_be_bytes([high, low]));
        Ok(())
    }

    /// Checks one scan: its header (the SOS segment after its length, at
    /// byte `at`) and its entropy-coded `data`, which starts at byte
    /// `offset` of the file and runs to the marker that ends the scan.
    pub fn check_scan(
        &mut self,
        frame: &Frame,
        header: &[u8],
        at: usize,
        data: &[u8],
        offset: usize,
        keep: Option<&mut Coefficients>,
    ) -> Result<(), Error> {
        if let Coding::Other(_) = frame.coding {
            return Ok(());
        }
        let scan = Scan::parse(frame, header, at)?;
        // Coefficients are kept from a sequential scan of every component
        // (of an image whose values [`Block::start`] can index).
        let (mcus_x, mcus_y) = frame.mcus();
        let most_values = u64::from(mcus_x) * u64::from(mcus_y) * 63 * 16;
        let keep = keep.filter(|_| {
            frame.coding == Coding::Sequential
                && scan.components.len() == frame.components.len()
                && most_values <= u64::from(u32::MAX)
        });
        let mut keep = keep;
        if let Some(coefficients) = keep.as_deref_mut() {
            for plane in coefficients.planes.drain(..) {
                spare::give_plane(plane);
            }
            coefficients.planes = frame
                .components
                .iter()
                .map(|c| {
                    let (h, v) = (u32::from(c.h), u32::from(c.v));
                    spare::plane((mcus_x * h * mcus_y * v) as usize)
                })
                .collect();
            coefficients.complete = true;
        }
        let progressive = frame.coding == Coding::Progressive;
        if progressive && self.nonzero.is_empty() {
            let (mcus_x, mcus_y) = frame.mcus();
            self.nonzero = frame
                .components
                .iter()
                .map(|c| vec![0; (mcus_x * u32::from(c.h) * mcus_y * u32::from(c.v)) as usize])
                .collect();
        }
        let kind = match (progressive, scan.ss, scan.ah) {
            (false, _, _) => Kind::Sequential,
            (true, 0, 0) => Kind::DcFirst,
            (true, 0, _) => Kind::DcRefine,
            (true, _, 0) => Kind::AcFirst,
            (true, _, _) => Kind::AcRefine,
        };
        // The tables each kind of scan uses must exist.
        for c in &scan.components {
            let needs_dc = matches!(kind, Kind::Sequential | Kind::DcFirst);
            let needs_ac = matches!(kind, Kind::Sequential | Kind::AcFirst | Kind::AcRefine);
            for (needed, class, id) in [(needs_dc, 0, c.dc), (needs_ac, 1, c.ac)] {
                if needed && self.tables[class * 4 + usize::from(id)].is_none() {
                    let name = ["DC", "AC"][class];
                    return Err(corrupt(format!(
                        "the scan at byte {at} uses {name} Huffman table {id}, which is not defined"
                    )));
                }
            }
        }
        if kind == Kind::Sequential
            && fast::on()
            && let Some(coefficients) = keep.as_deref_mut()
        {
            // The fast way first; damaged data is walked again below.
            let spare = fast::CLEAN.take();
            if let Some(clean) = fast::Clean::new(data, spare) {
                let read = fast::sequential(
                    frame,
                    &scan.components,
                    &self.tables,
                    self.restart_interval,
                    &clean,
                    &mut coefficients.planes,
                );
                fast::CLEAN.set(clean.into_bytes());
                if read {
                    return Ok(());
                }
            }
            for plane in &mut coefficients.planes {
                plane.used = 0;
            }
        }
        let mut walk = Walk {
            bits: Bits::new(data),
            tables: &self.tables,
            nonzero: &mut self.nonzero,
            ss: u32::from(scan.ss),
            se: u32::from(scan.se),
            eob_run: 0,
            kind,
            offset,
            keep,
            predictions: [0; 4],
        };
        let (mcus_x, mcus_y) = frame.mcus();
        // An interleaved scan codes whole MCUs; a scan of one component codes
        // only the blocks inside the image, one block per MCU.
        let single = match scan.components.as_slice() {
            [one] => Some((one, frame.blocks(&frame.components[one.index]))),
            _ => None,
        };
        let total = match single {
            Some((_, (bx, by))) => bx * by,
            None => mcus_x * mcus_y,
        };
        let mut restarts = 0u8;
        for mcu in 0..total {
            if self.restart_interval > 0 && mcu > 0 && mcu % self.restart_interval == 0 {
                walk.end_of_interval("a restart marker")?;
                let at = walk.bits.marker_position();
                walk.bits
                    .restart(at, restarts)
                    .map_err(|found| match found {
                        None => walk.premature_end(),
                        Some(code) => corrupt(format!(
                            "found marker 0x{code:02x} at byte {} instead of RST{restarts}",
                            offset + at
                        )),
                    })?;
                restarts = (restarts + 1) % 8;
                walk.eob_run = 0;
                walk.predictions = [0; 4];
            }
            match single {
                Some((c, (blocks_x, _))) => {
                    let component = &frame.components[c.index];
                    let stride = mcus_x * u32::from(component.h);
                    let block = (mcu / blocks_x) * stride + mcu % blocks_x;
                    walk.block(c, block as usize)?;
                }
                None => {
                    let (mx, my) = (mcu % mcus_x, mcu / mcus_x);
                    for c in &scan.components {
                        let component = &frame.components[c.index];
                        let (h, v) = (u32::from(component.h), u32::from(component.v));
                        let stride = mcus_x * h;
                        for y in 0..v {
                            for x in 0..h {
                                let block = (my * v + y) * stride + mx * h + x;
                                walk.block(c, block as usize)?;
                            }
                        }
                    }
                }
            }
            if walk.bits.overran() {
                return Err(walk.premature_end());
            }
        }
        walk.end_of_interval("the next marker")
    }
}

/// A component as a scan header names it.
struct ScanComponent {
    /// Its place in the frame header.
    index: usize,
    dc: u8,
    ac: u8,
}

struct Scan {
    components: Vec<ScanComponent>,
    ss: u8,
    se: u8,
    ah: u8,
}

impl Scan {
    fn parse(frame: &Frame, header: &[u8], at: usize) -> Result<Scan, Error> {
        let bad = |what: &str| corrupt(format!("scan header at byte {at}: {what}"));
        let (&count, rest) = header.split_first().ok_or_else(|| bad("too short"))?;
        let count = usize::from(count);
        if !(1..=4).contains(&count) || rest.len() < 2 * count + 3 {
            return Err(bad("wrong number of components"));
        }
        let mut components = Vec::with_capacity(count);
        for pair in rest[..2 * count].chunks_exact(2) {
            let index = frame
                .components
                .iter()
                .position(|c| c.id == pair[0])
                .ok_or_else(|| bad(&format!("no component {} in the frame", pair[0])))?;
            let (dc, ac) = (pair[1] >> 4, pair[1] & 0x0F);
            if dc > 3 || ac > 3 {
                return Err(bad("Huffman table number over 3"));
            }
            components.push(ScanComponent { index, dc, ac });
        }
        let [ss, se, a] = rest[2 * count..2 * count + 3] else {
            unreachable!("length checked above")
        };
        let (ah, al) = (a >> 4, a & 0x0F);
        let blocks: u32 = components
            .iter()
            .map(|c| {
                let c = &frame.components[c.index];
                u32::from(c.h) * u32::from(c.v)
            })
            .sum();
        if count > 1 && blocks > 10 {
            return Err(bad("more than 10 blocks in an MCU"));
        }
        let valid = match frame.coding {
            // Sequential scans cover every coefficient at full precision.
            Coding::Sequential => ss == 0 && se == 63 && a == 0,
            // DC scans alone may interleave; a refinement adds one bit.
            _ => {
                let spectral = if ss == 0 {
                    se == 0
                } else {
                    se >= ss && se <= 63 && count == 1
                };
                spectral && (ah == 0 || ah == al + 1) && al <= 13
            }
        };
        if !valid {
            return Err(bad(&format!(
                "invalid parameters Ss={ss} Se={se} Ah={ah} Al={al}"
            )));
        }
        Ok(Scan {
            components,
            ss,
            se,
            ah,
        })
    }
}

enum BlockError {
    BadCode,
    PastTheEnd,
}

/// The codes of one block of a sequential scan: a DC difference, then AC
/// coefficients up to the end-of-block code or the 64th coefficient.
#[inline(always)]
fn sequential_block(bits: &mut Bits, dc: &Huffman, ac: &Huffman) -> Result<(), BlockError> {
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
fn sequential_block_kept(
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
enum Kind {
    Sequential,
    DcFirst,
    DcRefine,
    AcFirst,
    AcRefine,
}

/// Walking one scan's blocks.
struct Walk<'a, 'd> {
    bits: Bits<'d>,
    tables: &'a [Option<Huffman>; 8],
    nonzero: &'a mut Vec<Vec<u64>>,
    ss: u32,
    se: u32,
    eob_run: u32,
    kind: Kind,
    offset: usize,
    /// Where a sequential scan's coefficients go, if they are kept.
    keep: Option<&'a mut Coefficients>,
    /// The DC prediction of each frame component, when keeping.
    predictions: [i32; 4],
}

impl<'a> Walk<'a, '_> {
    fn bad_code(&self) -> Error {
        corrupt(format!(
            "bad Huffman code in the image data near byte {}",
            self.offset + self.bits.pos
        ))
    }

    /// libjpeg's words for image data that stops before its last block.
    fn premature_end(&self) -> Error {
        corrupt(format!(
            "premature end of data segment (the image data stops at byte {} with blocks to go)",
            self.offset + self.bits.marker_position()
        ))
    }

    fn past_the_block(&self) -> Error {
        corrupt(format!(
            "coefficients past the end of a block in the image data near byte {}",
            self.offset + self.bits.pos
        ))
    }

    /// Reads one code of `table` and the `extra` bits that its symbol says
    /// follow it (a DC size, or an AC coefficient's size): at most 16 + 15
    /// bits, which one refill provides.
    #[inline(always)]
    fn symbol(&mut self, table: &Huffman, extra: impl Fn(u8) -> u32) -> Result<u8, Error> {
        self.bits.refill();
        let (length, symbol) = table.peek(self.bits.acc).ok_or_else(|| self.bad_code())?;
        self.bits.consume(length + extra(symbol));
        Ok(symbol)
    }

    fn table(&self, index: usize) -> &'a Huffman {
        self.tables[index]
            .as_ref()
            .expect("checked before the scan")
    }

    /// Reads the codes of one block of component `c`, the `block`th of its
    /// (MCU-padded) grid.
    fn block(&mut self, c: &ScanComponent, block: usize) -> Result<(), Error> {
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
    fn dc(&mut self, table: usize) -> Result<(), Error> {
        let size = self.symbol(self.table(table), |s| u32::from(s.min(15)))?;
        if size > 15 {
            return Err(self.bad_code());
        }
        Ok(())
    }

    fn ac_first(&mut self, ac: usize, component: usize, block: usize) -> Result<(), Error> {
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
    fn ac_refine(&mut self, ac: usize, component: usize, block: usize) -> Result<(), Error> {
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

    fn mark(&mut self, component: usize, block: usize, k: u32) {
        self.nonzero[component][block] |= 1 << k;
    }

    /// At the end of a restart interval or of the scan: the data must end
    /// here, give or take the padding of the last byte.
    fn end_of_interval(&self, next: &str) -> Result<(), Error> {
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

/// JPEG's sign extension (EXTEND in T.81) of the `n`-bit value `value`
/// (n at least 1): a leading 0 bit means negative. Both decoders use it.
#[inline(always)]
fn extend(value: i32, n: u32) -> i32 {
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
