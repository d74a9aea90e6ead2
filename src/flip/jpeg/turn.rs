//! Turning a JPEG by 180 degrees without decoding it to pixels: the fast
//! way from a sequential JPEG to a turned JPEG (or PDF), in any build.
//!
//! The image data is read once, by the same walk that checks it (see
//! [`walk`](super::walk)), keeping each block's quantised coefficients.
//! Turning a block by 180 degrees negates its coefficients of odd
//! horizontal plus vertical frequency, so a component whose samples fill
//! whole blocks is turned by reversing its blocks and flipping those signs,
//! then requantising to the output quality (nothing is lost where the input
//! has the same tables: a photo saved at quality 75 and turned at 75 keeps
//! every coefficient). A component that ends inside a block (4:2:0 chroma of
//! a photo 360 rows high: 180 rows, 22.5 blocks) would have its blocks
//! straddle the turned grid: its blocks go through a floating-point inverse
//! DCT, are turned as samples, and come back through the forward DCT, as
//! an encoder would; no rounding to 8 bits in between. The header and the
//! Huffman tables (the standard ones) are those jpeg-encoder writes at the
//! quality asked, so the output is what the pixel path would give, less
//! its losses.
//!
//! Only baseline and extended sequential 8-bit JPEGs with one scan of grey
//! or YCbCr (no Adobe segment) whose chroma is not subsampled more than
//! jpeg-encoder can write are turned here; [`turn180`] says `None` for the
//! rest, after checking them, and the caller decodes pixels instead.

use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use super::scan::{Coding, Component, Frame, spare};
use super::{Cause, Depth, Kept, walk};

/// A JPEG turned by [`turn180`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turned {
    /// The JPEG file's bytes.
    pub bytes: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Whether it is grey (one component).
    pub grey: bool,
}

