//! Turning a JPEG by 180 degrees without decoding it to pixels: the fast
//! way from a sequential JPEG to a turned JPEG (or PDF), in any build.
//!
//! The image data is read once, by the same walk that checks it (see
//! [`walk`]), keeping each block's non-zero quantised
//! coefficients. Turning a block by 180 degrees negates its coefficients of
//! odd horizontal plus vertical frequency, so a component whose samples
//! fill whole blocks is turned by reversing its blocks and flipping those
//! signs, then requantising to the output quality (nothing is lost where
//! the input has the same tables: a photo saved at quality 75 and turned at
//! 75 keeps every coefficient). A component that ends inside a block (4:2:0
//! chroma of a photo 360 rows high: 180 rows, 22.5 blocks) would have its
//! blocks straddle the turned grid: each turned block is made from the two
//! blocks it overlaps by one linear map per block (the inverse DCT, the
//! turn and the shift, and the forward DCT in one 8x8 matrix, in floating
//! point, with no rounding to 8 bits between), applied to their non-zero
//! coefficients only, then quantised, as an encoder would. The blocks are
//! made in the order they are written, straight into the Huffman coder.
//! The header and the Huffman tables (the standard ones) are those
//! jpeg-encoder writes at the quality asked, so the output is what the
//! pixel path would give, less its losses.
//!
//! Only baseline and extended sequential 8-bit JPEGs with one scan of grey
//! or YCbCr (no Adobe segment) whose chroma is not subsampled more than
//! jpeg-encoder can write are turned here; [`turn180`] says `None` for the
//! rest, after checking them, and the caller decodes pixels instead.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::LazyLock;

use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use super::coder::{Code, Coder};
use super::scan::{Coding, Component, Frame, Sparse, spare};
use super::{Depth, Error, Kept, walk};

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
/// As [`inspect`](super::inspect); [`Error::Corrupt`] for a component
/// whose quantisation table is missing or holds a zero.
pub fn turn180(data: &[u8], quality: u8, max_pixels: u64) -> Result<Option<Turned>, Error> {
    let mut kept = Kept::default();
    let frame = walk(data, max_pixels, Depth::ImageData, Some(&mut kept))?;
    let turned = turn_kept(data, &frame, &kept, quality);
    for plane in std::mem::take(&mut kept.coefficients.planes) {
        spare::give_plane(plane);
    }
    turned
}

