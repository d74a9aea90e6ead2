//! JPEG for procpool's `flip`: our own check of a file's structure and
//! image data ([`inspect`]), turning a baseline JPEG by 180 degrees in the
//! DCT domain without decoding it ([`turn180`]), and decoding and encoding
//! through one of two back ends: pure Rust by default (zune-jpeg decodes,
//! jpeg-encoder encodes), or libjpeg-turbo with the `turbojpeg` feature
//! (faster, but built from C source with cmake).
//!
//! The check exists because decoders fill in what is missing: the `image`
//! crate and zune-jpeg decode a JPEG cut to 9 KB of 60 KB as a whole image,
//! grey at the bottom, and image data zeroed in the middle as a damaged
//! picture, without complaint. libjpeg-turbo reports such data as warnings,
//! which the `turbojpeg` crate turns into errors: a second line of defence
//! in that build. Every function here takes untrusted bytes and answers bad
//! data with an [`Error`], never a panic; fuzz targets (the crate's `fuzz/`
//! directory, run by CI) hold it to that.
//!
//! ```
//! use procpool_jpeg::{inspect, samples, turn180};
//! let jpeg = samples::jpeg(0);
//! let info = inspect(&jpeg, u64::MAX).unwrap();
//! assert_eq!((info.width, info.height, info.components), (640, 360, 3));
//! let turned = turn180(&jpeg, 75, u64::MAX).unwrap().expect("a baseline 4:2:0 JPEG turns");
//! assert_eq!(inspect(&turned.bytes, u64::MAX).unwrap().width, 640);
//! ```
#![deny(missing_docs, missing_debug_implementations)]

mod coder;
mod scan;
mod turn;

#[cfg(not(feature = "turbojpeg"))]
mod pure;
#[cfg(feature = "turbojpeg")]
mod turbo;

#[cfg(not(feature = "turbojpeg"))]
pub use pure::{Planes, decode, decode_planes, encode};
#[cfg(feature = "turbojpeg")]
pub use turbo::{Planes, decode, decode_planes, encode};

pub use turn::{Turned, turn180};

mod error;
#[cfg(feature = "samples")]
pub mod samples;

pub use error::Error;
use error::check_pixels;
use scan::{Coding, Coefficients, Component, Entropy, Frame};

/// What the frame header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Colour components: 1 grey, 3 YCbCr, 4 CMYK or YCCK.
    pub components: u8,
}

/// Whether `data` starts like a JPEG (the start-of-image marker).
pub fn looks_like_jpeg(data: &[u8]) -> bool {
    data.starts_with(&[0xFF, 0xD8])
}

/// Checks a whole JPEG file and returns its frame header. The structure:
/// every segment must fit in the file, every scan's entropy-coded data must
/// end at a marker, and the end-of-image marker must come after at least one
/// scan; bytes after it are allowed (some cameras append data there). The
/// image data of Huffman-coded (baseline, extended and progressive) JPEGs:
/// every code defined, every block within its 64 coefficients, each scan
/// exactly as long as its blocks need, restart markers where they belong.
/// An image over `max_pixels` is refused as soon as its frame header is
/// read, before any of its data is looked at.
///
/// ```
/// use procpool_jpeg::{Error, inspect, samples};
/// let jpeg = samples::jpeg(0);
/// assert_eq!(inspect(&jpeg, u64::MAX).unwrap().width, 640);
/// let mut zeroed = jpeg.clone();
/// zeroed[20_000..23_000].fill(0);
/// assert!(matches!(inspect(&zeroed, u64::MAX), Err(Error::Corrupt(_))));
/// ```
///
/// # Errors
///
/// [`Error::Truncated`] when the data stops early, [`Error::Corrupt`]
/// when the structure or the image data is wrong, [`Error::TooManyPixels`]
/// over the limit.
pub fn inspect(data: &[u8], max_pixels: u64) -> Result<JpegInfo, Error> {
    let frame = walk(data, max_pixels, Depth::ImageData, None)?;
    Ok(JpegInfo {
        width: frame.width,
        height: frame.height,
        components: frame.components.len() as u8,
    })
}

