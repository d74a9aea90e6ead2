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

mod bits;
pub(crate) mod fast;
mod huffman;
mod sparse;
mod walk;

use bits::{Bits, extend};
use huffman::Huffman;
pub(crate) use sparse::{Block, Coefficients, Sparse, spare};
use walk::{Kind, Walk};

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
