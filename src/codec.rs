//! The payload codec: bincode 2 and nothing else, so it can be swapped here.
//!
//! Every decode runs with a size limit. Without it, bincode 2's `standard()`
//! configuration believes a length prefix and tries to allocate it: a 9-byte
//! message claiming a 1 TiB string aborts the whole process.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest single message the codec will decode or encode (1 GiB).
pub const MAX_MESSAGE: usize = 1 << 30;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_MESSAGE>,
>;

const CONFIG: Config = bincode::config::standard().with_limit::<MAX_MESSAGE>();

/// What went wrong encoding or decoding a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The bytes do not decode as the expected type.
    #[error("malformed message: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    /// The value could not be encoded.
    #[error("cannot encode message: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    /// Bytes were left over after the expected values.
    #[error("malformed message: {0} unexpected trailing bytes")]
    Trailing(usize),
}

/// Encodes `value`, appending to `out`.
///
/// ```
/// let mut buf = Vec::new();
/// procpool::codec::encode_into(&(7u32, "seven"), &mut buf).unwrap();
/// let ((n, s), used) = procpool::codec::decode::<(u32, String)>(&buf).unwrap();
/// assert_eq!((n, s.as_str(), used), (7, "seven", buf.len()));
/// ```
///
/// # Errors
///
/// If serde refuses the value, or it exceeds [`MAX_MESSAGE`].
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(value, out, CONFIG)?;
    Ok(())
}

/// Decodes one `T` from the front of `bytes`; returns it and the bytes used.
///
/// ```
/// // A hostile 9-byte message that claims a 1 TiB string is refused, not allocated.
/// let mut evil = vec![0xfd];
/// evil.extend_from_slice(&(1u64 << 40).to_le_bytes());
/// assert!(procpool::codec::decode::<String>(&evil).is_err());
/// ```
///
/// # Errors
///
/// If the bytes are truncated, malformed, or claim more than [`MAX_MESSAGE`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), CodecError> {
    Ok(bincode::serde::decode_from_slice(bytes, CONFIG)?)
}

#[cfg_attr(not(any(feature = "mpi", test)), allow(dead_code))]
/// Decodes exactly one `T` that fills all of `bytes`.
///
/// # Errors
///
/// As [`decode`], and if bytes are left over.
pub fn decode_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, used) = decode(bytes)?;
    match bytes.len() - used {
        0 => Ok(value),
        extra => Err(CodecError::Trailing(extra)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        encode_into(&vec![1u64, 2, 3], &mut buf).unwrap();
        assert_eq!(decode_exact::<Vec<u64>>(&buf).unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut buf = Vec::new();
        encode_into(&5u8, &mut buf).unwrap();
        buf.push(0);
        assert!(matches!(
            decode_exact::<u8>(&buf),
            Err(CodecError::Trailing(1))
        ));
    }

    #[test]
    fn huge_length_claims_are_refused() {
        for claim in [1u64 << 31, 1 << 40, u64::MAX] {
            let mut evil = vec![0xfd];
            evil.extend_from_slice(&claim.to_le_bytes());
            assert!(decode::<Vec<u8>>(&evil).is_err());
            assert!(decode::<String>(&evil).is_err());
            assert!(decode::<Vec<String>>(&evil).is_err());
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode::<Vec<String>>(&bytes);
            let _ = decode::<(u64, Result<Vec<u8>, String>)>(&bytes);
            let _ = decode::<crate::protocol::Request>(&bytes);
            let _ = decode::<crate::protocol::Reply>(&bytes);
        }
    }
}
