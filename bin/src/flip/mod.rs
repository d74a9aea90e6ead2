//! Flipping images by 180 degrees and converting them: the tutorial's
//! `image_flipper`, behind the [`Flip`](crate::tasks::Flip) task and the
//! `procpool flip` command.
//!
//! [`Plan`] turns arguments (files, folders, glob patterns) into
//! [`FlipJob`]s, each an input path, an output path and the
//! [`FlipOptions`], and refuses a run whose outputs would collide.
//! [`flip_file`] does one job: check the input, read it, check the pixel
//! count in its header, decode, rotate, encode ([`flip_bytes`]), and write
//! the output atomically (an unnamed file linked into place when complete).
//!
//! ```
//! use procpool_cli::flip::{FlipJob, FlipOptions, Format, flip_file, samples};
//! let dir = tempfile::tempdir().unwrap();
//! let input = dir.path().join("a.jpg");
//! std::fs::write(&input, samples::jpeg(0)).unwrap();
//! let job = FlipJob {
//!     output: dir.path().join("a_flipped.png"),
//!     input,
//!     options: FlipOptions { format: Format::Png, ..FlipOptions::default() },
//! };
//! let flipped = flip_file(&job).unwrap();
//! assert_eq!((flipped.width, flipped.height), (640, 360));
//! assert!(flip_file(&job).unwrap_err().to_string().contains("already exists"));
//! ```

mod error;
mod pdf;
mod pixels;
mod plan;

use procpool_jpeg as jpeg;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use crate::write::atomically as write_atomically;
pub use error::{Cause, FlipError};
pub use pdf::one_page as one_page_pdf;
pub use pixels::{Encoded, decode, encode, flip_bytes, rotate180};
pub use plan::{Collision, Plan, PlanError, Rejected, output_path};
pub use procpool_jpeg::{
    JpegInfo, Planes, Turned, decode_planes, inspect as inspect_jpeg, samples, turn180,
};

/// Pillow's limit: it refuses images over `2 * Image.MAX_IMAGE_PIXELS`
/// (about 179 megapixels) as decompression bombs.
pub const DEFAULT_MAX_PIXELS: u64 = 2 * (1024 * 1024 * 1024 / 4 / 3);

/// Pillow's default JPEG quality.
pub const DEFAULT_QUALITY: u8 = 75;

/// An output format.
///
/// ```
/// use procpool_cli::flip::Format;
/// assert_eq!("jpeg".parse::<Format>().unwrap(), Format::Jpg);
/// assert_eq!(Format::Tiff.extension(), "tiff");
/// assert!("gif".parse::<Format>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Format {
    /// A one-page PDF with the image as a JPEG stream, as the tutorial writes.
    #[default]
    Pdf,
    /// PNG, lossless, with fast compression.
    Png,
    /// JPEG at the chosen quality, 4:2:0.
    Jpg,
    /// Lossless WebP.
    Webp,
    /// Uncompressed TIFF.
    Tiff,
    /// BMP.
    Bmp,
}

impl Format {
    /// Every format, in the order the help lists them.
    pub const ALL: [Format; 6] = [
        Format::Pdf,
        Format::Png,
        Format::Jpg,
        Format::Webp,
        Format::Tiff,
        Format::Bmp,
    ];

    /// The file extension, which is also its name on the command line.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Pdf => "pdf",
            Format::Png => "png",
            Format::Jpg => "jpg",
            Format::Webp => "webp",
            Format::Tiff => "tiff",
            Format::Bmp => "bmp",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(text: &str) -> Result<Format, String> {
        let lower = text.to_ascii_lowercase();
        let alias = match lower.as_str() {
            "jpeg" => "jpg",
            "tif" => "tiff",
            other => other,
        };
        Format::ALL
            .into_iter()
            .find(|f| f.extension() == alias)
            .ok_or_else(|| {
                let names: Vec<_> = Format::ALL.iter().map(|f| f.extension()).collect();
                format!(
                    "unknown format {text:?}: choose one of {}",
                    names.join(", ")
                )
            })
    }
}

