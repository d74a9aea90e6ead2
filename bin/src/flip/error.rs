//! Why one image could not be flipped: [`FlipError`] names the input file,
//! [`Cause`] says what was wrong with it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// One image that could not be flipped: the input file and the cause.
///
/// ```
/// use procpool_cli::flip::{Cause, FlipError};
/// let e = FlipError::new("data/a.jpg", Cause::Empty);
/// assert_eq!(e.to_string(), "data/a.jpg: empty file (0 bytes)");
/// ```
#[derive(Debug)]
pub struct FlipError {
    /// The input file.
    pub path: PathBuf,
    /// What was wrong.
    pub cause: Cause,
}

impl FlipError {
    /// The error for `path`.
    pub fn new(path: impl Into<PathBuf>, cause: Cause) -> Self {
        FlipError {
            path: path.into(),
            cause,
        }
    }
}

impl fmt::Display for FlipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.cause)
    }
}

impl std::error::Error for FlipError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.cause)
    }
}

/// What was wrong with one input. Messages are lowercase and one line; an
/// operating-system error is the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Cause {
    /// The input does not exist.
    #[error("no such file")]
    NotFound,
    /// The input is a directory.
    #[error("is a directory, not an image file")]
    IsDirectory,
    /// The input is a device, pipe or socket.
    #[error("is not a regular file")]
    NotAFile,
    /// The input has no bytes.
    #[error("empty file (0 bytes)")]
    Empty,
    /// The input could not be read.
    #[error("cannot read it")]
    Read(#[source] io::Error),
    /// The data matches no image format.
    #[error("not an image: {0}")]
    NotAnImage(String),
    /// A JPEG whose data stops early.
    #[error("truncated JPEG: the file ends after {bytes} bytes, {detail}")]
    Truncated {
        /// The file's size.
        bytes: u64,
        /// Where in the structure it ends.
        detail: String,
    },
    /// A JPEG whose structure or data is wrong.
    #[error("corrupt JPEG: {0}")]
    CorruptJpeg(String),
    /// An image with more pixels than the decoding limit.
    #[error(
        "image is {width}x{height} = {} pixels, over the decoding limit of {limit} \
         (a decompression bomb?); raise it with --max-pixels",
        u64::from(*width) * u64::from(*height)
    )]
    TooManyPixels {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The limit in force.
        limit: u64,
    },
    /// Another image format that failed to decode.
    #[error("cannot decode: {0}")]
    Decode(String),
    /// The flipped image could not be encoded.
    #[error("cannot encode: {0}")]
    Encode(String),
    /// The output exists and `force` was not given.
    #[error("output {} already exists (use --force to overwrite)", .0.display())]
    OutputExists(PathBuf),
    /// The output's folder could not be created.
    #[error("cannot create output folder {}", path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The output could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The output file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

impl Cause {
    /// The cause for an error opening or inspecting an input.
    pub(crate) fn opening(error: io::Error) -> Cause {
        match error.kind() {
            io::ErrorKind::NotFound => Cause::NotFound,
            io::ErrorKind::IsADirectory => Cause::IsDirectory,
            _ => Cause::Read(error),
        }
    }

    /// The cause for an error writing `path`.
    pub(crate) fn writing(path: &Path, error: io::Error) -> Cause {
        if error.kind() == io::ErrorKind::AlreadyExists {
            Cause::OutputExists(path.to_path_buf())
        } else {
            Cause::Write {
                path: path.to_path_buf(),
                source: error,
            }
        }
    }
}

/// The JPEG codec's errors, as the flip command words them.
impl From<procpool_jpeg::Error> for Cause {
    fn from(error: procpool_jpeg::Error) -> Self {
        use procpool_jpeg::Error as E;
        match error {
            E::Truncated { bytes, detail } => Cause::Truncated { bytes, detail },
            E::Corrupt(detail) => Cause::CorruptJpeg(detail),
            E::TooManyPixels {
                width,
                height,
                limit,
            } => Cause::TooManyPixels {
                width,
                height,
                limit,
            },
            E::Decode(detail) => Cause::Decode(detail),
            E::Encode(detail) => Cause::Encode(detail),
            other => Cause::Decode(other.to_string()),
        }
    }
}

/// Refuses an image of more than `limit` pixels.
pub(crate) fn check_pixels(width: u32, height: u32, limit: u64) -> Result<(), Cause> {
    if u64::from(width) * u64::from(height) > limit {
        return Err(Cause::TooManyPixels {
            width,
            height,
            limit,
        });
    }
    Ok(())
}
