//! From bytes to pixels and back: decoding any input the `image` crate knows
//! (JPEG through our check and then zune-jpeg, or libjpeg-turbo with the
//! `turbojpeg` feature), checking the pixel limit from the header before
//! decoding, the 180-degree rotation, and encoding to each [`Format`].

use std::borrow::Cow;
use std::io::Cursor;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ImageFormat, ImageReader, Limits};

use super::error::{Cause, check_pixels};
use super::{Format, jpeg, pdf};

/// Decodes an image file's bytes, refusing any image over `max_pixels`
/// before its pixels are decoded. A JPEG is checked first (see
/// [`inspect_jpeg`](super::inspect_jpeg)).
///
/// # Errors
///
/// [`Cause::NotAnImage`], [`Cause::Truncated`], [`Cause::CorruptJpeg`],
/// [`Cause::TooManyPixels`] or [`Cause::Decode`].
pub fn decode(data: &[u8], max_pixels: u64) -> Result<DynamicImage, Cause> {
    if jpeg::looks_like_jpeg(data) {
        jpeg::check(data, max_pixels)?;
        return Ok(jpeg::decode(data)?);
    }
    decode_other(data, max_pixels)
}

/// The encoded image, rotated, and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Flips an image file's bytes by 180 degrees into `format`. A JPEG going
/// to JPEG or PDF is turned in the DCT domain when it is sequential (see
/// [`turn180`](super::turn180)), else rotated in its YCbCr planes when its
/// size allows (see [`decode_planes`](super::jpeg::decode_planes)),
/// skipping colour conversion and chroma resampling both ways; everything
/// else goes through RGB (or grey) pixels.
///
/// ```
/// use procpool_cli::flip::{Format, flip_bytes, samples};
/// let pdf = flip_bytes(&samples::jpeg(0), Format::Pdf, 75, u64::MAX).unwrap();
/// assert_eq!((pdf.width, pdf.height), (640, 360));
/// ```
///
/// # Errors
///
/// As [`decode`] and [`encode`].
pub fn flip_bytes(
    data: &[u8],
    format: Format,
    quality: u8,
    max_pixels: u64,
) -> Result<Encoded, Cause> {
    let mut image = if jpeg::looks_like_jpeg(data) {
        // Most JPEGs are turned without decoding pixels, in either build:
        // about twice as fast as decoding and encoding with the pure-Rust
        // codecs, and a fifth faster than with libjpeg-turbo.
        if matches!(format, Format::Jpg | Format::Pdf) {
            // Checked and, for most JPEGs, turned without decoding pixels.
            if let Some(turned) = jpeg::turn180(data, quality, max_pixels)? {
                let mut bytes = turned.bytes;
                if format == Format::Pdf {
                    bytes = pdf::one_page(&bytes, turned.width, turned.height, turned.grey);
                }
                return Ok(Encoded {
                    bytes,
                    width: turned.width,
                    height: turned.height,
                });
            }
        } else {
            jpeg::check(data, max_pixels)?;
        }
        if matches!(format, Format::Jpg | Format::Pdf)
            && let Some(mut planes) = jpeg::decode_planes(data)?
        {
            planes.rotate180();
            let (width, height) = (planes.width(), planes.height());
            let mut bytes = planes.encode(quality)?;
            if format == Format::Pdf {
                bytes = pdf::one_page(&bytes, width, height, planes.is_grey());
            }
            return Ok(Encoded {
                bytes,
                width,
                height,
            });
        }
        jpeg::decode(data)?
    } else {
        decode_other(data, max_pixels)?
    };
    rotate180(&mut image);
    Ok(Encoded {
        bytes: encode(&image, format, quality)?,
        width: image.width(),
        height: image.height(),
    })
}

/// Decodes a format other than JPEG with the `image` crate.
fn decode_other(data: &[u8], max_pixels: u64) -> Result<DynamicImage, Cause> {
    let format = image::guess_format(data).map_err(|_| Cause::NotAnImage(describe(data)))?;
    let reader = || ImageReader::with_format(Cursor::new(data), format);
    let failed = |e: image::ImageError| Cause::Decode(format!("{}: {e}", format_name(format)));
    let (width, height) = reader().into_dimensions().map_err(failed)?;
    check_pixels(width, height, max_pixels)?;
    let mut reader = reader();
    let mut limits = Limits::default();
    // The pixels are within the limit; let the largest pixel type (RGBA,
    // 32-bit float) through as well as the decoder's own buffers.
    limits.max_alloc = Some(max_pixels.saturating_mul(32).max(512 << 20));
    reader.limits(limits);
    reader.decode().map_err(failed)
}

fn format_name(format: ImageFormat) -> &'static str {
    format.extensions_str().first().copied().unwrap_or("image")
}

/// What the first bytes of a file that is no image look like.
fn describe(data: &[u8]) -> String {
    let head = &data[..data.len().min(64)];
    let text = std::str::from_utf8(head).is_ok_and(|s| {
        s.chars()
            .all(|c| !c.is_control() || c.is_ascii_whitespace())
    });
    if text {
        let first_line = String::from_utf8_lossy(head);
        let first_line = first_line.lines().next().unwrap_or("").trim();
        let shown: String = first_line.chars().take(24).collect();
        format!("the data is text ({shown:?}), not a known image format")
    } else {
        let hex: Vec<String> = head.iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!(
            "the data starts with bytes {} and matches no known image format",
            hex.join(" ")
        )
    }
}