/// How to flip: the same for every image of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlipOptions {
    /// The output format.
    pub format: Format,
    /// JPEG quality, 1 to 100, for `jpg` and `pdf`.
    pub quality: u8,
    /// Images with more pixels than this are refused before decoding.
    pub max_pixels: u64,
    /// Replace existing outputs.
    pub force: bool,
    /// Create the output's folder (not its parents) if it is missing, just
    /// before writing, so a run that writes nothing makes no folder;
    /// [`Plan`] sets it for `--out`.
    pub create_folder: bool,
}

impl Default for FlipOptions {
    fn default() -> Self {
        FlipOptions {
            format: Format::default(),
            quality: DEFAULT_QUALITY,
            max_pixels: DEFAULT_MAX_PIXELS,
            force: false,
            create_folder: false,
        }
    }
}

/// One image to flip: all that travels to a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlipJob {
    /// The image to read; never modified.
    #[serde(with = "path_serde")]
    pub input: PathBuf,
    /// The file to write.
    #[serde(with = "path_serde")]
    pub output: PathBuf,
    /// How.
    pub options: FlipOptions,
}

/// What one flip wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flipped {
    /// The file written.
    #[serde(with = "path_serde")]
    pub path: PathBuf,
    /// The image's width in pixels.
    pub width: u32,
    /// The image's height in pixels.
    pub height: u32,
    /// The size of the file written.
    pub bytes: u64,
}

/// Flips one image: checks the input (exists, a regular file, not empty),
/// refuses early if the output exists without `force`, decodes (refusing
/// truncated or corrupt data and images over the pixel limit), rotates by
/// 180 degrees, encodes, and writes the output atomically. The input is only
/// read.
///
/// # Errors
///
/// A [`FlipError`] naming the input and the [`Cause`]; no output is left
/// behind then.
pub fn flip_file(job: &FlipJob) -> Result<Flipped, FlipError> {
    let fail = |cause| FlipError::new(&job.input, cause);
    let options = job.options;
    let meta = std::fs::metadata(&job.input).map_err(|e| fail(Cause::opening(e)))?;
    if meta.is_dir() {
        return Err(fail(Cause::IsDirectory));
    }
    if !meta.is_file() {
        return Err(fail(Cause::NotAFile));
    }
    if meta.len() == 0 {
        return Err(fail(Cause::Empty));
    }
    if !options.force && std::fs::symlink_metadata(&job.output).is_ok() {
        return Err(fail(Cause::OutputExists(job.output.clone())));
    }
    let data = std::fs::read(&job.input).map_err(|e| fail(Cause::opening(e)))?;
    if data.is_empty() {
        return Err(fail(Cause::Empty));
    }
    let quality = options.quality.clamp(1, 100);
    let flipped = flip_bytes(&data, options.format, quality, options.max_pixels).map_err(fail)?;
    if options.create_folder {
        create_folder(&job.output).map_err(fail)?;
    }
    crate::write::atomically(&job.output, &flipped.bytes, options.force)
        .map_err(|e| fail(Cause::writing(&job.output, e)))?;
    Ok(Flipped {
        path: job.output.clone(),
        width: flipped.width,
        height: flipped.height,
        bytes: flipped.bytes.len() as u64,
    })
}

/// Creates the folder `output` goes in if it is missing (another worker may
/// just have made it).
fn create_folder(output: &std::path::Path) -> Result<(), Cause> {
    let Some(folder) = output.parent().filter(|f| !f.as_os_str().is_empty()) else {
        return Ok(());
    };
    match std::fs::create_dir(folder) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(Cause::Folder {
            path: folder.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Paths as raw bytes for bincode (any Unix file name survives), as text for
/// JSON and other human-readable formats.
mod path_serde {
    use std::ffi::OsString;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    use std::path::{Path, PathBuf};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&path.to_string_lossy())
        } else {
            s.serialize_bytes(path.as_os_str().as_bytes())
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
        if d.is_human_readable() {
            String::deserialize(d).map(PathBuf::from)
        } else {
            let bytes = serde_bytes::ByteBuf::deserialize(d)?;
            Ok(OsString::from_vec(bytes.into_vec()).into())
        }
    }
}
