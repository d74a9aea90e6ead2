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
    /// A result's variant is neither `Ok` nor `Err`.
    #[error("malformed message: result variant {0}")]
    Variant(u32),
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

/// Decodes values one after another from a run of encoded values (a
/// chunk's inputs or results), with one decoder for the whole run: a decode
/// costs what its bytes cost, not a set-up each.
///
/// ```
/// let mut buf = Vec::new();
/// let mut writer = procpool::codec::Writer::new(&mut buf);
/// for x in [3i64, -4, 5] {
///     writer.write(&x).unwrap();
/// }
/// let mut reader = procpool::codec::Reader::new(&buf);
/// let xs: Vec<i64> = (0..3).map(|_| reader.read().unwrap()).collect();
/// assert_eq!((xs, reader.rest()), (vec![3, -4, 5], &[][..]));
/// assert!(reader.read::<i64>().is_err());
/// ```
pub struct Reader<'a> {
    decoder: bincode::de::DecoderImpl<Bytes<'a>, Config, ()>,
}

impl<'a> Reader<'a> {
    /// A reader of the values encoded in `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader {
            decoder: bincode::de::DecoderImpl::new(Bytes(bytes), CONFIG, ()),
        }
    }

    /// Decodes the next value.
    ///
    /// # Errors
    ///
    /// As [`decode`].
    #[inline]
    pub fn read<T: DeserializeOwned>(&mut self) -> Result<T, CodecError> {
        use bincode::Decode as _;
        Ok(bincode::serde::Compat::<T>::decode(&mut self.decoder)?.0)
    }

    /// Decodes an enum's variant index (a `u32`), with the one-byte form of
    /// small ones read directly.
    ///
    /// # Errors
    ///
    /// As [`decode`].
    #[inline]
    pub fn read_variant(&mut self) -> Result<u32, CodecError> {
        use bincode::de::Decoder as _;
        let bytes = &mut self.decoder.reader().0;
        // Varints below 251 are their own single byte.
        match bytes.first() {
            Some(&small) if small < 251 => {
                *bytes = &bytes[1..];
                Ok(u32::from(small))
            }
            _ => self.read::<u32>(),
        }
    }

    /// The bytes not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        use bincode::de::Decoder as _;
        self.decoder.reader().0
    }
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

/// The bytes a [`Reader`] has left.
struct Bytes<'a>(&'a [u8]);

impl bincode::de::read::Reader for Bytes<'_> {
    #[inline]
    fn read(&mut self, out: &mut [u8]) -> Result<(), bincode::error::DecodeError> {
        let Some((head, rest)) = self.0.split_at_checked(out.len()) else {
            return Err(bincode::error::DecodeError::UnexpectedEnd {
                additional: out.len() - self.0.len(),
            });
        };
        out.copy_from_slice(head);
        self.0 = rest;
        Ok(())
    }

    #[inline]
    fn peek_read(&mut self, n: usize) -> Option<&[u8]> {
        self.0.get(..n)
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        self.0 = self.0.get(n..).unwrap_or_default();
    }
}

/// Encodes values one after another onto a vector, with one encoder for
/// the whole run (see [`Reader`]).
pub struct Writer<'a> {
    encoder: bincode::enc::EncoderImpl<Out<'a>, Config>,
}

impl<'a> Writer<'a> {
    /// A writer that appends to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Writer {
            encoder: bincode::enc::EncoderImpl::new(Out(out), CONFIG),
        }
    }

    /// Encodes `value` after the values before it.
    ///
    /// # Errors
    ///
    /// As [`encode_into`].
    #[inline]
    pub fn write<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
        use bincode::Encode as _;
        bincode::serde::Compat(value).encode(&mut self.encoder)?;
        Ok(())
    }

    /// Drops what was written after the first `len` bytes (what a failed
    /// [`write`](Self::write) left half done).
    pub fn truncate(&mut self, len: usize) {
        use bincode::enc::Encoder as _;
        self.encoder.writer().0.truncate(len);
    }

    /// The bytes written so far, and before.
    #[allow(clippy::len_without_is_empty, reason = "a writer is never read")]
    pub fn len(&mut self) -> usize {
        use bincode::enc::Encoder as _;
        self.encoder.writer().0.len()
    }
}

impl std::fmt::Debug for Writer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

/// The vector a [`Writer`] appends to.
struct Out<'a>(&'a mut Vec<u8>);

impl bincode::enc::write::Writer for Out<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
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
