//! The stored chunk object: `metaLen | snappy-framed JSON | dataLen | data`,
//! protected (for new keys) by the CRC-32C named in the key.

use crate::encoding::{Encoding, EncodingError};
use crate::key::ChunkKey;
use crate::metadata::ChunkMetadata;
use crate::snappy_frame::{self, FrameError};

/// Why a chunk object could not be decoded. `Display` names the object's key.
#[derive(Debug, thiserror::Error)]
#[error("chunk {key}: {kind}")]
pub struct ChunkError {
    /// Object path of the chunk.
    pub key: String,
    /// What went wrong.
    pub kind: ChunkErrorKind,
}

/// The ways a chunk object can be malformed.
#[derive(Debug, thiserror::Error)]
pub enum ChunkErrorKind {
    /// CRC-32C of the object differs from the key's checksum.
    #[error("checksum mismatch: key says {expected:08x}, object has {actual:08x}")]
    Checksum {
        /// From the key.
        expected: u32,
        /// Computed over the bytes.
        actual: u32,
    },
    /// Object shorter than the envelope needs.
    #[error("object of {len} bytes is too short for the envelope")]
    TooShort {
        /// Object length.
        len: usize,
    },
    /// Snappy framing of the metadata is broken.
    #[error("metadata: {0}")]
    Frame(#[from] FrameError),
    /// The snappy stream ended before a whole JSON value was read.
    #[error("metadata: stream ends before the JSON object is complete")]
    MetadataIncomplete,
    /// The metadata JSON is invalid.
    #[error("metadata JSON: {0}")]
    MetadataJson(serde_json::Error),
    /// The metadata length word matches neither convention.
    #[error("metadata length word says {declared}, the snappy stream ends at {actual}")]
    MetadataLength {
        /// Value of the length word.
        declared: u32,
        /// Offset where the metadata really ends.
        actual: usize,
    },
    /// The data length word disagrees with the bytes that follow.
    #[error("chunk data wrong length: header says {declared}, {actual} bytes follow")]
    DataLength {
        /// Value of the data length word.
        declared: u32,
        /// Bytes present.
        actual: usize,
    },
    /// Metadata disagrees with the key (wrong chunk metadata).
    #[error("wrong chunk metadata: {field} is {meta} in the metadata, {key} in the key")]
    MetadataMismatch {
        /// Which field.
        field: &'static str,
        /// Value in the metadata.
        meta: String,
        /// Value in the key.
        key: String,
    },
    /// The sample data could not be decoded.
    #[error(transparent)]
    Encoding(#[from] EncodingError),
}

/// A decoded envelope: metadata plus the (borrowed) encoded sample data.
#[derive(Debug, Clone)]
pub struct DecodedChunk<'a> {
    /// Identity: for new keys the key itself; for legacy keys taken from the metadata.
    pub key: ChunkKey,
    /// The metadata as stored.
    pub metadata: ChunkMetadata,
    /// Sample encoding.
    pub encoding: Encoding,
    /// Encoded sample data.
    pub data: &'a [u8],
}

/// Decodes and validates the envelope of the object stored under `key`.
pub fn decode_object<'a>(key: &ChunkKey, bytes: &'a [u8]) -> Result<DecodedChunk<'a>, ChunkError> {
    decode_inner(key, bytes).map_err(|kind| ChunkError {
        key: key.object_path(),
        kind,
    })
}

fn decode_inner<'a>(key: &ChunkKey, bytes: &'a [u8]) -> Result<DecodedChunk<'a>, ChunkErrorKind> {
    if let Some(expected) = key.checksum {
        let actual = crc32c::crc32c(bytes);
        if actual != expected {
            return Err(ChunkErrorKind::Checksum { expected, actual });
        }
    }
    let Some((len_word, _)) = bytes.split_first_chunk::<4>() else {
        return Err(ChunkErrorKind::TooShort { len: bytes.len() });
    };
    let declared = u32::from_be_bytes(*len_word);

    let mut json = Vec::new();
    let mut parsed: Option<Result<ChunkMetadata, serde_json::Error>> = None;
    let consumed = snappy_frame::read_frames_until(&bytes[4..], &mut json, |buf| {
        let mut stream = serde_json::Deserializer::from_slice(buf).into_iter::<ChunkMetadata>();
        match stream.next() {
            Some(Err(e)) if e.is_eof() => false,
            None => false,
            Some(r) => {
                parsed = Some(r);
                true
            }
        }
    })?;
    let (Some(consumed), Some(parsed)) = (consumed, parsed) else {
        return Err(ChunkErrorKind::MetadataIncomplete);
    };
    let metadata = parsed.map_err(ChunkErrorKind::MetadataJson)?;
    let meta_end = 4 + consumed;
    // Current writers count the length word itself; the earliest ones did not.
    if meta_end != declared as usize && meta_end != declared as usize + 4 {
        return Err(ChunkErrorKind::MetadataLength {
            declared,
            actual: meta_end,
        });
    }
    let Some((data_len, data)) = bytes[meta_end..].split_first_chunk::<4>() else {
        return Err(ChunkErrorKind::TooShort { len: bytes.len() });
    };
    let data_len = u32::from_be_bytes(*data_len);
    if data_len as usize != data.len() {
        return Err(ChunkErrorKind::DataLength {
            declared: data_len,
            actual: data.len(),
        });
    }

    let identity = if key.is_legacy() {
        ChunkKey {
            user: key.user.clone(),
            fingerprint: metadata.fingerprint,
            from: metadata.from,
            through: metadata.through,
            checksum: None,
        }
    } else {
        check_matches_key(key, &metadata)?;
        key.clone()
    };
    let encoding = Encoding::from_byte(metadata.encoding)?;
    Ok(DecodedChunk {
        key: identity,
        metadata,
        encoding,
        data,
    })
}

fn check_matches_key(key: &ChunkKey, m: &ChunkMetadata) -> Result<(), ChunkErrorKind> {
    let mismatch = |field, meta: String, key: String| {
        Err(ChunkErrorKind::MetadataMismatch { field, meta, key })
    };
    if m.user_id != key.user {
        return mismatch("userID", m.user_id.clone(), key.user.clone());
    }
    if m.fingerprint != key.fingerprint {
        return mismatch(
            "fingerprint",
            m.fingerprint.to_string(),
            key.fingerprint.to_string(),
        );
    }
    if m.from != key.from {
        return mismatch("from", m.from.to_string(), key.from.to_string());
    }
    if m.through != key.through {
        return mismatch("through", m.through.to_string(), key.through.to_string());
    }
    Ok(())
}

/// Builds a chunk object for `metadata` and encoded `data`, returning the bytes and
/// the new-format key that names them.
pub fn encode_object(metadata: &ChunkMetadata, data: &[u8]) -> (Vec<u8>, ChunkKey) {
    let json = metadata.to_json_line();
    let mut out = Vec::with_capacity(json.len() + data.len() + 32);
    out.extend_from_slice(&[0; 4]);
    snappy_frame::write_framed(json.as_bytes(), &mut out);
    let meta_len = out.len() as u32;
    out[..4].copy_from_slice(&meta_len.to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    let key = ChunkKey {
        user: metadata.user_id.clone(),
        fingerprint: metadata.fingerprint,
        from: metadata.from,
        through: metadata.through,
        checksum: Some(crc32c::crc32c(&out)),
    };
    (out, key)
}