/// [`turn180`] once the image data is read.
fn turn_kept(
    data: &[u8],
    frame: &Frame,
    kept: &Kept,
    quality: u8,
) -> Result<Option<Turned>, Error> {
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
    let (Ok(width), Ok(height)) = (u16::try_from(frame.width), u16::try_from(frame.height)) else {
        return Ok(None);
    };
    let mut quant_in = Vec::with_capacity(frame.components.len());
    for c in &frame.components {
        let table = kept
            .scan_quant
            .get(usize::from(c.tq))
            .copied()
            .flatten()
            .filter(|t| !t.contains(&0))
            .ok_or_else(|| {
                Error::Corrupt(format!(
                    "component {} uses quantisation table {}, which is not defined or holds a zero",
                    c.id, c.tq
                ))
            })?;
        quant_in.push(table);
    }
    let Some(template) = Template::cached(frame, quality) else {
        return Ok(None);
    };
    let out_frame = Frame {
        components: template.components.clone(),
        ..frame.clone()
    };
    let (out_mcus_x, out_mcus_y) = out_frame.mcus();
    let (in_mcus_x, _) = frame.mcus();
    let turns: Vec<Turn> = frame
        .components
        .iter()
        .zip(&out_frame.components)
        .enumerate()
        .map(|(i, (c, out))| {
            // The component's own samples, across and down.
            let across = (frame.width * u32::from(c.h)).div_ceil(hmax) as usize;
            let down = (frame.height * u32::from(c.v)).div_ceil(vmax) as usize;
            let grid = (
                (out_mcus_x * u32::from(out.h)) as usize,
                (out_mcus_y * u32::from(out.v)) as usize,
            );
            let (dc, ac) = template.scan_tables[i];
            Turn {
                plane: &kept.coefficients.planes[i],
                stride: (in_mcus_x * u32::from(c.h)) as usize,
                across: Axis::new(across, grid.0),
                down: Axis::new(down, grid.1),
                requant: Requant::new(&quant_in[i], &template.quant[usize::from(out.tq)]),
                dc: &template.codes[dc],
                ac: &template.codes[4 + ac],
            }
        })
        .collect();

    let mut coder = Coder::new(data.len() + data.len() / 4);
    let mut predictions = [0i32; 4];
    if let [turn] = turns.as_slice() {
        // One component: a block per MCU, only those inside the image.
        let (across, down) = out_frame.blocks(&out_frame.components[0]);
        for y in 0..down as usize {
            for x in 0..across as usize {
                turn.write(x, y, &mut coder, &mut predictions[0]);
            }
        }
    } else {
        for my in 0..out_mcus_y as usize {
            for mx in 0..out_mcus_x as usize {
                for ((turn, c), prediction) in turns
                    .iter()
                    .zip(&out_frame.components)
                    .zip(&mut predictions)
                {
                    let (h, v) = (usize::from(c.h), usize::from(c.v));
                    for y in 0..v {
                        for x in 0..h {
                            turn.write(mx * h + x, my * v + y, &mut coder, prediction);
                        }
                    }
                }
            }
        }
    }
    let mut bytes = Vec::with_capacity(template.header.len() + data.len() + data.len() / 4);
    bytes.extend_from_slice(&template.header);
    let at = template.size_at;
    bytes[at..at + 2].copy_from_slice(&height.to_be_bytes());
    bytes[at + 2..at + 4].copy_from_slice(&width.to_be_bytes());
    coder.finish(&mut bytes);
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

/// For each zig-zag position, its place in a column-major block
/// (horizontal frequency times eight plus vertical frequency).
const ZIGZAG_COLUMNS: [usize; 64] = {
    let mut order = [0usize; 64];
    let mut k = 0;
    while k < 64 {
        order[k] = (ZIGZAG[k] % 8) * 8 + ZIGZAG[k] / 8;
        k += 1;
    }
    order
};

/// For each place in a column-major block, its zig-zag position.
const COLUMN_MAJOR: [usize; 64] = {
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
fn quantise(sums: &[f32; 8], reciprocal: &[f32; 8]) -> [i16; 8] {
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
const ODD: u64 = odd();

const fn odd() -> u64 {
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
struct Requant {
    q_in: [i32; 64],
    q_out: [i32; 64],
    same: bool,
    /// What dequantises the input (zig-zag order), and the reciprocal of
    /// the output's quantiser (in the column-major order of
    /// [`Turn::mixed`]'s sums), as floats.
    dequantise: [f32; 64],
    reciprocal: [f32; 64],
}

impl Requant {
    fn new(q_in: &[u16; 64], q_out: &[u16; 64]) -> Requant {
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
    fn one(&self, k: usize, value: i32) -> i32 {
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
fn clamp(value: i32) -> i16 {
    value.clamp(-1023, 1023) as i16
}

/// The orthonormal 8-point DCT basis: `A[x][u]` = c(u)/2 cos((2x+1)uπ/16).
static BASIS: LazyLock<[[f64; 8]; 8]> = LazyLock::new(|| {
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
type Matrix = [[f32; 8]; 8];

/// Where one turned block comes from along one axis.
#[derive(Clone, Copy, Default)]
struct Step {
    /// The input blocks along the axis (one or two), and the matrix (in
    /// [`Axis::matrices`]) that takes each to this block.
    from: [u32; 2],
    matrix: [u32; 2],
    count: u8,
    /// Whether the block lies wholly past the samples (padding to whole
    /// MCUs): its DC coefficient is enough.
    padding: bool,
}

/// Where the eight samples of a turned block come from: each one's input
/// block (counted back from the first one's) and its row or column there.
type Shape = [(u32, u8); 8];

/// One axis of a component turned: for each block of the output grid,
/// where it comes from.
struct Axis {
    /// Whether the samples fill whole blocks: each turned block is one
    /// input block with the signs of its odd frequencies flipped.
    exact: bool,
    steps: Vec<Step>,
    matrices: Vec<Matrix>,
}

impl Axis {
    /// The axis of a component `n` samples long turned onto `grid` blocks
    /// (past the samples, the edge repeats).
    fn new(n: usize, grid: usize) -> Axis {
        let blocks = n.div_ceil(8);
        let sign = std::array::from_fn(|w| {
            std::array::from_fn(|v| match (v == w, w % 2) {
                (false, _) => 0.0,
                (true, 0) => 1.0,
                (true, _) => -1.0,
            })
        });
        let mut axis = Axis {
            exact: n.is_multiple_of(8),
            steps: Vec::with_capacity(grid),
            matrices: vec![sign],
        };
        // The blocks whose samples come from the same places relative to
        // their first source share their matrices.
        let mut seen: Vec<(Shape, [u32; 2])> = Vec::new();
        for b in 0..grid {
            let padding = 8 * b >= n;
            if axis.exact {
                let from = (blocks - 1 - b.min(blocks - 1)) as u32;
                axis.steps.push(Step {
                    from: [from, 0],
                    matrix: [0, 0],
                    count: 1,
                    padding,
                });
                continue;
            }
            // Output sample 8b + r is input sample n - 1 - (8b + r), the
            // edge repeated past the end: block i / 8, its row i % 8.
            let sources: [(usize, usize); 8] = std::array::from_fn(|r| {
                let i = n - 1 - (8 * b + r).min(n - 1);
                (i / 8, i % 8)
            });
            let first = sources[0].0;
            let shape = sources.map(|(s, l)| ((first - s) as u32, l as u8));
            let mut step = Step {
                from: [first as u32, first.saturating_sub(1) as u32],
                padding,
                count: if sources[7].0 == first { 1 } else { 2 },
                ..Step::default()
            };
            if let Some((_, matrix)) = seen.iter().find(|(s, _)| *s == shape) {
                step.matrix = *matrix;
            } else {
                for j in 0..usize::from(step.count) {
                    let mut m = [[0f64; 8]; 8];
                    for (r, &(s, l)) in sources.iter().enumerate() {
                        if s != first - j {
                            continue;
                        }
                        for (w, row) in m.iter_mut().enumerate() {
                            for (v, value) in row.iter_mut().enumerate() {
                                *value += BASIS[l][w] * BASIS[r][v];
                            }
                        }
                    }
                    step.matrix[j] = axis.matrices.len() as u32;
                    axis.matrices.push(m.map(|row| row.map(|v| v as f32)));
                }
                seen.push((shape, step.matrix));
            }
            axis.steps.push(step);
        }
        axis
    }
}

/// One component being turned and written.
struct Turn<'a> {
    plane: &'a Sparse,
    /// Blocks across the input grid.
    stride: usize,
    across: Axis,
    down: Axis,
    requant: Requant,
    dc: &'a Code,
    ac: &'a Code,
}

impl Turn<'_> {
    /// Writes the turned block at `x`, `y` of the output grid.
    #[inline]
    fn write(&self, x: usize, y: usize, coder: &mut Coder, prediction: &mut i32) {
        let (h, v) = (&self.across.steps[x], &self.down.steps[y]);
        let padding = h.padding || v.padding;
        if !(self.across.exact && self.down.exact) {
            let mut block = self.mixed(h, v);
            if padding {
                block[1..].fill(0);
            }
            let mut put = coder.block();
            put.dense(&block, prediction, self.dc, self.ac);
            let state = put.state();
            coder.done(state);
            return;
        }
        // One input block, its odd frequencies negated.
        let block = &self.plane.blocks[v.from[0] as usize * self.stride + h.from[0] as usize];
        let requant = &self.requant;
        let mut put = coder.block();
        let dc = if requant.same {
            i32::from(block.dc)
        } else {
            requant.one(0, i32::from(block.dc))
        };
        put.dc(i32::from(clamp(dc)), prediction, self.dc);
        let mut last = 0;
        if !padding {
            let mut mask = block.mask;
            let values = self.plane.values(block);
            if requant.same {
                let mut next = || {
                    let k = mask.trailing_zeros();
                    mask &= mask - 1;
                    let negate = (ODD >> k & 1) as i32;
                    (k, negate)
                };
                for pair in values.chunks(2) {
                    let (k, negate) = next();
                    let value = (i32::from(pair[0]) ^ -negate) + negate;
                    put.ac_waiting(k - last - 1, value, self.ac);
                    last = k;
                    if let Some(&value) = pair.get(1) {
                        let (k, negate) = next();
                        let value = (i32::from(value) ^ -negate) + negate;
                        put.ac(k - last - 1, value, self.ac);
                        last = k;
                    }
                }
            } else {
                for &value in values {
                    let k = mask.trailing_zeros();
                    mask &= mask - 1;
                    let negate = (ODD >> k & 1) as i32;
                    let value = (i32::from(value) ^ -negate) + negate;
                    let value = requant.one(k as usize, value);
                    if value != 0 {
                        put.ac(k - last - 1, value, self.ac);
                        last = k;
                    }
                }
            }
        }
        if last != 63 {
            put.end_of_block(self.ac);
        }
        let state = put.state();
        coder.done(state);
    }

    /// A turned block made from the input blocks it overlaps, each through
    /// the matrices of both axes, quantised.
    fn mixed(&self, h: &Step, v: &Step) -> [i16; 64] {
        // Column-major: `sums[u * 8 + v]` for horizontal frequency u and
        // vertical frequency v, so that a vertical matrix row adds to eight
        // neighbours.
        let mut sums = [0f32; 64];
        // The columns anything was added to: the others stay zero.
        let mut columns = if self.across.exact { 0u8 } else { 0xFF };
        for i in 0..usize::from(v.count) {
            let vertical = &self.down.matrices[v.matrix[i] as usize];
            for j in 0..usize::from(h.count) {
                let horizontal = &self.across.matrices[h.matrix[j] as usize];
                let index = v.from[i] as usize * self.stride + h.from[j] as usize;
                let block = &self.plane.blocks[index];
                let mut add = |k: usize, value: i16, sums: &mut [f32; 64]| {
                    let n = ZIGZAG[k];
                    let (w, u) = (n / 8, n % 8);
                    let value = f32::from(value) * self.requant.dequantise[k];
                    if self.across.exact {
                        columns |= 1 << u;
                        let value = if u % 2 == 1 { -value } else { value };
                        let column = &mut sums[u * 8..u * 8 + 8];
                        for (s, m) in column.iter_mut().zip(&vertical[w]) {
                            *s += value * m;
                        }
                    } else {
                        for (column, &mh) in sums.chunks_exact_mut(8).zip(&horizontal[u]) {
                            let value = value * mh;
                            for (s, m) in column.iter_mut().zip(&vertical[w]) {
                                *s += value * m;
                            }
                        }
                    }
                };
                add(0, block.dc, &mut sums);
                let mut mask = block.mask;
                for &value in self.plane.values(block) {
                    add(mask.trailing_zeros() as usize, value, &mut sums);
                    mask &= mask - 1;
                }
            }
        }
        let mut out = [0i16; 64];
        while columns != 0 {
            let u = columns.trailing_zeros() as usize;
            columns &= columns - 1;
            let at = u * 8;
            let quantised = quantise(
                sums[at..at + 8].try_into().expect("a column"),
                self.requant.reciprocal[at..at + 8]
                    .try_into()
                    .expect("a column"),
            );
            for (&q, &k) in quantised.iter().zip(&COLUMN_MAJOR[at..at + 8]) {
                out[k] = q;
            }
        }
        out
    }
}

/// What jpeg-encoder writes before the image data, at a quality and
/// subsampling: the header to copy and the tables to code with.
struct Template {
    /// Every byte up to the image data.
    header: Vec<u8>,
    /// Where the height and width (two bytes each) are in `header`.
    size_at: usize,
    components: Vec<Component>,
    /// Quantisation tables 0 to 3, zig-zag order.
    quant: [[u16; 64]; 4],
    /// DC tables 0 to 3, then AC tables 0 to 3.
    codes: Vec<Code>,
    /// Per component (in frame order), its DC and AC table numbers.
    scan_tables: Vec<(usize, usize)>,
}

/// What identifies a [`Template`]: the quality and each component's
/// sampling factors.
type TemplateKey = (u8, Vec<(u8, u8)>);

thread_local! {
    /// The templates made so far (a run uses one or two).
    static TEMPLATES: RefCell<Vec<(TemplateKey, Option<Rc<Template>>)>> =
        const { RefCell::new(Vec::new()) };
}

impl Template {
    /// [`Template::new`], made once per thread.
    fn cached(frame: &Frame, quality: u8) -> Option<Rc<Template>> {
        let key = (
            quality,
            frame.components.iter().map(|c| (c.h, c.v)).collect(),
        );
        TEMPLATES.with_borrow_mut(|templates| {
            if let Some((_, template)) = templates.iter().find(|(k, _)| *k == key) {
                return template.clone();
            }
            let template = Template::new(frame, quality).map(Rc::new);
            if templates.len() >= 16 {
                templates.remove(0);
            }
            templates.push((key, template.clone()));
            template
        })
    }

    /// The template for turning `frame` at `quality` (its size left to
    /// patch in at `size_at`), or `None` where jpeg-encoder cannot write
    /// its subsampling.
    fn new(frame: &Frame, quality: u8) -> Option<Template> {
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
            size_at: 0,
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
                    template.size_at = pos + 5;
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

#[cfg(test)]
mod tests {
    use super::*;
    use image::GenericImageView;

    use jpeg_encoder::SamplingFactor as F;

    /// A picture of `w` x `h` as a JPEG made by jpeg-encoder at `quality`.
    fn jpeg(w: u16, h: u16, sampling: F, quality: u8, grey: bool) -> Vec<u8> {
        let picture = crate::samples::picture(3, w.into(), h.into());
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
        let picture = crate::samples::picture(3, 38, 30);
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
            let expected = crate::decode(&data).unwrap().rotate180();
            let got = crate::decode(&turned(&data, quality)).unwrap();
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
            let again = crate::encode(b, got.width(), got.height(), channels, quality).unwrap();
            let again = crate::decode(&again).unwrap();
            let (ours, reencoded) = (mean(a, b), mean(again.as_bytes(), b));
            assert!(
                ours <= reencoded * 1.1,
                "case {i}: mean difference {ours}, {reencoded} encoding again"
            );
        }
    }

    #[test]
    fn progressive_jpegs_and_odd_sizes_of_subsampled_ones_are_left_to_the_pixel_path() {
        let progressive = include_bytes!("../tests/data/progressive.jpg");
        assert_eq!(turn180(progressive, 75, u64::MAX).unwrap(), None);
        let odd = jpeg(37, 30, F::F_2_2, 75, false);
        assert_eq!(turn180(&odd, 75, u64::MAX).unwrap(), None);
    }

    #[test]
    fn damaged_and_oversized_jpegs_are_refused_before_turning() {
        let data = jpeg(640, 360, F::F_2_2, 75, false);
        let mut zeroed = data.clone();
        let middle = data.len() / 2;
        zeroed[middle..middle + 2000].fill(0);
        assert!(matches!(
            turn180(&zeroed, 75, u64::MAX),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(
            turn180(&data[..data.len() / 2], 75, u64::MAX),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            turn180(&data, 75, 640 * 360 - 1),
            Err(Error::TooManyPixels { .. })
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
    fn an_axis_maps_blocks_to_the_turned_samples_blocks() {
        // One axis of 20 samples (2.5 blocks) onto 4 blocks, then 16
        // samples (whole blocks) onto 3: the DCT of each turned block of
        // samples, the edge repeated past the end, from the input blocks'.
        let dct = |x: &[f64]| -> [f64; 8] {
            std::array::from_fn(|v| (0..8).map(|r| BASIS[r][v] * x[r]).sum())
        };
        for (n, grid) in [(20usize, 4usize), (16, 3), (3, 1)] {
            let x: Vec<f64> = (0..8 * n.div_ceil(8))
                .map(|i| if i < n { ((i * 37) % 23) as f64 } else { 0.0 })
                .collect();
            let input: Vec<[f64; 8]> = x.chunks(8).map(dct).collect();
            let axis = Axis::new(n, grid);
            assert_eq!(axis.exact, n % 8 == 0);
            for (b, step) in axis.steps.iter().enumerate() {
                let turned: Vec<f64> = (0..8).map(|r| x[n - 1 - (8 * b + r).min(n - 1)]).collect();
                let expected = dct(&turned);
                let mut got = [0f64; 8];
                for j in 0..usize::from(step.count) {
                    let m = &axis.matrices[step.matrix[j] as usize];
                    for (w, c) in input[step.from[j] as usize].iter().enumerate() {
                        for (v, g) in got.iter_mut().enumerate() {
                            *g += f64::from(m[w][v]) * c;
                        }
                    }
                }
                assert_eq!(step.padding, 8 * b >= n, "n {n} block {b}");
                if axis.exact && step.padding {
                    continue; // the DC coefficient of the edge block, by design
                }
                for (g, e) in got.iter().zip(&expected) {
                    assert!(
                        (g - e).abs() < 1e-3,
                        "n {n} block {b}: {got:?} {expected:?}"
                    );
                }
            }
        }
    }
}