/// Checks a JPEG as [`inspect`](super::inspect) does and turns it by 180
/// degrees in the DCT domain, as a baseline JPEG at `quality`; `Ok(None)`
/// for a JPEG this cannot turn (see the module's notes), which has then
/// passed the check.
///
/// # Errors
///
/// As [`inspect`](super::inspect); [`Cause::CorruptJpeg`] for a component
/// whose quantisation table is missing or holds a zero.
pub fn turn180(data: &[u8], quality: u8, max_pixels: u64) -> Result<Option<Turned>, Cause> {
    let mut kept = Kept::default();
    let frame = walk(data, max_pixels, Depth::ImageData, Some(&mut kept))?;
    let grey = match frame.components.len() {
        1 => true,
        3 => false,
        _ => return Ok(None),
    };
    if frame.coding != Coding::Sequential
        || frame.precision != 8
        || kept.scans != 1
        || !kept.coefficients.complete
        || kept.adobe
    {
        return Ok(None);
    }
    // Subsampled chroma turns with the luma only when it covers whole
    // groups of luma samples: with an odd width at 4:2:0, say, the last
    // chroma column covers one luma column and would land on two.
    let (hmax, vmax) = frame.max_sampling();
    if !grey && (!frame.width.is_multiple_of(hmax) || !frame.height.is_multiple_of(vmax)) {
        return Ok(None);
    }
    let mut quant_in = Vec::with_capacity(frame.components.len());
    for c in &frame.components {
        let table = kept
            .scan_quant
            .get(usize::from(c.tq))
            .copied()
            .flatten()
            .filter(|t| !t.contains(&0))
            .ok_or_else(|| {
                Cause::CorruptJpeg(format!(
                    "component {} uses quantisation table {}, which is not defined or holds a zero",
                    c.id, c.tq
                ))
            })?;
        quant_in.push(table);
    }
    let Some(template) = Template::new(&frame, quality) else {
        return Ok(None);
    };
    let out_frame = Frame {
        components: template.components.clone(),
        ..frame.clone()
    };
    let (out_mcus_x, out_mcus_y) = out_frame.mcus();
    let (in_mcus_x, _) = frame.mcus();
    let basis = Basis::new();
    let turned: Vec<Vec<[i16; 64]>> = frame
        .components
        .iter()
        .zip(&out_frame.components)
        .enumerate()
        .map(|(i, (c, out))| {
            let plane = Plane {
                // The component's own samples, across and down.
                width: (frame.width * u32::from(c.h)).div_ceil(hmax) as usize,
                height: (frame.height * u32::from(c.v)).div_ceil(vmax) as usize,
                blocks: &kept.coefficients.blocks[i],
                stride: (in_mcus_x * u32::from(c.h)) as usize,
            };
            let grid = (
                (out_mcus_x * u32::from(out.h)) as usize,
                (out_mcus_y * u32::from(out.v)) as usize,
            );
            let requant = Requant::new(&quant_in[i], &template.quant[usize::from(out.tq)]);
            plane.turn(grid, &requant, &basis)
        })
        .collect();

    let mut writer = BitWriter {
        out: Vec::with_capacity(data.len() + data.len() / 4 + 1024),
        acc: 0,
        filled: 0,
    };
    writer.out.extend_from_slice(&template.header);
    let mut predictions = [0i32; 4];
    let codes: Vec<(&Code, &Code)> = template
        .scan_tables
        .iter()
        .map(|&(dc, ac)| (&template.codes[dc], &template.codes[4 + ac]))
        .collect();
    if let [_] = out_frame.components.as_slice() {
        // One component: a block per MCU, only those inside the image.
        let (across, down) = out_frame.blocks(&out_frame.components[0]);
        let stride = (out_mcus_x * u32::from(out_frame.components[0].h)) as usize;
        for y in 0..down as usize {
            for x in 0..across as usize {
                let (dc, ac) = codes[0];
                writer.block(&turned[0][y * stride + x], &mut predictions[0], dc, ac);
            }
        }
    } else {
        for my in 0..out_mcus_y as usize {
            for mx in 0..out_mcus_x as usize {
                for (i, c) in out_frame.components.iter().enumerate() {
                    let (h, v) = (usize::from(c.h), usize::from(c.v));
                    let stride = out_mcus_x as usize * h;
                    let (dc, ac) = codes[i];
                    for y in 0..v {
                        for x in 0..h {
                            let block = &turned[i][(my * v + y) * stride + mx * h + x];
                            writer.block(block, &mut predictions[i], dc, ac);
                        }
                    }
                }
            }
        }
    }
    for blocks in turned
        .into_iter()
        .chain(std::mem::take(&mut kept.coefficients.blocks))
    {
        spare::give_blocks(blocks);
    }
    let mut bytes = writer.finish();
    bytes.extend_from_slice(&[0xFF, 0xD9]);
    Ok(Some(Turned {
        bytes,
        width: frame.width,
        height: frame.height,
        grey,
    }))
}

/// Natural (row-major) index of each zig-zag position.
const ZIGZAG: [usize; 64] = zigzag();

