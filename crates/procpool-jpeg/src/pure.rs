//! JPEG in pure Rust, the default: zune-jpeg decodes (to pixels, or to
//! YCbCr samples without colour conversion), jpeg-encoder encodes (with its
//! AVX2 code where the processor has it). Neither needs anything but Rust.
//!
//! zune-jpeg fills in missing or damaged image data instead of failing, so
//! [`inspect`](super::inspect) must have checked the data first.

use image::DynamicImage;
use jpeg_encoder::{
    ChromaSubsamplingMethod, ColorType, Encoder, ImageBuffer, JpegColorType, SamplingFactor,
};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;
use zune_jpeg::errors::DecodeErrors;

use super::scan::{Coding, Frame};
use crate::Error;

type Decoder<'a> = JpegDecoder<ZCursor<&'a [u8]>>;

/// A zune-jpeg decoder for `data` with its header read: SIMD on, strict
/// about what it notices, and no size limit of its own (the pixel limit was
/// checked from the header already); and the frame header. zune-jpeg
/// decodes baseline, extended and progressive Huffman-coded JPEGs only.
fn decoder(data: &[u8]) -> Result<(Decoder<'_>, Frame), Error> {
    let frame = super::frame(data)?;
    if let Coding::Other(code) = frame.coding {
        let coding = match code {
            0xC3 => "lossless coding",
            0xC5..=0xC7 => "hierarchical coding",
            0xC9 | 0xCA => "arithmetic coding",
            0xCB => "lossless arithmetic coding",
            _ => "hierarchical arithmetic coding",
        };
        return Err(Error::Decode(format!(
            "JPEG with {coding} is not supported by the pure-Rust decoder \
             (build with -p procpool-cli --features turbojpeg for libjpeg-turbo)"
        )));
    }
    let options = DecoderOptions::new_fast()
        .set_strict_mode(true)
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX));
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(data), options);
    decoder.decode_headers().map_err(corrupt)?;
    Ok((decoder, frame))
}

/// Decodes to `out` samples: the bytes, the width and the height.
fn decode_to(mut decoder: Decoder<'_>, out: ColorSpace) -> Result<(Vec<u8>, u32, u32), Error> {
    decoder.set_options(decoder.options().jpeg_set_out_colorspace(out));
    let samples = decoder.decode().map_err(corrupt)?;
    let (width, height) = decoder
        .dimensions()
        .ok_or_else(|| Error::Decode("JPEG: no dimensions after decoding".into()))?;
    let expected = width * height * out.num_components();
    if samples.len() != expected {
        return Err(Error::Decode(format!(
            "JPEG: decoded {} bytes, expected {expected}",
            samples.len()
        )));
    }
    Ok((samples, width as u32, height as u32))
}

fn corrupt(e: DecodeErrors) -> Error {
    Error::Corrupt(e.to_string())
}

/// Decodes a JPEG that passed [`inspect`](super::inspect) to 8-bit grey or
/// RGB pixels (CMYK and YCCK are converted to RGB).
///
/// # Errors
///
/// [`Error::Corrupt`] with zune-jpeg's message.
pub fn decode(data: &[u8]) -> Result<DynamicImage, Error> {
    let (decoder, _) = decoder(data)?;
    let grey = decoder.input_colorspace() == Some(ColorSpace::Luma);
    let out = if grey {
        ColorSpace::Luma
    } else {
        ColorSpace::RGB
    };
    let (samples, w, h) = decode_to(decoder, out)?;
    super::image_from_samples(w, h, if grey { 1 } else { 3 }, samples)
}

/// Encodes 8-bit grey (one channel) or RGB (three channels) pixels as a
/// baseline JPEG: 4:2:0 chroma subsampling (averaging each 2x2 block, as
/// libjpeg does) at `quality`, as Pillow does by default.
///
/// # Errors
///
/// [`Error::Encode`] with jpeg-encoder's message, or for an image over
/// JPEG's 65,535 pixels a side.
pub fn encode(
    pixels: &[u8],
    width: u32,
    height: u32,
    channels: usize,
    quality: u8,
) -> Result<Vec<u8>, Error> {
    let colour = if channels == 1 {
        ColorType::Luma
    } else {
        ColorType::Rgb
    };
    write(
        pixels,
        width,
        height,
        colour,
        SamplingFactor::F_2_2,
        quality,
    )
}

