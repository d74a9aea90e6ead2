//! JPEG: a structural check of our own (markers, segment lengths, complete
//! entropy-coded data, the end-of-image marker), then decoding and encoding
//! with libjpeg-turbo through the `turbojpeg` crate.
//!
//! The check exists because decoders fill in what is missing: the `image`
//! crate decodes a JPEG cut to 9 KB of 60 KB as a whole image, grey at the
//! bottom, without complaint. libjpeg-turbo reports such data as a warning,
//! which the `turbojpeg` crate turns into an error: a second line of defence.

use std::cell::RefCell;

use image::{DynamicImage, GrayImage, RgbImage};
use turbojpeg::{Colorspace, Compressor, Decompressor, Image, PixelFormat, Subsamp, YuvImage};

use super::error::Cause;

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

/// Walks the marker structure of a whole JPEG file and returns its frame
/// header: every segment must fit in the file, every scan's entropy-coded
/// data must end at a marker, and the end-of-image marker must come after
/// at least one scan. Bytes after the end-of-image marker are allowed (some
/// cameras append data there).
///
/// # Errors
///
/// [`Cause::Truncated`] when the data stops early, [`Cause::CorruptJpeg`]
/// when the structure is wrong.
pub fn inspect(data: &[u8]) -> Result<JpegInfo, Cause> {
    let len = data.len();
    let truncated = |where_: &str| Cause::Truncated {
        bytes: len as u64,
        detail: where_.to_string(),
    };
    let corrupt = |what: String| Cause::CorruptJpeg(what);
    if !looks_like_jpeg(data) {
        return Err(corrupt("no start-of-image marker".into()));
    }
    let mut info: Option<JpegInfo> = None;
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
                return match info {
                    Some(info) if scans > 0 => Ok(info),
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
                if info.is_some() {
                    return Err(corrupt(format!("a second frame header at byte {at}")));
                }
                info = Some(frame_header(segment, at)?);
            }
            0xDA => {
                if info.is_none() {
                    return Err(corrupt(format!(
                        "image data at byte {at} before any frame header"
                    )));
                }
                scans += 1;
                pos = end_of_entropy_data(data, pos)
                    .ok_or_else(|| truncated("in the middle of the image data"))?;
            }
            _ => {}
        }
    }
}

/// Parses a start-of-frame segment (after its length).
fn frame_header(segment: &[u8], at: usize) -> Result<JpegInfo, Cause> {
    let [_precision, h1, h0, w1, w0, components, ..] = *segment else {
        return Err(Cause::CorruptJpeg(format!(
            "frame header at byte {at} is too short"
        )));
    };
    let height = u32::from(u16::from_be_bytes([h1, h0]));
    let width = u32::from(u16::from_be_bytes([w1, w0]));
    if width == 0 || height == 0 {
        return Err(Cause::CorruptJpeg(format!(
            "frame header at byte {at} gives a size of {width}x{height}"
        )));
    }
    if components == 0 || segment.len() < 6 + 3 * usize::from(components) {
        return Err(Cause::CorruptJpeg(format!(
            "frame header at byte {at} is too short for {components} components"
        )));
    }
    Ok(JpegInfo {
        width,
        height,
        components,
    })
}

