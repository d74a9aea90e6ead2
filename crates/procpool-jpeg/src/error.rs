//! Why a JPEG could not be checked, decoded, turned or encoded.

/// What was wrong with a JPEG, or with encoding one. Messages are lowercase
/// and one line.
///
/// ```
/// use procpool_jpeg::{Error, inspect};
/// let err = inspect(&[0xFF, 0xD8, 0xFF], u64::MAX).unwrap_err();
/// assert!(matches!(err, Error::Truncated { bytes: 3, .. }), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The data stops early.
    #[error("truncated JPEG: the file ends after {bytes} bytes, {detail}")]
    Truncated {
        /// The data's size.
        bytes: u64,
        /// Where in the structure it ends.
        detail: String,
    },
    /// The structure or the image data is wrong.
    #[error("corrupt JPEG: {0}")]
    Corrupt(String),
    /// The frame header declares more pixels than the caller's limit.
    #[error(
        "image is {width}x{height} = {} pixels, over the decoding limit of {limit}",
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
    /// The decoder refused data that passed the check.
    #[error("cannot decode: {0}")]
    Decode(String),
    /// Encoding failed.
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// Refuses an image of `width` x `height` over `limit` pixels.
pub(crate) fn check_pixels(width: u32, height: u32, limit: u64) -> Result<(), Error> {
    if u64::from(width) * u64::from(height) > limit {
        return Err(Error::TooManyPixels {
            width,
            height,
            limit,
        });
    }
    Ok(())
}