/// What a flip checks before decoding: as [`inspect`] in the default build;
/// with libjpeg-turbo, which reports bad image data itself, the structure
/// alone.
pub fn check(data: &[u8], max_pixels: u64) -> Result<(), Error> {
    let depth = if cfg!(feature = "turbojpeg") {
        Depth::Structure
    } else {
        Depth::ImageData
    };
    walk(data, max_pixels, depth, None).map(drop)
}

/// The frame header alone, without checking what follows it.
#[cfg_attr(feature = "turbojpeg", allow(dead_code))]
fn frame(data: &[u8]) -> Result<Frame, Error> {
    walk(data, u64::MAX, Depth::Header, None)
}

/// How far [`walk`] looks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Depth {
    /// Up to the frame header.
    Header,
    /// Every segment, and that each scan's data ends at a marker.
    Structure,
    /// Also every code of the image data.
    ImageData,
}

/// What [`walk`] keeps of a sequential JPEG besides checking it, for
/// turning it in the DCT domain (see [`turn`]).
#[derive(Default)]
struct Kept {
    /// The coefficients of the first scan, if it holds every component.
    coefficients: Coefficients,
    /// The quantisation tables (in zig-zag order) as defined so far.
    quant: [Option<[u16; 64]>; 4],
    /// The tables when the first scan began.
    scan_quant: [Option<[u16; 64]>; 4],
    /// How many scans there are.
    scans: u32,
    /// Whether an Adobe segment (APP14) may say the components are not YCbCr.
    adobe: bool,
}

impl Kept {
    fn quant_at_scan(&mut self) {
        self.scan_quant = self.quant;
    }

    /// Reads a DQT segment (after its length) at byte `at`.
    fn define_quant(&mut self, mut segment: &[u8], at: usize) -> Result<(), Error> {
        let bad = || Error::Corrupt(format!("bad quantisation table at byte {at}"));
        while let [pq_tq, rest @ ..] = segment {
            let (precision, id) = (pq_tq >> 4, usize::from(pq_tq & 0x0F));
            let size = if precision == 0 { 64 } else { 128 };
            if precision > 1 || id > 3 || rest.len() < size {
                return Err(bad());
            }
            let mut table = [0u16; 64];
            for (k, q) in table.iter_mut().enumerate() {
                *q = if precision == 0 {
                    u16::from(rest[k])
                } else {
                    u16::from_be_bytes([rest[2 * k], rest[2 * k + 1]])
                };
            }
            self.quant[id] = Some(table);
            segment = &rest[size..];
        }
        Ok(())
    }
}