const fn zigzag() -> [usize; 64] {
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

/// From the input's quantisation of a component to the output's, in
/// zig-zag order, with the signs that turn a block by 180 degrees.
struct Requant {
    q_in: [i32; 64],
    q_out: [i32; 64],
    /// -1 where horizontal plus vertical frequency is odd, else 1.
    sign: [i32; 64],
    same: bool,
    /// In natural order: what dequantises the input, and the reciprocal of
    /// the output's quantiser.
    dequantise: [f32; 64],
    reciprocal: [f32; 64],
}

impl Requant {
    fn new(q_in: &[u16; 64], q_out: &[u16; 64]) -> Requant {
        let sign = std::array::from_fn(|k| {
            let n = ZIGZAG[k];
            if (n / 8 + n % 8) % 2 == 1 { -1 } else { 1 }
        });
        let mut dequantise = [0f32; 64];
        let mut reciprocal = [0f32; 64];
        for (k, &n) in ZIGZAG.iter().enumerate() {
            dequantise[n] = f32::from(q_in[k]);
            reciprocal[n] = 1.0 / f32::from(q_out[k]);
        }
        Requant {
            q_in: q_in.map(i32::from),
            q_out: q_out.map(i32::from),
            sign,
            same: q_in == q_out,
            dequantise,
            reciprocal,
        }
    }

    /// One block turned and requantised.
    fn turn(&self, block: &[i16; 64]) -> [i16; 64] {
        if self.same {
            return std::array::from_fn(|k| (i32::from(block[k]) * self.sign[k]) as i16);
        }
        std::array::from_fn(|k| {
            let value = i32::from(block[k]) * self.q_in[k] * self.sign[k];
            let half = self.q_out[k] / 2;
            let rounded = if value < 0 {
                (value - half) / self.q_out[k]
            } else {
                (value + half) / self.q_out[k]
            };
            clamp(rounded)
        })
    }

    /// A block of values (natural order, scaled as the orthonormal DCT
    /// gives them) quantised.
    fn quantise(&self, values: &[[f32; 8]; 8]) -> [i16; 64] {
        let values = values.as_flattened();
        let mut quantised = [0i32; 64];
        for ((q, &value), &reciprocal) in quantised.iter_mut().zip(values).zip(&self.reciprocal) {
            let value = value * reciprocal;
            // Rounded half away from zero (`as` truncates, inline).
            *q = (value + 0.5f32.copysign(value)) as i32;
        }
        std::array::from_fn(|k| clamp(quantised[ZIGZAG[k]]))
    }
}

/// Baseline JPEG codes values of at most 11 bits (DC differences) and 10
/// bits (AC): within ±1023 every difference fits.
fn clamp(value: i32) -> i16 {
    value.clamp(-1023, 1023) as i16
}

/// One component's coefficients as read.
struct Plane<'a> {
    /// Samples across and down.
    width: usize,
    height: usize,
    blocks: &'a [[i16; 64]],
    /// Blocks across the grid `blocks` covers.
    stride: usize,
}

impl Plane<'_> {
    /// The component turned onto an output grid of `grid` blocks across and
    /// down (the grid whole MCUs cover; blocks past the image repeat the
    /// edge).
    fn turn(&self, grid: (usize, usize), requant: &Requant, basis: &Basis) -> Vec<[i16; 64]> {
        let (across, down) = (self.width.div_ceil(8), self.height.div_ceil(8));
        let mut out = spare::blocks(0);
        out.reserve(grid.0 * grid.1);
        if self.width.is_multiple_of(8) && self.height.is_multiple_of(8) {
            for y in 0..grid.1 {
                let from_y = down - 1 - y.min(down - 1);
                for x in 0..grid.0 {
                    let from_x = across - 1 - x.min(across - 1);
                    let mut block = requant.turn(&self.blocks[from_y * self.stride + from_x]);
                    if x >= across || y >= down {
                        // Padding: the edge's average is enough.
                        block[1..].fill(0);
                    }
                    out.push(block);
                }
            }
            return out;
        }
        // Samples: every block through the inverse DCT. When the columns
        // fill whole blocks (the usual case: 640 wide, 360 high), only the
        // vertical one: rows of samples, columns of horizontal frequencies,
        // turned left to right in the DCT domain.
        let columns_only = self.width.is_multiple_of(8);
        let row_len = across * 8;
        let mut samples = spare::samples(row_len * down * 8);
        for by in 0..down {
            for bx in 0..across {
                let coefficients = &self.blocks[by * self.stride + bx];
                let mut values = [[0f32; 8]; 8];
                let flat = values.as_flattened_mut();
                for (&n, &c) in ZIGZAG.iter().zip(coefficients) {
                    flat[n] = f32::from(c);
                }
                for (v, q) in flat.iter_mut().zip(&requant.dequantise) {
                    *v *= q;
                }
                let pixels = if columns_only {
                    product(&basis.a, &values)
                } else {
                    basis.inverse(&values)
                };
                for (y, row) in pixels.iter().enumerate() {
                    let at = (by * 8 + y) * row_len + bx * 8;
                    samples[at..at + 8].copy_from_slice(row);
                }
            }
        }
        // Turned, edges repeated past the image: rows of whole blocks.
        let last_y = self.height - 1;
        let turned_len = grid.0 * 8;
        let mut turned = spare::samples(turned_len * grid.1 * 8);
        for (y, row) in turned.chunks_exact_mut(turned_len).enumerate() {
            let from_y = last_y - y.min(last_y);
            let line = &samples[from_y * row_len..from_y * row_len + self.width];
            if columns_only {
                for (x, block) in row.chunks_exact_mut(8).enumerate() {
                    let from_x = (across - 1 - x.min(across - 1)) * 8;
                    for (u, (to, from)) in
                        block.iter_mut().zip(&line[from_x..from_x + 8]).enumerate()
                    {
                        *to = if u % 2 == 1 { -*from } else { *from };
                    }
                }
                continue;
            }
            let (inside, past) = row.split_at_mut(self.width.min(turned_len));
            for (pixel, from) in inside.iter_mut().zip(line.iter().rev()) {
                *pixel = *from;
            }
            past.fill(line[0]);
        }
        // Through the forward DCT.
        for by in 0..grid.1 {
            for bx in 0..grid.0 {
                let pixels: [[f32; 8]; 8] = std::array::from_fn(|y| {
                    let at = (by * 8 + y) * turned_len + bx * 8;
                    turned[at..at + 8].try_into().expect("eight samples")
                });
                let coefficients = if columns_only {
                    product(&basis.t, &pixels)
                } else {
                    basis.forward(&pixels)
                };
                out.push(requant.quantise(&coefficients));
            }
        }
        spare::give_samples(samples);
        spare::give_samples(turned);
        out
    }
}