/// The position of the marker that ends the entropy-coded data starting at
/// `pos`, or `None` if the data runs to the end of the file. Inside the data,
/// 0xFF is followed by 0x00 (a stuffed byte), a restart marker or more fill.
fn end_of_entropy_data(data: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        pos += data.get(pos..)?.iter().position(|&b| b == 0xFF)?;
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

thread_local! {
    // One libjpeg-turbo instance of each kind per worker, reused across tasks.
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
    static COMPRESSOR: RefCell<Option<Compressor>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's libjpeg-turbo decompressor.
fn with_decompressor<T>(f: impl FnOnce(&mut Decompressor) -> Result<T, Cause>) -> Result<T, Cause> {
    DECOMPRESSOR.with_borrow_mut(|slot| match slot {
        Some(d) => f(d),
        None => f(slot.insert(Decompressor::new().map_err(|e| Cause::Decode(tj_message(e)))?)),
    })
}

/// Runs `f` with this thread's libjpeg-turbo compressor set to `quality`.
fn with_compressor<T>(
    quality: u8,
    f: impl FnOnce(&mut Compressor) -> Result<T, turbojpeg::Error>,
) -> Result<T, Cause> {
    let fail = |e: turbojpeg::Error| Cause::Encode(format!("JPEG: {}", tj_message(e)));
    COMPRESSOR.with_borrow_mut(|slot| {
        let compressor = match slot {
            Some(c) => c,
            None => slot.insert(Compressor::new().map_err(fail)?),
        };
        compressor.set_quality(i32::from(quality)).map_err(fail)?;
        f(compressor).map_err(fail)
    })
}

/// libjpeg-turbo's message for bad data, warnings included (such as
/// "premature end of data segment").
fn corrupt(e: turbojpeg::Error) -> Cause {
    let message = tj_message(e);
    let message = message
        .strip_prefix("Corrupt JPEG data: ")
        .unwrap_or(&message);
    Cause::CorruptJpeg(message.to_string())
}

/// Decodes a JPEG that passed [`inspect`] to 8-bit grey or RGB pixels.
/// CMYK and YCCK images go through the `image` crate, which converts them to
/// RGB (libjpeg-turbo does not).
///
/// # Errors
///
/// [`Cause::CorruptJpeg`] with libjpeg-turbo's message.
pub fn decode(data: &[u8]) -> Result<DynamicImage, Cause> {
    with_decompressor(|decompressor| {
        let header = decompressor.read_header(data).map_err(corrupt)?;
        let (format, channels) = match header.colorspace {
            Colorspace::Gray => (PixelFormat::GRAY, 1),
            Colorspace::CMYK | Colorspace::YCCK => {
                return image::load_from_memory_with_format(data, image::ImageFormat::Jpeg)
                    .map_err(|e| Cause::CorruptJpeg(e.to_string()));
            }
            _ => (PixelFormat::RGB, 3),
        };
        let (width, height) = (header.width, header.height);
        let mut pixels = vec![0u8; width * height * channels];
        let image = Image {
            pixels: pixels.as_mut_slice(),
            width,
            pitch: width * channels,
            height,
            format,
        };
        decompressor.decompress(data, image).map_err(corrupt)?;
        let (w, h) = (width as u32, height as u32);
        let image = if channels == 1 {
            GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8)
        } else {
            RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8)
        };
        image.ok_or_else(|| Cause::Decode("decoded buffer has the wrong size".into()))
    })
}

/// Encodes 8-bit grey (one channel) or RGB (three channels) pixels as a
/// baseline JPEG: 4:2:0 chroma subsampling at `quality`, as Pillow does by
/// default.
///
/// # Errors
///
/// [`Cause::Encode`] with libjpeg-turbo's message.
pub fn encode(
    pixels: &[u8],
    width: u32,
    height: u32,
    channels: usize,
    quality: u8,
) -> Result<Vec<u8>, Cause> {
    let (format, subsamp) = if channels == 1 {
        (PixelFormat::GRAY, Subsamp::Gray)
    } else {
        (PixelFormat::RGB, Subsamp::Sub2x2)
    };
    let width = width as usize;
    let image = Image {
        pixels,
        width,
        pitch: width * channels,
        height: height as usize,
        format,
    };
    with_compressor(quality, |c| {
        c.set_subsamp(subsamp)?;
        c.compress_to_vec(image)
    })
}

/// A JPEG decoded to its luma and chroma planes, before colour conversion
/// and chroma upsampling: the fast way from a JPEG to a rotated JPEG.
pub struct Planes(YuvImage<Vec<u8>>);

impl std::fmt::Debug for Planes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planes")
            .field("width", &self.0.width)
            .field("height", &self.0.height)
            .field("subsamp", &self.0.subsamp)
            .finish_non_exhaustive()
    }
}

impl Planes {
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.0.width as u32
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.0.height as u32
    }

    /// Whether there is no chroma.
    pub fn is_grey(&self) -> bool {
        self.0.subsamp == Subsamp::Gray
    }

    /// Rotates by 180 degrees: reverses each plane. Exact, since
    /// [`decode_planes`] only gives planes whose chroma samples each cover a
    /// whole block of pixels.
    pub fn rotate180(&mut self) {
        let luma = self.0.width * self.0.height;
        let (y, chroma) = self.0.pixels.split_at_mut(luma);
        y.reverse();
        let (cb, cr) = chroma.split_at_mut(chroma.len() / 2);
        cb.reverse();
        cr.reverse();
    }

    /// Encodes the planes as a JPEG with the same chroma subsampling.
    ///
    /// # Errors
    ///
    /// [`Cause::Encode`] with libjpeg-turbo's message.
    pub fn encode(&self, quality: u8) -> Result<Vec<u8>, Cause> {
        with_compressor(quality, |c| {
            c.set_subsamp(self.0.subsamp)?;
            c.compress_yuv_to_vec(self.0.as_deref())
        })
    }
}