/// Walks the markers of a JPEG file to the depth asked; with `keep`, also
/// keeps what [`Kept`] holds (at depth [`Depth::ImageData`]).
fn walk(
    data: &[u8],
    max_pixels: u64,
    depth: Depth,
    mut keep: Option<&mut Kept>,
) -> Result<Frame, Error> {
    let len = data.len();
    let truncated = |where_: &str| Error::Truncated {
        bytes: len as u64,
        detail: where_.to_string(),
    };
    let corrupt = |what: String| Error::Corrupt(what);
    if !looks_like_jpeg(data) {
        return Err(corrupt("no start-of-image marker".into()));
    }
    let mut frame: Option<Frame> = None;
    let mut entropy = Entropy::default();
    let mut scans = 0u32;
    let mut pos = 2;
    loop {
        // A marker: 0xFF, any number of 0xFF fill bytes, then the code.
        match data.get(pos) {
            None => return Err(truncated("before the end-of-image marker")),
            Some(0xFF) => {}
            Some(&other) => {
                return Err(corrupt(format!(
                    "expected a marker at byte {pos}, found 0x{other:02x}"
                )));
            }
        }
        while data.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&code) = data.get(pos + 1) else {
            return Err(truncated("before the end-of-image marker"));
        };
        let at = pos;
        pos += 2;
        match code {
            0xD9 => {
                // End of image.
                return match frame {
                    Some(frame) if scans > 0 => Ok(frame),
                    _ => Err(corrupt(format!(
                        "end-of-image marker at byte {at} before any image data"
                    ))),
                };
            }
            0x01 | 0xD0..=0xD7 => continue, // standalone markers
            0x00 => return Err(corrupt(format!("invalid marker 0xff00 at byte {at}"))),
            _ => {}
        }
        let Some(length) = data.get(pos..pos + 2) else {
            return Err(truncated(&format!(
                "inside the {} segment",
                marker_name(code)
            )));
        };
        let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
        if length < 2 {
            return Err(corrupt(format!(
                "{} segment at byte {at} has length {length}",
                marker_name(code)
            )));
        }
        let Some(segment) = data.get(pos + 2..pos + length) else {
            return Err(truncated(&format!(
                "inside the {} segment",
                marker_name(code)
            )));
        };
        pos += length;
        match code {
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                if frame.is_some() {
                    return Err(corrupt(format!("a second frame header at byte {at}")));
                }
                let header = frame_header(code, segment, at)?;
                check_pixels(header.width, header.height, max_pixels)?;
                if depth == Depth::Header {
                    return Ok(header);
                }
                frame = Some(header);
            }
            0xC4 => entropy.define_tables(segment, at)?,
            0xDD => entropy.define_restart_interval(segment, at)?,
            0xDB => {
                if let Some(kept) = keep.as_deref_mut() {
                    kept.define_quant(segment, at)?;
                }
            }
            0xEE => {
                if let Some(kept) = keep.as_deref_mut() {
                    kept.adobe = true;
                }
            }
            0xDA => {
                let Some(frame) = &frame else {
                    return Err(corrupt(format!(
                        "image data at byte {at} before any frame header"
                    )));
                };
                scans += 1;
                let start = pos;
                pos = end_of_entropy_data(data, pos)
                    .ok_or_else(|| truncated("in the middle of the image data"))?;
                if depth == Depth::ImageData {
                    let coefficients = match keep.as_deref_mut() {
                        Some(kept) if scans == 1 => {
                            kept.quant_at_scan();
                            Some(&mut kept.coefficients)
                        }
                        _ => None,
                    };
                    entropy.check_scan(
                        frame,
                        segment,
                        at,
                        &data[start..pos],
                        start,
                        coefficients,
                    )?;
                }
                if let Some(kept) = keep.as_deref_mut() {
                    kept.scans = scans;
                }
            }
            _ => {}
        }
    }
}

/// Parses a start-of-frame segment (after its length) with marker `code`.
fn frame_header(code: u8, segment: &[u8], at: usize) -> Result<Frame, Error> {
    let bad = |what: String| Error::Corrupt(format!("frame header at byte {at} {what}"));
    let [precision, h1, h0, w1, w0, count, ref rest @ ..] = *segment else {
        return Err(bad("is too short".into()));
    };
    let height = u32::from(u16::from_be_bytes([h1, h0]));
    let width = u32::from(u16::from_be_bytes([w1, w0]));
    if width == 0 || height == 0 {
        return Err(bad(format!("gives a size of {width}x{height}")));
    }
    if count == 0 || rest.len() < 3 * usize::from(count) {
        return Err(bad(format!("is too short for {count} components")));
    }
    let components = rest
        .chunks_exact(3)
        .take(usize::from(count))
        .map(|c| {
            let (h, v) = (c[1] >> 4, c[1] & 0x0F);
            if (1..=4).contains(&h) && (1..=4).contains(&v) {
                Ok(Component {
                    id: c[0],
                    h,
                    v,
                    tq: c[2] & 0x0F,
                })
            } else {
                Err(bad(format!(
                    "gives component {} sampling factors {h}x{v}",
                    c[0]
                )))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let coding = match code {
        0xC0 | 0xC1 => Coding::Sequential,
        0xC2 => Coding::Progressive,
        other => Coding::Other(other),
    };
    Ok(Frame {
        precision,
        width,
        height,
        coding,
        components,
    })
}

/// The position of the marker that ends the entropy-coded data starting at
/// `pos`, or `None` if the data runs to the end of the file. Inside the data,
/// 0xFF is followed by 0x00 (a stuffed byte), a restart marker or more fill.
fn end_of_entropy_data(data: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        pos += find_ff(data.get(pos..)?)?;
        let mut next = pos + 1;
        while data.get(next) == Some(&0xFF) {
            next += 1;
        }
        match *data.get(next)? {
            0x00 | 0xD0..=0xD7 => pos = next + 1,
            _ => return Some(pos),
        }
    }
}

/// Where the first 0xFF byte is (which starts every marker and stuffed
/// byte), sixteen bytes at a time.
#[inline]
pub(crate) fn find_ff(bytes: &[u8]) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(16);
    #[cfg(target_arch = "x86_64")]
    for (i, chunk) in (&mut chunks).enumerate() {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
        };
        // SAFETY: SSE2 is part of x86_64; the load reads the chunk's 16 bytes.
        let found = unsafe {
            let bytes = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
            _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(-1)))
        };
        if found != 0 {
            return Some(16 * i + found.trailing_zeros() as usize);
        }
    }
    let done = bytes.len() - chunks.remainder().len() - chunks.len() * 16;
    let rest = &bytes[done..];
    rest.iter().position(|&b| b == 0xFF).map(|i| done + i)
}