/// The orthonormal 8-point DCT basis: `a[x][u]` = c(u)/2 cos((2x+1)uπ/16).
struct Basis {
    a: [[f32; 8]; 8],
    /// Its transpose.
    t: [[f32; 8]; 8],
}

impl Basis {
    fn new() -> Basis {
        let a: [[f32; 8]; 8] = std::array::from_fn(|x| {
            std::array::from_fn(|u| {
                let c = if u == 0 {
                    std::f64::consts::FRAC_1_SQRT_2
                } else {
                    1.0
                };
                let angle = (2 * x + 1) as f64 * u as f64 * std::f64::consts::PI / 16.0;
                (c / 2.0 * angle.cos()) as f32
            })
        });
        let t = std::array::from_fn(|u| std::array::from_fn(|x| a[x][u]));
        Basis { a, t }
    }

    /// Samples (rows y, columns x) from coefficients (rows v, columns u).
    fn inverse(&self, f: &[[f32; 8]; 8]) -> [[f32; 8]; 8] {
        sandwich(&self.a, f, &self.t)
    }

    /// Coefficients (rows v, columns u) from samples (rows y, columns x).
    fn forward(&self, f: &[[f32; 8]; 8]) -> [[f32; 8]; 8] {
        sandwich(&self.t, f, &self.a)
    }
}

/// `l · m · r`.
#[inline]
fn sandwich(l: &[[f32; 8]; 8], m: &[[f32; 8]; 8], r: &[[f32; 8]; 8]) -> [[f32; 8]; 8] {
    product(&product(l, m), r)
}

/// `a · b`, written so that each step works on whole rows of eight.
#[inline(always)]
fn product(a: &[[f32; 8]; 8], b: &[[f32; 8]; 8]) -> [[f32; 8]; 8] {
    let mut out = [[0f32; 8]; 8];
    for (out, weights) in out.iter_mut().zip(a) {
        for (&w, row) in weights.iter().zip(b) {
            for (o, v) in out.iter_mut().zip(row) {
                *o += w * v;
            }
        }
    }
    out
}