fn write(
    samples: &[u8],
    width: u32,
    height: u32,
    colour: ColorType,
    sampling: SamplingFactor,
    quality: u8,
) -> Result<Vec<u8>, Error> {
    let (w, h) = jpeg_size(width, height)?;
    with_encoder(samples.len(), sampling, quality, |encoder| {
        encoder.encode(samples, w, h, colour)
    })
}

/// The size as JPEG's 16-bit numbers.
fn jpeg_size(width: u32, height: u32) -> Result<(u16, u16), Error> {
    match (u16::try_from(width), u16::try_from(height)) {
        (Ok(w), Ok(h)) => Ok((w, h)),
        _ => Err(Error::Encode(format!(
            "JPEG: the image is {width}x{height}, over JPEG's 65535 pixels a side"
        ))),
    }
}

/// Runs `f` with an encoder set to `sampling` (chroma averaged over each
/// block, as libjpeg does) and `quality`, writing into the returned bytes.
fn with_encoder(
    samples: usize,
    sampling: SamplingFactor,
    quality: u8,
    f: impl FnOnce(Encoder<&mut Vec<u8>>) -> Result<(), jpeg_encoder::EncodingError>,
) -> Result<Vec<u8>, Error> {
    // Photos at high quality take about a byte per pixel at most.
    let mut out = Vec::with_capacity(samples / 4 + 1024);
    let mut encoder = Encoder::new(&mut out, quality);
    encoder.set_sampling_factor(sampling);
    encoder.set_chroma_subsampling_method(ChromaSubsamplingMethod::Average);
    f(encoder).map_err(|e| Error::Encode(format!("JPEG: {e}")))?;
    Ok(out)
}

/// A JPEG decoded to YCbCr (or grey) samples at full resolution, before
/// colour conversion: the fast way from a JPEG to a rotated JPEG. zune-jpeg
/// gives no access to the subsampled chroma planes themselves, so chroma is
/// upsampled on decoding and averaged again on encoding (a slight blur of
/// the chroma, as going through RGB would give, without the colour
/// conversion both ways).
pub struct Planes {
    samples: Vec<u8>,
    width: u32,
    height: u32,
    grey: bool,
    sampling: SamplingFactor,
    /// Turned by 180 degrees: rows and pixels are read backwards when
    /// encoding, which costs nothing there and saves a pass over the samples.
    turned: bool,
}

impl std::fmt::Debug for Planes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planes")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("grey", &self.grey)
            .field("sampling", &self.sampling)
            .field("turned", &self.turned)
            .finish_non_exhaustive()
    }
}

impl Planes {
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Whether there is no chroma.
    pub fn is_grey(&self) -> bool {
        self.grey
    }

    /// Rotates by 180 degrees: [`encode`](Self::encode) then reads the
    /// pixels in reverse order, the last of the last row first.
    pub fn rotate180(&mut self) {
        self.turned = !self.turned;
    }

    /// Encodes the samples as a JPEG with the input's chroma subsampling
    /// (4:2:0 if jpeg-encoder cannot write it).
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] with jpeg-encoder's message.
    pub fn encode(&self, quality: u8) -> Result<Vec<u8>, Error> {
        let (width, height) = jpeg_size(self.width, self.height)?;
        with_encoder(self.samples.len(), self.sampling, quality, |encoder| {
            encoder.encode_image(Rows {
                planes: self,
                width,
                height,
            })
        })
    }
}

/// The samples as jpeg-encoder reads them, row by row, turned or not.
struct Rows<'a> {
    planes: &'a Planes,
    width: u16,
    height: u16,
}

