//! Deterministic sample pictures: a city skyline under a sky, with a sun and
//! the sample's number in the top-left corner, so a flip shows at a glance.
//! `cargo run -p procpool-cli --example make_samples` writes the ten in
//! `data/`; tests make
//! pictures of any size with [`picture`].

use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};

/// How many samples `data/` holds.
pub const COUNT: usize = 10;
/// Their width, as the tutorial's photos.
pub const WIDTH: u32 = 640;
/// Their height.
pub const HEIGHT: u32 = 360;

/// The file name of sample `index` (from 0): `sample_01.jpg` to `sample_10.jpg`.
///
/// ```
/// assert_eq!(procpool_jpeg::samples::file_name(0), "sample_01.jpg");
/// ```
pub fn file_name(index: usize) -> String {
    format!("sample_{:02}.jpg", index + 1)
}

/// Sample `index` as a 640x360 JPEG at quality 85, byte for byte the same
/// on every machine (the `image` crate's encoder is pure integer Rust).
///
/// ```
/// let jpeg = procpool_jpeg::samples::jpeg(3);
/// assert!(jpeg.starts_with(&[0xFF, 0xD8]) && jpeg.ends_with(&[0xFF, 0xD9]));
/// ```
pub fn jpeg(index: usize) -> Vec<u8> {
    let picture = picture(index, WIDTH, HEIGHT);
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&picture)
        .expect("encoding to memory cannot fail");
    out
}

/// Picture `index` at any size: every pixel a pure function of its
/// position, the index and the size.
pub fn picture(index: usize, width: u32, height: u32) -> RgbImage {
    let seed = index as u64;
    let (w, h) = (width.max(1) as f32, height.max(1) as f32);
    let hue = (index % COUNT) as f32 / COUNT as f32;
    let sky_top = mix([40.0, 80.0, 160.0], [150.0, 60.0, 110.0], hue);
    let sky_low = mix([200.0, 220.0, 240.0], [250.0, 190.0, 120.0], hue);
    let (sun_x, sun_y, sun_r) = (0.72 * w, 0.22 * h, 0.08 * h.min(w));
    let horizon = 0.8 * h;
    RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let grain = (hash(seed, x, y) % 9) as f32 - 4.0;
        let mut colour = mix(sky_top, sky_low, fy / h);
        let d = ((fx - sun_x).powi(2) + (fy - sun_y).powi(2)).sqrt();
        if d < sun_r {
            colour = [255.0, 230.0, 120.0];
        }
        // Buildings: columns of random width and height standing on the horizon.
        let column = (fx / w * 12.0) as u32;
        let top = horizon - (0.15 + 0.45 * unit(hash(seed, column, 7))) * h;
        if fy >= top && fy < horizon {
            let shade = 40.0 + 60.0 * unit(hash(seed, column, 11));
            let lit =
                (x / 6 + y / 9).is_multiple_of(2) && hash(seed, x / 6, y / 9).is_multiple_of(3);
            colour = if lit {
                [230.0, 210.0, 120.0]
            } else {
                [shade, shade * 0.9, shade * 1.1]
            };
        }
        if fy >= horizon {
            colour = mix(
                [70.0, 110.0, 60.0],
                [30.0, 60.0, 30.0],
                (fy - horizon) / (h - horizon),
            );
        }
        if on_number(index + 1, x, y, height) {
            colour = [250.0, 250.0, 250.0];
        }
        Rgb(colour.map(|c| (c + grain).clamp(0.0, 255.0) as u8))
    })
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    let t = t.clamp(0.0, 1.0);
    [0, 1, 2].map(|i| a[i] + (b[i] - a[i]) * t)
}

/// SplitMix64 of the arguments: cheap, deterministic noise.
fn hash(seed: u64, x: u32, y: u32) -> u64 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(u64::from(x) << 32 | u64::from(y));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(h: u64) -> f32 {
    (h % 1000) as f32 / 1000.0
}

/// Whether (x, y) is on the seven-segment digits of `number`, drawn in the
/// top-left corner with digits a fifth of the picture's height.
fn on_number(number: usize, x: u32, y: u32, height: u32) -> bool {
    // Segments a..g of each digit, as bits.
    const DIGITS: [u8; 10] = [
        0b0111111, 0b0000110, 0b1011011, 0b1001111, 0b1100110, 0b1101101, 0b1111101, 0b0000111,
        0b1111111, 0b1101111,
    ];
    let size = (height / 5).max(10);
    let (dw, t) = (size / 2, (size / 10).max(1));
    let margin = size / 3;
    let text = number.to_string();
    if y < margin || y >= margin + size {
        return false;
    }
    let y = y - margin;
    for (i, digit) in text.bytes().enumerate() {
        let left = margin + i as u32 * (dw + 2 * t);
        if x < left || x >= left + dw {
            continue;
        }
        let x = x - left;
        let segments = DIGITS[usize::from(digit - b'0')];
        let half = size / 2;
        let on = |bit: u8| segments & (1 << bit) != 0;
        let top_row = y < t;
        let middle_row = y >= half - t / 2 && y < half + t - t / 2;
        let bottom_row = y >= size - t;
        let left_col = x < t;
        let right_col = x >= dw - t;
        let upper = y < half;
        return (on(0) && top_row)
            || (on(6) && middle_row)
            || (on(3) && bottom_row)
            || (on(1) && right_col && upper)
            || (on(2) && right_col && !upper)
            || (on(5) && left_col && upper)
            || (on(4) && left_col && !upper);
    }
    false
}