/// A Huffman table for encoding: each symbol's code and length (0 when the
/// table has none).
struct Code {
    code: [u16; 256],
    length: [u8; 256],
}

impl Code {
    fn new(counts: &[u8], symbols: &[u8]) -> Code {
        let mut table = Code {
            code: [0; 256],
            length: [0; 256],
        };
        let mut code = 0u16;
        let mut symbols = symbols.iter();
        for (length, &count) in (1..=16u8).zip(counts) {
            for _ in 0..count {
                if let Some(&symbol) = symbols.next() {
                    table.code[usize::from(symbol)] = code;
                    table.length[usize::from(symbol)] = length;
                }
                code = code.wrapping_add(1);
            }
            code = code.wrapping_shl(1);
        }
        table
    }

    /// Whether every symbol of the values [`clamp`] lets through has a code.
    fn is_complete(&self, dc: bool) -> bool {
        if dc {
            (0..=11).all(|s| self.length[s] > 0)
        } else {
            let ac = (0..16).flat_map(|run| (1..=10).map(move |size| run << 4 | size));
            [0x00, 0xF0]
                .into_iter()
                .chain(ac)
                .all(|s| self.length[s] > 0)
        }
    }
}

/// What jpeg-encoder writes before the image data, at a quality and
/// subsampling: the header to copy and the tables to code with.
struct Template {
    /// Every byte up to the image data, with the size patched in.
    header: Vec<u8>,
    components: Vec<Component>,
    /// Quantisation tables 0 to 3, zig-zag order.
    quant: [[u16; 64]; 4],
    /// DC tables 0 to 3, then AC tables 0 to 3.
    codes: Vec<Code>,
    /// Per component (in frame order), its DC and AC table numbers.
    scan_tables: Vec<(usize, usize)>,
}