impl ImageBuffer for Rows<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        if self.planes.grey {
            JpegColorType::Luma
        } else {
            JpegColorType::Ycbcr
        }
    }

    fn width(&self) -> u16 {
        self.width
    }

    fn height(&self) -> u16 {
        self.height
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let planes = self.planes;
        let channels = if planes.grey { 1 } else { 3 };
        let row_len = usize::from(self.width) * channels;
        let row = if planes.turned {
            usize::from(self.height - 1 - y)
        } else {
            usize::from(y)
        };
        let samples = &planes.samples[row * row_len..(row + 1) * row_len];
        match (planes.grey, planes.turned) {
            (true, false) => buffers[0].extend_from_slice(samples),
            (true, true) => buffers[0].extend(samples.iter().rev()),
            (false, turned) => {
                // One pass per component: `extend` from a slice iterator
                // writes without a capacity check per sample.
                let pixels = samples.as_chunks::<3>().0;
                for (c, buffer) in buffers[..3].iter_mut().enumerate() {
                    if turned {
                        buffer.extend(pixels.iter().rev().map(|p| p[c]));
                    } else {
                        buffer.extend(pixels.iter().map(|p| p[c]));
                    }
                }
            }
        }
    }
}

/// Decodes a JPEG that passed [`inspect`](super::inspect) to its YCbCr or
/// grey samples, at any size; `None` for RGB, CMYK and YCCK JPEGs: decode
/// pixels then.
///
/// # Errors
///
/// [`Error::Corrupt`] with zune-jpeg's message.
pub fn decode_planes(data: &[u8]) -> Result<Option<Planes>, Error> {
    let (decoder, frame) = decoder(data)?;
    let (grey, out) = match decoder.input_colorspace() {
        Some(ColorSpace::Luma) => (true, ColorSpace::Luma),
        Some(ColorSpace::YCbCr) => (false, ColorSpace::YCbCr),
        _ => return Ok(None),
    };
    // The luma sampling factors give the subsampling when the chroma
    // components are not themselves subsampled further.
    let sampling = match frame.components.as_slice() {
        [y, rest @ ..] if rest.iter().all(|c| (c.h, c.v) == (1, 1)) => {
            SamplingFactor::from_factors(y.h, y.v)
        }
        _ => None,
    };
    let (samples, width, height) = decode_to(decoder, out)?;
    Ok(Some(Planes {
        samples,
        width,
        height,
        grey,
        sampling: sampling.unwrap_or(SamplingFactor::F_2_2),
        turned: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_keep_the_subsampling_and_any_size() {
        let pixels =
            |w: u32, h: u32| -> Vec<u8> { (0..w * h * 3).map(|i| (i * 7) as u8).collect() };
        for (w, h, sampling) in [
            (15, 9, SamplingFactor::F_2_2),
            (16, 10, SamplingFactor::F_2_1),
            (7, 5, SamplingFactor::F_1_1),
        ] {
            let jpeg = write(&pixels(w, h), w, h, ColorType::Rgb, sampling, 90).unwrap();
            let planes = decode_planes(&jpeg).unwrap().expect("YCbCr");
            assert_eq!((planes.width(), planes.height()), (w, h));
            assert_eq!(planes.sampling, sampling);
            assert!(!planes.is_grey());
        }
        let grey = encode(&[9; 35], 7, 5, 1, 90).unwrap();
        assert!(decode_planes(&grey).unwrap().unwrap().is_grey());
    }

    #[test]
    fn an_unsupported_coding_says_so() {
        let mut jpeg = encode(&[9; 64], 8, 8, 1, 90).unwrap();
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        jpeg[sof + 1] = 0xC9; // arithmetic coding
        let e = decode(&jpeg).unwrap_err().to_string();
        assert!(
            e.starts_with("cannot decode: JPEG with arithmetic coding is not supported"),
            "{e}"
        );
    }

    #[test]
    fn too_large_for_jpeg_is_an_encoding_error() {
        let e = write(&[], 70_000, 1, ColorType::Luma, SamplingFactor::F_1_1, 75).unwrap_err();
        assert!(
            e.to_string().contains("over JPEG's 65535 pixels a side"),
            "{e}"
        );
    }
}