/// Decodes a JPEG that passed [`inspect`] to its planes, if it is YCbCr or
/// grey and its size is a multiple of its chroma block (2x2 pixels for
/// 4:2:0), so that the planes have no padding and a rotation moves whole
/// chroma samples. `None` otherwise: decode pixels then.
///
/// # Errors
///
/// [`Cause::CorruptJpeg`] with libjpeg-turbo's message.
pub fn decode_planes(data: &[u8]) -> Result<Option<Planes>, Cause> {
    with_decompressor(|decompressor| {
        let header = decompressor.read_header(data).map_err(corrupt)?;
        let sub = header.subsamp;
        let known = matches!(
            sub,
            Subsamp::None | Subsamp::Sub2x1 | Subsamp::Sub2x2 | Subsamp::Gray | Subsamp::Sub1x2
        );
        let ycbcr = matches!(header.colorspace, Colorspace::YCbCr | Colorspace::Gray);
        let (width, height) = (header.width, header.height);
        if !known || !ycbcr || width % sub.width() != 0 || height % sub.height() != 0 {
            return Ok(None);
        }
        let len = turbojpeg::yuv_pixels_len(width, 1, height, sub).map_err(corrupt)?;
        let mut image = YuvImage {
            pixels: vec![0u8; len],
            width,
            align: 1,
            height,
            subsamp: sub,
        };
        decompressor
            .decompress_to_yuv(data, image.as_deref_mut())
            .map_err(corrupt)?;
        Ok(Some(Planes(image)))
    })
}

/// libjpeg-turbo's own message, without the crate's "TurboJPEG error: " prefix.
fn tj_message(e: turbojpeg::Error) -> String {
    match e {
        turbojpeg::Error::TurboJpegError(message) => message,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny but complete JPEG: grey, 8x8.
    fn tiny() -> Vec<u8> {
        let pixels: Vec<u8> = (0..64).map(|i| (i * 4) as u8).collect();
        encode(&pixels, 8, 8, 1, 90).unwrap()
    }

    #[test]
    fn a_whole_jpeg_passes_and_gives_its_size() {
        let info = inspect(&tiny()).unwrap();
        assert_eq!((info.width, info.height, info.components), (8, 8, 1));
    }

    #[test]
    fn every_cut_of_a_jpeg_is_caught() {
        let data = tiny();
        for cut in 2..data.len() {
            match inspect(&data[..cut]) {
                Err(Cause::Truncated { bytes, .. }) => assert_eq!(bytes, cut as u64),
                other => panic!("cut at {cut} of {}: {other:?}", data.len()),
            }
        }
    }

    #[test]
    fn planes_are_used_only_when_the_size_suits_the_subsampling() {
        let rgb = |w: usize, h: usize| {
            let pixels: Vec<u8> = (0..w * h * 3).map(|i| (i * 7) as u8).collect();
            encode(&pixels, w as u32, h as u32, 3, 90).unwrap()
        };
        let grey_odd = encode(&[9; 35], 7, 5, 1, 90).unwrap();
        for (what, data, planes) in [
            ("4:2:0 even", rgb(16, 10), true),
            ("4:2:0 odd width", rgb(15, 10), false),
            ("4:2:0 odd height", rgb(16, 9), false),
            ("grey odd", grey_odd, true),
        ] {
            let found = decode_planes(&data).unwrap();
            assert_eq!(found.is_some(), planes, "{what}");
        }
    }

    #[test]
    fn a_bad_segment_length_is_corrupt() {
        let mut data = tiny();
        // The first segment after SOI: its length field at bytes 4..6.
        data[4] = 0;
        data[5] = 1;
        assert!(matches!(inspect(&data), Err(Cause::CorruptJpeg(_))));
    }

    #[test]
    fn stuffed_bytes_and_restart_markers_stay_inside_the_scan() {
        let data = [0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56, 0xFF, 0xFF, 0xD9];
        assert_eq!(end_of_entropy_data(&data, 0), Some(7));
        assert_eq!(end_of_entropy_data(&data[..6], 0), None);
    }
}
