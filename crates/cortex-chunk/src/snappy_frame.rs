//! The snappy framing format, read frame by frame so the caller knows exactly how
//! many input bytes each frame used (Cortex validates the metadata length that way).

/// Largest uncompressed body a data frame may carry.
const MAX_FRAME_DATA: usize = 65_536;
const STREAM_ID: &[u8; 10] = b"\xff\x06\x00\x00sNaPpY";

/// Why a snappy framed stream is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The stream does not start with the `sNaPpY` identifier frame.
    #[error("snappy stream does not start with the stream identifier")]
    MissingStreamId,
    /// A frame header or body runs past the end of the input.
    #[error("snappy frame at offset {offset} is truncated")]
    Truncated {
        /// Offset of the frame header.
        offset: usize,
    },
    /// Frame types 0x02..=0x7f are reserved and unskippable.
    #[error("snappy frame at offset {offset} has reserved type {kind:#04x}")]
    ReservedType {
        /// Offset of the frame header.
        offset: usize,
        /// The frame type byte.
        kind: u8,
    },
    /// The body of a data frame is malformed or too large.
    #[error("snappy frame at offset {offset}: {reason}")]
    BadFrame {
        /// Offset of the frame header.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// The masked CRC-32C of a data frame does not match its content.
    #[error("snappy frame at offset {offset}: checksum mismatch")]
    Checksum {
        /// Offset of the frame header.
        offset: usize,
    },
}

/// Reads data frames from `input`, appending uncompressed bytes to `out`, until
/// `done(out)` returns true after a frame. Returns the input offset just after the
/// last frame read, or `None` if the input ended first.
pub(crate) fn read_frames_until(
    input: &[u8],
    out: &mut Vec<u8>,
    mut done: impl FnMut(&[u8]) -> bool,
) -> Result<Option<usize>, FrameError> {
    if input.len() < STREAM_ID.len() || &input[..STREAM_ID.len()] != STREAM_ID {
        return Err(FrameError::MissingStreamId);
    }
    let mut pos = STREAM_ID.len();
    let mut decoder = snap::raw::Decoder::new();
    while pos < input.len() {
        let offset = pos;
        let header = input
            .get(pos..pos + 4)
            .ok_or(FrameError::Truncated { offset })?;
        let kind = header[0];
        let len = u32::from_le_bytes([header[1], header[2], header[3], 0]) as usize;
        let body = input
            .get(pos + 4..pos + 4 + len)
            .ok_or(FrameError::Truncated { offset })?;
        pos += 4 + len;
        match kind {
            0x00 | 0x01 => {
                let bad = |reason: String| FrameError::BadFrame { offset, reason };
                let (crc, payload) = body
                    .split_first_chunk::<4>()
                    .ok_or_else(|| bad("data frame shorter than its checksum".into()))?;
                let start = out.len();
                if kind == 0x00 {
                    let n = snap::raw::decompress_len(payload).map_err(|e| bad(e.to_string()))?;
                    if n > MAX_FRAME_DATA {
                        return Err(bad(format!("frame decompresses to {n} bytes (max 65536)")));
                    }
                    out.resize(start + n, 0);
                    decoder
                        .decompress(payload, &mut out[start..])
                        .map_err(|e| bad(e.to_string()))?;
                } else {
                    if payload.len() > MAX_FRAME_DATA {
                        return Err(bad(format!(
                            "frame holds {} bytes (max 65536)",
                            payload.len()
                        )));
                    }
                    out.extend_from_slice(payload);
                }
                if mask_crc(crc32c::crc32c(&out[start..])) != u32::from_le_bytes(*crc) {
                    return Err(FrameError::Checksum { offset });
                }
                if done(out) {
                    return Ok(Some(pos));
                }
            }
            0xff if body != &STREAM_ID[4..] => {
                return Err(FrameError::BadFrame {
                    offset,
                    reason: "bad stream identifier".into(),
                });
            }
            0xff => {}
            0x02..=0x7f => return Err(FrameError::ReservedType { offset, kind }),
            _ => {} // skippable (0x80..=0xfe)
        }
    }
    Ok(None)
}

/// Writes `data` as a snappy framed stream (as Go's buffered snappy writer does:
/// compressed frames only when they save at least an eighth).
pub(crate) fn write_framed(data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(STREAM_ID);
    let mut encoder = snap::raw::Encoder::new();
    for block in data.chunks(MAX_FRAME_DATA) {
        let crc = mask_crc(crc32c::crc32c(block));
        // Compression of at most 64 KiB cannot fail; fall back to a raw frame if it did.
        let compressed = encoder.compress_vec(block).ok();
        let (kind, body) = match &compressed {
            Some(c) if c.len() < block.len() - block.len() / 8 => (0x00u8, c.as_slice()),
            _ => (0x01u8, block),
        };
        let len = (body.len() + 4) as u32;
        out.push(kind);
        out.extend_from_slice(&len.to_le_bytes()[..3]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(body);
    }
}

/// Snappy's masked CRC: rotate right 15 and add a constant.
fn mask_crc(c: u32) -> u32 {
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}