impl Template {
    /// The template for turning `frame` at `quality`, or `None` where
    /// jpeg-encoder cannot write its subsampling.
    fn new(frame: &Frame, quality: u8) -> Option<Template> {
        let (width, height) = (
            u16::try_from(frame.width).ok()?,
            u16::try_from(frame.height).ok()?,
        );
        let mut jpeg = Vec::new();
        let mut encoder = Encoder::new(&mut jpeg, quality);
        match frame.components.as_slice() {
            [_] => encoder.encode(&[128; 64], 8, 8, ColorType::Luma).ok()?,
            [y, chroma @ ..] if chroma.iter().all(|c| (c.h, c.v) == (1, 1)) => {
                encoder.set_sampling_factor(SamplingFactor::from_factors(y.h, y.v)?);
                let (w, h) = (8 * u16::from(y.h), 8 * u16::from(y.v));
                let pixels = vec![128; usize::from(w) * usize::from(h) * 3];
                encoder.encode(&pixels, w, h, ColorType::Rgb).ok()?;
            }
            _ => return None,
        }
        let mut template = Template {
            header: Vec::new(),
            components: Vec::new(),
            quant: [[1; 64]; 4],
            codes: (0..8).map(|_| Code::new(&[], &[])).collect(),
            scan_tables: Vec::new(),
        };
        let mut pos = 2;
        loop {
            let (&[0xFF, code], rest) = jpeg.get(pos..)?.split_first_chunk::<2>()? else {
                return None;
            };
            let length = usize::from(u16::from_be_bytes(*rest.first_chunk::<2>()?));
            let segment = rest.get(2..length)?;
            match code {
                0xDB => {
                    for table in segment.chunks(65) {
                        let id = usize::from(*table.first()? & 0x0F);
                        let values = table.get(1..65)?;
                        *template.quant.get_mut(id)? =
                            std::array::from_fn(|k| u16::from(values[k]));
                    }
                }
                0xC0 => {
                    let [8, _, _, _, _, count, ref rest @ ..] = *segment else {
                        return None;
                    };
                    template.components = rest
                        .chunks_exact(3)
                        .take(usize::from(count))
                        .map(|c| Component {
                            id: c[0],
                            h: c[1] >> 4,
                            v: c[1] & 0x0F,
                            tq: c[2] & 0x03,
                        })
                        .collect();
                    // The real size, in place of the template's.
                    jpeg[pos + 5..pos + 7].copy_from_slice(&height.to_be_bytes());
                    jpeg[pos + 7..pos + 9].copy_from_slice(&width.to_be_bytes());
                }
                0xC4 => {
                    let mut tables = segment;
                    while let [class_id, rest @ ..] = tables {
                        let counts = rest.get(..16)?;
                        let total = counts.iter().map(|&c| usize::from(c)).sum::<usize>();
                        let symbols = rest.get(16..16 + total)?;
                        let index = usize::from(class_id >> 4) * 4 + usize::from(class_id & 3);
                        *template.codes.get_mut(index)? = Code::new(counts, symbols);
                        tables = &rest[16 + total..];
                    }
                }
                0xDA => {
                    let count = usize::from(*segment.first()?);
                    for pair in segment.get(1..1 + 2 * count)?.chunks_exact(2) {
                        let index = template.components.iter().position(|c| c.id == pair[0])?;
                        if index != template.scan_tables.len() {
                            return None;
                        }
                        let (dc, ac) = (usize::from(pair[1] >> 4 & 3), usize::from(pair[1] & 3));
                        if !template.codes[dc].is_complete(true)
                            || !template.codes[4 + ac].is_complete(false)
                        {
                            return None;
                        }
                        template.scan_tables.push((dc, ac));
                    }
                    template.header = jpeg[..pos + 2 + length].to_vec();
                    break;
                }
                _ => {}
            }
            pos += 2 + length;
        }
        let same_layout = template.components.len() == frame.components.len()
            && template.scan_tables.len() == frame.components.len()
            && (frame.components.len() == 1
                || template
                    .components
                    .iter()
                    .zip(&frame.components)
                    .all(|(t, f)| (t.h, t.v) == (f.h, f.v)));
        same_layout.then_some(template)
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

/// [`BitWriter::put`] on its parts, which a caller can keep in registers.
#[inline(always)]
fn put(out: &mut Vec<u8>, acc: &mut u64, filled: &mut u32, bits: u32, length: u32) {
    *acc = (*acc << length) | u64::from(bits);
    *filled += length;
    if *filled >= 32 {
        *filled -= 32;
        let word = (*acc >> *filled) as u32;
        // Whether a byte is 0xFF: whether one of `!word` is zero.
        if (!word).wrapping_sub(0x0101_0101) & word & 0x8080_8080 == 0 {
            out.extend_from_slice(&word.to_be_bytes());
        } else {
            for byte in word.to_be_bytes() {
                out.push(byte);
                if byte == 0xFF {
                    out.push(0);
                }
            }
        }
    }
}

/// Entropy-coded data being written: bits gathered in a word, bytes of
/// 0xFF followed by a stuffed zero.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    filled: u32,
}

impl BitWriter {
    /// Appends the low `length` bits of `bits` (at most 32 at a time).
    #[inline(always)]
    fn put(&mut self, bits: u32, length: u32) {
        put(&mut self.out, &mut self.acc, &mut self.filled, bits, length);
    }

    /// A value's size category and its bits as JPEG codes them.
    #[inline(always)]
    fn magnitude(value: i32) -> (u32, u32) {
        let size = 32 - value.unsigned_abs().leading_zeros();
        let bits = if value < 0 { value - 1 } else { value } as u32;
        (size, bits & ((1u32 << size) - 1))
    }