/// Rotates an image by 180 degrees in place: in row-major order that is
/// reversing the order of its pixels.
///
/// ```
/// use image::{DynamicImage, RgbImage, Rgb};
/// let mut img = DynamicImage::ImageRgb8(RgbImage::from_fn(3, 2, |x, y| Rgb([x as u8, y as u8, 7])));
/// procpool_cli::flip::rotate180(&mut img);
/// assert_eq!(img.as_rgb8().unwrap().get_pixel(0, 0), &Rgb([2, 1, 7]));
/// ```
pub fn rotate180(image: &mut DynamicImage) {
    fn reverse<T>(samples: &mut [T], channels: u8) {
        match channels {
            1 => samples.reverse(),
            2 => samples.as_chunks_mut::<2>().0.reverse(),
            3 => samples.as_chunks_mut::<3>().0.reverse(),
            4 => samples.as_chunks_mut::<4>().0.reverse(),
            _ => unreachable!("no image type has {channels} channels"),
        }
    }
    let channels = image.color().channel_count();
    match image {
        DynamicImage::ImageLuma8(i) => reverse(i, channels),
        DynamicImage::ImageLumaA8(i) => reverse(i, channels),
        DynamicImage::ImageRgb8(i) => reverse(i, channels),
        DynamicImage::ImageRgba8(i) => reverse(i, channels),
        DynamicImage::ImageLuma16(i) => reverse(i, channels),
        DynamicImage::ImageLumaA16(i) => reverse(i, channels),
        DynamicImage::ImageRgb16(i) => reverse(i, channels),
        DynamicImage::ImageRgba16(i) => reverse(i, channels),
        DynamicImage::ImageRgb32F(i) => reverse(i, channels),
        DynamicImage::ImageRgba32F(i) => reverse(i, channels),
        other => other.apply_orientation(image::metadata::Orientation::Rotate180),
    }
}

/// Encodes `image` as `format`; `quality` (1 to 100) applies to JPEG and
/// to the JPEG stream inside a PDF.
///
/// # Errors
///
/// [`Cause::Encode`].
pub fn encode(image: &DynamicImage, format: Format, quality: u8) -> Result<Vec<u8>, Cause> {
    let failed = |e: image::ImageError| Cause::Encode(format!("{format}: {e}"));
    let mut out = Vec::new();
    match format {
        Format::Jpg => return jpeg_stream(image, quality),
        Format::Pdf => {
            let stream = jpeg_stream(image, quality)?;
            let grey = !image.color().has_color();
            return Ok(pdf::one_page(&stream, image.width(), image.height(), grey));
        }
        Format::Png => {
            // Fast deflate with the Paeth filter: about 40 times faster than
            // zlib's default level on photos, for files about 20% larger.
            let encoder =
                PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Paeth);
            image.write_with_encoder(encoder).map_err(failed)?;
        }
        Format::Webp => {
            let encoder = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
            eight_bit(image)
                .write_with_encoder(encoder)
                .map_err(failed)?;
        }
        Format::Tiff => {
            let encoder = image::codecs::tiff::TiffEncoder::new(Cursor::new(&mut out));
            // TIFF has no grey-with-alpha here.
            let image = match image {
                DynamicImage::ImageLumaA8(_) => Cow::Owned(image.to_rgba8().into()),
                DynamicImage::ImageLumaA16(_) => Cow::Owned(image.to_rgba16().into()),
                other => Cow::Borrowed(other),
            };
            image.write_with_encoder(encoder).map_err(failed)?;
        }
        Format::Bmp => {
            let encoder = image::codecs::bmp::BmpEncoder::new(&mut out);
            eight_bit(image)
                .write_with_encoder(encoder)
                .map_err(failed)?;
        }
    }
    Ok(out)
}

/// The image as 8-bit grey or RGB JPEG data; alpha is dropped, as JPEG has none.
fn jpeg_stream(image: &DynamicImage, quality: u8) -> Result<Vec<u8>, Cause> {
    let (w, h) = (image.width(), image.height());
    let encoded = match image {
        DynamicImage::ImageLuma8(i) => jpeg::encode(i, w, h, 1, quality),
        DynamicImage::ImageRgb8(i) => jpeg::encode(i, w, h, 3, quality),
        other if !other.color().has_color() => jpeg::encode(&other.to_luma8(), w, h, 1, quality),
        other => jpeg::encode(&other.to_rgb8(), w, h, 3, quality),
    };
    Ok(encoded?)
}

/// The image with 8-bit samples, keeping grey, colour and alpha.
fn eight_bit(image: &DynamicImage) -> Cow<'_, DynamicImage> {
    use image::ColorType as C;
    Cow::Owned(match image.color() {
        C::L8 | C::La8 | C::Rgb8 | C::Rgba8 => return Cow::Borrowed(image),
        C::L16 => image.to_luma8().into(),
        C::La16 => image.to_luma_alpha8().into(),
        c if c.has_alpha() => image.to_rgba8().into(),
        _ => image.to_rgb8().into(),
    })
}
