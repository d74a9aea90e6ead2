//! JPEG through libjpeg-turbo (the `turbojpeg` crate, feature `turbojpeg`):
//! decoding to pixels or to YCbCr planes, and encoding, with its SIMD code.
//! Its warnings (such as "premature end of data segment") count as errors:
//! it checks the image data as it decodes, so a flip checks only the
//! structure before (see [`inspect`](super::inspect)).

use std::cell::RefCell;

use image::DynamicImage;
use turbojpeg::{Colorspace, Compressor, Decompressor, Image, PixelFormat, Subsamp, YuvImage};

use crate::Error;

thread_local! {
    // One libjpeg-turbo instance of each kind per worker, reused across tasks.
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
    static COMPRESSOR: RefCell<Option<Compressor>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's libjpeg-turbo decompressor.
fn with_decompressor<T>(f: impl FnOnce(&mut Decompressor) -> Result<T, Error>) -> Result<T, Error> {
    DECOMPRESSOR.with_borrow_mut(|slot| match slot {
        Some(d) => f(d),
        None => f(slot.insert(Decompressor::new().map_err(|e| Error::Decode(tj_message(e)))?)),
    })
}

/// Runs `f` with this thread's libjpeg-turbo compressor set to `quality`.
fn with_compressor<T>(
    quality: u8,
    f: impl FnOnce(&mut Compressor) -> Result<T, turbojpeg::Error>,
) -> Result<T, Error> {
    let fail = |e: turbojpeg::Error| Error::Encode(format!("JPEG: {}", tj_message(e)));
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
fn corrupt(e: turbojpeg::Error) -> Error {
    let message = tj_message(e);
    let message = message
        .strip_prefix("Corrupt JPEG data: ")
        .unwrap_or(&message);
    Error::Corrupt(message.to_string())
}

/// Decodes a JPEG whose structure was checked (see
/// [`inspect`](super::inspect)) to 8-bit grey or RGB pixels. CMYK and YCCK
/// images go through the `image` crate, which converts them to RGB
/// (libjpeg-turbo does not).
///
/// # Errors
///
/// [`Error::Corrupt`] with libjpeg-turbo's message.
pub fn decode(data: &[u8]) -> Result<DynamicImage, Error> {
    with_decompressor(|decompressor| {
        let header = decompressor.read_header(data).map_err(corrupt)?;
        let (format, channels) = match header.colorspace {
            Colorspace::Gray => (PixelFormat::GRAY, 1),
            Colorspace::CMYK | Colorspace::YCCK => {
                return image::load_from_memory_with_format(data, image::ImageFormat::Jpeg)
                    .map_err(|e| Error::Corrupt(e.to_string()));
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
        super::image_from_samples(width as u32, height as u32, channels, pixels)
    })
}

/// Encodes 8-bit grey (one channel) or RGB (three channels) pixels as a
/// baseline JPEG: 4:2:0 chroma subsampling at `quality`, as Pillow does by
/// default.
///
/// # Errors
///
/// [`Error::Encode`] with libjpeg-turbo's message.
pub fn encode(
    pixels: &[u8],
    width: u32,
    height: u32,
    channels: usize,
    quality: u8,
) -> Result<Vec<u8>, Error> {
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
    /// [`Error::Encode`] with libjpeg-turbo's message.
    pub fn encode(&self, quality: u8) -> Result<Vec<u8>, Error> {
        with_compressor(quality, |c| {
            c.set_subsamp(self.0.subsamp)?;
            c.compress_yuv_to_vec(self.0.as_deref())
        })
    }
}

/// Decodes a JPEG whose structure was checked (see
/// [`inspect`](super::inspect)) to its planes, if it is YCbCr or grey and
/// its size is a multiple of its chroma block (2x2 pixels for 4:2:0), so
/// that the planes have no padding and a rotation moves whole chroma
/// samples. `None` otherwise: decode pixels then.
///
/// # Errors
///
/// [`Error::Corrupt`] with libjpeg-turbo's message.
pub fn decode_planes(data: &[u8]) -> Result<Option<Planes>, Error> {
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

    /// JPEGs of several kinds: baseline 4:2:0 (the samples, from the
    /// `image` crate), libjpeg-turbo's own, progressive and with restart
    /// markers (jpeg-encoder).
    fn jpegs() -> Vec<(String, Vec<u8>)> {
        use jpeg_encoder::{ColorType, Encoder};
        let picture = crate::samples::picture(4, 96, 72);
        let with = |progressive: bool, restart: u16| {
            let mut out = Vec::new();
            let mut encoder = Encoder::new(&mut out, 80);
            encoder.set_progressive(progressive);
            if restart > 0 {
                encoder.set_restart_interval(restart);
            }
            encoder.encode(&picture, 96, 72, ColorType::Rgb).unwrap();
            out
        };
        vec![
            ("sample".into(), crate::samples::jpeg(1)),
            ("turbo".into(), encode(&picture, 96, 72, 3, 80).unwrap()),
            ("progressive".into(), with(true, 0)),
            ("restarts".into(), with(false, 5)),
            ("progressive restarts".into(), with(true, 3)),
        ]
    }

    /// Our check of the image data stands in for libjpeg-turbo's warnings in
    /// the pure-Rust build: whatever libjpeg-turbo rejects, it rejects too.
    #[test]
    fn the_check_rejects_every_corruption_that_libjpeg_turbo_rejects() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_pcg::Pcg64::seed_from_u64(4);
        let (mut both, mut ours_only, mut neither) = (0, 0, 0);
        for (name, jpeg) in jpegs() {
            assert!(crate::inspect(&jpeg, u64::MAX).is_ok(), "{name}");
            assert!(decode(&jpeg).is_ok(), "{name}");
            // The image data: from the first start-of-scan to the end.
            let first_scan = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap() + 14;
            for _ in 0..300 {
                let mut bad = jpeg.clone();
                let at = rng.random_range(first_scan..jpeg.len() - 2);
                match rng.random_range(0..3) {
                    0 => bad[at] ^= 1 << rng.random_range(0..8),
                    1 => bad[at] = rng.random(),
                    _ => {
                        let end = (at + rng.random_range(1..200)).min(jpeg.len() - 2);
                        bad[at..end].fill(0);
                    }
                }
                let ours = crate::inspect(&bad, u64::MAX);
                let theirs = decode(&bad);
                match (ours.is_err(), theirs.is_err()) {
                    (true, true) => both += 1,
                    (true, false) => ours_only += 1,
                    (false, false) => neither += 1,
                    (false, true) => panic!(
                        "{name} changed at byte {at}: libjpeg-turbo says {:?}, our check passes it",
                        theirs.unwrap_err().to_string()
                    ),
                }
            }
        }
        eprintln!("rejected by both {both}, by our check alone {ours_only}, by neither {neither}");
        assert!(both > 0);
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
}