    /// One block (zig-zag order): its DC difference from `prediction`,
    /// then runs of zeros and values up to the end-of-block code.
    #[inline]
    fn block(&mut self, block: &[i16; 64], prediction: &mut i32, dc: &Code, ac: &Code) {
        let (mut acc, mut filled) = (self.acc, self.filled);
        let out = &mut self.out;
        let value = i32::from(block[0]);
        let (size, bits) = Self::magnitude(value - *prediction);
        *prediction = value;
        let s = size as usize;
        put(
            out,
            &mut acc,
            &mut filled,
            u32::from(dc.code[s]) << size | bits,
            u32::from(dc.length[s]) + size,
        );
        let mut nonzero = nonzero_mask(block) & !1;
        let mut last = 0u32;
        while nonzero != 0 {
            let k = nonzero.trailing_zeros();
            nonzero &= nonzero - 1;
            let mut run = k - last - 1;
            while run >= 16 {
                let zrl = (u32::from(ac.code[0xF0]), u32::from(ac.length[0xF0]));
                put(out, &mut acc, &mut filled, zrl.0, zrl.1);
                run -= 16;
            }
            let (size, bits) = Self::magnitude(i32::from(block[k as usize]));
            let symbol = (run << 4 | size) as usize;
            put(
                out,
                &mut acc,
                &mut filled,
                u32::from(ac.code[symbol]) << size | bits,
                u32::from(ac.length[symbol]) + size,
            );
            last = k;
        }
        if last != 63 {
            put(
                out,
                &mut acc,
                &mut filled,
                u32::from(ac.code[0]),
                u32::from(ac.length[0]),
            );
        }
        (self.acc, self.filled) = (acc, filled);
    }

