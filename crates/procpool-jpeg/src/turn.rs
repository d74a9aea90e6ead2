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

mod axis;
mod block;
mod template;

use super::coder::{Code, Coder};
use super::scan::{Coding, Frame, Sparse, spare};
use super::{Depth, Error, Kept, walk};
use axis::{Axis, Step};
use block::{COLUMN_MAJOR, ODD, Requant, ZIGZAG, clamp, quantise};
use template::Template;

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

#[cfg(test)]
mod tests {
    use super::*;
    use image::GenericImageView;

    use jpeg_encoder::{ColorType, Encoder, SamplingFactor as F};

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
}