fn marker_name(code: u8) -> &'static str {
    match code {
        0xC4 => "Huffman table",
        0xDB => "quantisation table",
        0xDA => "start-of-scan",
        0xDD => "restart interval",
        0xE0..=0xEF => "application",
        0xFE => "comment",
        0xC0..=0xCF => "frame header",
        _ => "marker",
    }
}

/// Wraps decoded 8-bit samples, grey (one channel) or RGB (three), as an image.
fn image_from_samples(
    width: u32,
    height: u32,
    channels: usize,
    samples: Vec<u8>,
) -> Result<image::DynamicImage, Error> {
    let image = if channels == 1 {
        image::GrayImage::from_raw(width, height, samples).map(image::DynamicImage::ImageLuma8)
    } else {
        image::RgbImage::from_raw(width, height, samples).map(image::DynamicImage::ImageRgb8)
    };
    image.ok_or_else(|| Error::Decode("decoded buffer has the wrong size".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_ff_finds_the_first_0xff_anywhere() {
        for len in [0, 1, 15, 16, 17, 40] {
            assert_eq!(find_ff(&vec![0xFE; len]), None);
            for at in 0..len {
                let mut bytes = vec![0x7F; len];
                bytes[at] = 0xFF;
                if at + 3 < len {
                    bytes[at + 3] = 0xFF;
                }
                assert_eq!(find_ff(&bytes), Some(at), "{len} {at}");
            }
        }
    }

    /// A tiny but complete JPEG: grey, 8x8.
    fn tiny() -> Vec<u8> {
        let pixels: Vec<u8> = (0..64).map(|i| (i * 4) as u8).collect();
        encode(&pixels, 8, 8, 1, 90).unwrap()
    }

    /// Made by Pillow (libjpeg): 75x45, 4:2:0, progressive with successive
    /// approximation (DC and AC refinement scans), restart markers.
    const PROGRESSIVE: &[u8] = include_bytes!("../tests/data/progressive.jpg");

    /// JPEGs of every kind the check walks, each with a name.
    fn every_kind() -> Vec<(String, Vec<u8>)> {
        use jpeg_encoder::{ColorType, Encoder, SamplingFactor as F};
        let (w, h) = (37u16, 29u16);
        let picture = crate::samples::picture(2, w.into(), h.into());
        let grey: Vec<u8> = picture.pixels().map(|p| p[1]).collect();
        let jpeg = |name: &str, set: &dyn Fn(&mut Encoder<&mut Vec<u8>>), grey_too: bool| {
            let mut out = Vec::new();
            let mut encoder = Encoder::new(&mut out, 85);
            set(&mut encoder);
            let (data, colour) = if grey_too {
                (&grey[..], ColorType::Luma)
            } else {
                (picture.as_raw().as_slice(), ColorType::Rgb)
            };
            encoder.encode(data, w, h, colour).unwrap();
            (name.to_string(), out)
        };
        let mut kinds = vec![
            ("pillow progressive".to_string(), PROGRESSIVE.to_vec()),
            ("image crate baseline".to_string(), crate::samples::jpeg(0)),
            jpeg("grey", &|_| {}, true),
            jpeg("grey progressive", &|e| e.set_progressive(true), true),
            jpeg("progressive", &|e| e.set_progressive(true), false),
            jpeg("restarts", &|e| e.set_restart_interval(2), false),
            jpeg(
                "optimised tables",
                &|e| e.set_optimized_huffman_tables(true),
                false,
            ),
        ];
        // 4:1:1 and 4:2:1 have to be coded one component per scan.
        for f in [F::F_1_1, F::F_2_1, F::F_1_2, F::F_2_2, F::F_4_1, F::F_2_4] {
            kinds.push(jpeg(
                &format!("{f:?}"),
                &|e| e.set_sampling_factor(f),
                false,
            ));
        }
        kinds
    }

    #[test]
    fn jpegs_of_every_kind_pass_and_decode() {
        let refinements = PROGRESSIVE
            .windows(2)
            .enumerate()
            .filter(|(i, w)| {
                *w == [0xFF, 0xDA]
                    && PROGRESSIVE[i + 5 + 2 * usize::from(PROGRESSIVE[i + 4]) + 2] >> 4 > 0
            })
            .count();
        assert!(refinements >= 2, "the fixture has refinement scans");
        for (name, data) in every_kind() {
            let info = inspect(&data, u64::MAX).unwrap_or_else(|e| panic!("{name}: {e}"));
            let image = decode(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                (image.width(), image.height()),
                (info.width, info.height),
                "{name}"
            );
        }
    }

    /// Per component, each block's DC value, AC mask and AC values.
    type KeptPlanes = Vec<Vec<(i16, u64, Vec<i16>)>>;

    /// What a walk keeps of `data`, the fast way or not, or the error.
    fn kept(data: &[u8], fast: bool) -> Result<KeptPlanes, Error> {
        scan::fast::OFF.set(!fast);
        let mut kept = Kept::default();
        let walked = walk(data, u64::MAX, Depth::ImageData, Some(&mut kept));
        scan::fast::OFF.set(false);
        walked?;
        Ok(kept
            .coefficients
            .planes
            .iter()
            .map(|plane| {
                plane
                    .blocks
                    .iter()
                    .map(|b| (b.dc, b.mask, plane.values(b).to_vec()))
                    .collect()
            })
            .collect())
    }

    #[test]
    fn the_fast_way_keeps_what_the_walk_keeps() {
        let mut kinds = every_kind();
        kinds.push(("station-like sample".into(), crate::samples::jpeg(3)));
        let mut fast = 0;
        for (name, data) in kinds {
            let slow = kept(&data, false).unwrap_or_else(|e| panic!("{name}: {e}"));
            let before = scan::fast::READ.get();
            assert_eq!(kept(&data, true).unwrap(), slow, "{name}");
            fast += scan::fast::READ.get() - before;
        }
        // Every sequential kind with one scan of all its components (not the
        // progressive ones, nor jpeg-encoder's optimised tables, 4:1:1 and
        // 4:2:1, which it codes one component per scan).
        assert_eq!(fast, 8);
    }

    /// Inputs the fuzz targets once failed on (`fuzz/`): each read alike
    /// both ways, and, if it turns, valid before and after.
    #[test]
    fn what_the_fuzzer_found_stays_fixed() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fuzz");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let name = path.display();
            let fast = kept(&data, true).map_err(|e| e.to_string());
            let slow = kept(&data, false).map_err(|e| e.to_string());
            assert_eq!(fast, slow, "{name}");
            if let Ok(Some(turned)) = turn180(&data, 75, 1 << 22) {
                inspect(&data, 1 << 22).unwrap_or_else(|e| panic!("{name}: {e}"));
                inspect(&turned.bytes, 1 << 22).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            seen += 1;
        }
        assert!(seen > 0, "no inputs in {dir}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Damaged image data is refused the same way, and anything kept is
        /// the same, whichever way it was read.
        #[test]
        fn damaged_jpegs_are_read_alike_the_fast_way_and_the_walks(
            edits in proptest::collection::vec((0.5f64..1.0, proptest::prelude::any::<u8>()), 1..4),
            restarts in proptest::prelude::any::<bool>(),
        ) {
            use jpeg_encoder::{ColorType, Encoder};
            let picture = crate::samples::picture(1, 40, 24);
            let mut data = Vec::new();
            let mut encoder = Encoder::new(&mut data, 80);
            if restarts {
                encoder.set_restart_interval(1);
            }
            encoder.encode(picture.as_raw(), 40, 24, ColorType::Rgb).unwrap();
            for (at, byte) in edits {
                let at = (at * (data.len() - 2) as f64) as usize;
                data[at] = byte;
            }
            let fast = kept(&data, true).map_err(|e| e.to_string());
            let slow = kept(&data, false).map_err(|e| e.to_string());
            proptest::prop_assert_eq!(fast, slow);
        }
    }

    #[test]
    fn zeroed_image_data_is_caught_in_every_kind() {
        for (name, mut data) in every_kind() {
            let scan = data.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
            // A quarter of the image data, from its middle on.
            let middle = (scan + data.len()) / 2;
            let quarter = (data.len() - scan) / 4;
            data[middle..middle + quarter].fill(0);
            match inspect(&data, u64::MAX) {
                Err(Error::Corrupt(_)) => {}
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn extra_data_and_misnumbered_restart_markers_are_caught() {
        let mut data = tiny();
        data.insert(data.len() - 2, 0x12);
        let e = inspect(&data, u64::MAX).unwrap_err().to_string();
        assert!(e.contains("1 extraneous byte in the image data"), "{e}");

        let mut data = PROGRESSIVE.to_vec();
        let rst0 = data.windows(2).position(|w| w == [0xFF, 0xD0]).unwrap();
        data[rst0 + 1] = 0xD1;
        let e = inspect(&data, u64::MAX).unwrap_err().to_string();
        assert!(
            e.contains(&format!("found marker 0xd1 at byte {rst0} instead of RST0")),
            "{e}"
        );
    }

    #[test]
    fn the_pixel_limit_is_checked_before_the_image_data() {
        let mut data = crate::samples::jpeg(0);
        let last = data.len() - 3;
        data[last] ^= 0xFF; // also damage the image data
        match inspect(&data, 640 * 360 - 1) {
            Err(Error::TooManyPixels {
                width: 640,
                height: 360,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    proptest::proptest! {
        /// Bytes changed anywhere, headers and tables included, give an
        /// answer (most often an error), never a panic.
        #[test]
        fn damaged_jpegs_never_panic(
            edits in proptest::collection::vec((0..PROGRESSIVE.len(), proptest::prelude::any::<u8>()), 1..4)
        ) {
            let mut data = PROGRESSIVE.to_vec();
            for (at, byte) in edits {
                data[at] = byte;
            }
            let _ = inspect(&data, u64::MAX);
            let _ = decode(&data);
        }
    }

    #[test]
    fn a_whole_jpeg_passes_and_gives_its_size() {
        let info = inspect(&tiny(), u64::MAX).unwrap();
        assert_eq!((info.width, info.height, info.components), (8, 8, 1));
    }

    #[test]
    fn every_cut_of_a_jpeg_is_caught() {
        let data = tiny();
        for cut in 2..data.len() {
            match inspect(&data[..cut], u64::MAX) {
                Err(Error::Truncated { bytes, .. }) => assert_eq!(bytes, cut as u64),
                other => panic!("cut at {cut} of {}: {other:?}", data.len()),
            }
        }
    }

    #[test]
    fn a_bad_segment_length_is_corrupt() {
        let mut data = tiny();
        // The first segment after SOI: its length field at bytes 4..6.
        data[4] = 0;
        data[5] = 1;
        assert!(matches!(inspect(&data, u64::MAX), Err(Error::Corrupt(_))));
    }

    #[test]
    fn stuffed_bytes_and_restart_markers_stay_inside_the_scan() {
        let data = [0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56, 0xFF, 0xFF, 0xD9];
        assert_eq!(end_of_entropy_data(&data, 0), Some(7));
        assert_eq!(end_of_entropy_data(&data[..6], 0), None);
    }
}