    /// The bytes, the last one padded with ones.
    fn finish(mut self) -> Vec<u8> {
        let pad = (8 - self.filled % 8) % 8;
        self.put((1 << pad) - 1, pad);
        while self.filled >= 8 {
            self.filled -= 8;
            let byte = (self.acc >> self.filled) as u8;
            self.out.push(byte);
            if byte == 0xFF {
                self.out.push(0);
            }
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::GenericImageView;

    use crate::flip::error::Cause;
    use jpeg_encoder::SamplingFactor as F;

    /// A picture of `w` x `h` as a JPEG made by jpeg-encoder at `quality`.
    fn jpeg(w: u16, h: u16, sampling: F, quality: u8, grey: bool) -> Vec<u8> {
        let picture = crate::flip::samples::picture(3, w.into(), h.into());
        let mut out = Vec::new();
        let mut encoder = Encoder::new(&mut out, quality);
        encoder.set_sampling_factor(sampling);
        if grey {
            let luma: Vec<u8> = picture.pixels().map(|p| p[1]).collect();
            encoder.encode(&luma, w, h, ColorType::Luma).unwrap();
        } else {
            encoder
                .encode(picture.as_raw(), w, h, ColorType::Rgb)
                .unwrap();
        }
        out
    }

    fn turned(data: &[u8], quality: u8) -> Vec<u8> {
        turn180(data, quality, u64::MAX)
            .unwrap()
            .expect("turnable")
            .bytes
    }

    #[test]
    fn turning_twice_at_the_same_quality_gives_back_the_same_file() {
        // Whole blocks in every component: nothing is lost.
        for (w, h, sampling, grey) in [
            (64, 48, F::F_2_2, false),
            (48, 32, F::F_2_1, false),
            (40, 24, F::F_1_1, false),
            (24, 16, F::F_1_1, true),
        ] {
            let original = jpeg(w, h, sampling, 75, grey);
            let once = turned(&original, 75);
            assert_ne!(once, original);
            assert_eq!(turned(&once, 75), original, "{w}x{h} {sampling:?}");
        }
    }

    #[test]
    fn turned_jpegs_decode_to_the_turned_picture() {
        // Sizes that end inside blocks and MCUs, restart markers, grey,
        // another quality.
        let mut restarts = Vec::new();
        let picture = crate::flip::samples::picture(3, 38, 30);
        let mut encoder = Encoder::new(&mut restarts, 90);
        encoder.set_restart_interval(2);
        encoder
            .encode(picture.as_raw(), 38, 30, ColorType::Rgb)
            .unwrap();
        let cases = [
            (jpeg(38, 30, F::F_2_2, 90, false), 90),
            (jpeg(38, 29, F::F_2_1, 85, false), 60),
            (jpeg(33, 17, F::F_1_1, 75, false), 75),
            (jpeg(37, 29, F::F_1_1, 90, true), 90),
            (jpeg(640, 360, F::F_2_2, 75, false), 75),
            (restarts, 90),
        ];
        for (i, (data, quality)) in cases.into_iter().enumerate() {
            let mut expected = super::super::decode(&data).unwrap();
            crate::flip::rotate180(&mut expected);
            let got = super::super::decode(&turned(&data, quality)).unwrap();
            assert_eq!(got.dimensions(), expected.dimensions(), "case {i}");
            assert_eq!(got.color(), expected.color(), "case {i}");
            let (a, b) = (got.as_bytes(), expected.as_bytes());
            let mean = |a: &[u8], b: &[u8]| {
                a.iter()
                    .zip(b)
                    .map(|(&x, &y)| x.abs_diff(y) as f64)
                    .sum::<f64>()
                    / a.len() as f64
            };
            // No further from the turned picture than encoding it again.
            let channels = if expected.color().has_color() { 3 } else { 1 };
            let again =
                super::super::encode(b, got.width(), got.height(), channels, quality).unwrap();
            let again = super::super::decode(&again).unwrap();
            let (ours, reencoded) = (mean(a, b), mean(again.as_bytes(), b));
            assert!(
                ours <= reencoded * 1.1,
                "case {i}: mean difference {ours}, {reencoded} encoding again"
            );
        }
    }

    #[test]
    fn progressive_jpegs_and_odd_sizes_of_subsampled_ones_are_left_to_the_pixel_path() {
        let progressive = include_bytes!("../../../tests/data/progressive.jpg");
        assert_eq!(turn180(progressive, 75, u64::MAX).unwrap(), None);
        let odd = jpeg(37, 30, F::F_2_2, 75, false);
        assert_eq!(turn180(&odd, 75, u64::MAX).unwrap(), None);
        let flipped =
            crate::flip::flip_bytes(&odd, crate::flip::Format::Jpg, 75, u64::MAX).unwrap();
        assert_eq!((flipped.width, flipped.height), (37, 30));
    }

    #[test]
    fn damaged_and_oversized_jpegs_are_refused_before_turning() {
        let data = jpeg(640, 360, F::F_2_2, 75, false);
        let mut zeroed = data.clone();
        let middle = data.len() / 2;
        zeroed[middle..middle + 2000].fill(0);
        assert!(matches!(
            turn180(&zeroed, 75, u64::MAX),
            Err(Cause::CorruptJpeg(_))
        ));
        assert!(matches!(
            turn180(&data[..data.len() / 2], 75, u64::MAX),
            Err(Cause::Truncated { .. })
        ));
        assert!(matches!(
            turn180(&data, 75, 640 * 360 - 1),
            Err(Cause::TooManyPixels { .. })
        ));
    }

    #[test]
    fn the_zigzag_order_starts_and_ends_as_jpeg_has_it() {
        assert_eq!(ZIGZAG[..10], [0, 1, 8, 16, 9, 2, 3, 10, 17, 24]);
        assert_eq!(ZIGZAG[60..], [47, 55, 62, 63]);
        let mut sorted = ZIGZAG;
        sorted.sort_unstable();
        assert!(sorted.iter().enumerate().all(|(i, &n)| i == n));
    }

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
    fn the_dct_basis_goes_there_and_back() {
        let basis = Basis::new();
        let pixels: [[f32; 8]; 8] =
            std::array::from_fn(|y| std::array::from_fn(|x| ((x * 37 + y * 11) % 256) as f32));
        let back = basis.inverse(&basis.forward(&pixels));
        for (a, b) in pixels.iter().flatten().zip(back.iter().flatten()) {
            assert!((a - b).abs() < 1e-3, "{a} {b}");
        }
    }
}
