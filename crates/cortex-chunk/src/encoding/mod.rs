//! Cortex sample encodings, decoded into columnar buffers.

mod bigchunk;
mod doubledelta;
mod varbit;

pub use bigchunk::encode_bigchunk;
pub use doubledelta::DoubleDeltaEncoder;

use prom_xor::XorDecodeError;

/// A Cortex chunk encoding (the `encoding` byte of the metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// 1 (and legacy 0): fixed 1 KiB double-delta.
    DoubleDelta,
    /// 2: fixed 1 KiB variable-bit-width.
    Varbit,
    /// 3: list of Prometheus XOR sub-chunks (Cortex's default).
    Bigchunk,
    /// 4: one Prometheus XOR chunk.
    PrometheusXor,
}

impl Encoding {
    /// Maps the metadata byte; 0 (legacy "Delta") reads as DoubleDelta like Cortex.
    pub fn from_byte(b: u8) -> Result<Self, EncodingError> {
        Ok(match b {
            0 | 1 => Self::DoubleDelta,
            2 => Self::Varbit,
            3 => Self::Bigchunk,
            4 => Self::PrometheusXor,
            other => return Err(EncodingError::Unknown(other)),
        })
    }

    /// The byte Cortex writes for this encoding.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::DoubleDelta => 1,
            Self::Varbit => 2,
            Self::Bigchunk => 3,
            Self::PrometheusXor => 4,
        }
    }

    /// Cortex's name for the encoding.
    pub fn name(self) -> &'static str {
        match self {
            Self::DoubleDelta => "DoubleDelta",
            Self::Varbit => "Varbit",
            Self::Bigchunk => "Bigchunk",
            Self::PrometheusXor => "PrometheusXorChunk",
        }
    }
}

/// Why encoded sample data could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodingError {
    /// The metadata names an encoding Cortex does not have.
    #[error("unknown chunk encoding {0}")]
    Unknown(u8),
    /// A PrometheusXorChunk or a Bigchunk sub-chunk is malformed.
    #[error("{context}: {source}")]
    Xor {
        /// Which XOR chunk (e.g. "bigchunk sub-chunk 3").
        context: String,
        /// The XOR decoder's error.
        source: XorDecodeError,
    },
    /// Bigchunk framing (count / sub-chunk lengths) is malformed.
    #[error("bigchunk: {0}")]
    Bigchunk(String),
    /// DoubleDelta header or records are malformed.
    #[error("doubledelta: {0}")]
    DoubleDelta(String),
    /// Varbit header or payload is malformed.
    #[error("varbit: {0}")]
    Varbit(String),
    /// More samples than one PrometheusXorChunk can hold (65535).
    #[error("{count} samples exceed the 65535 a PrometheusXorChunk can hold")]
    TooManySamples {
        /// Samples offered.
        count: usize,
    },
}

/// Appends every sample of `data` to `ts`/`vs` and returns how many were added.
/// On error the buffers keep their original length.
pub fn decode_samples(
    encoding: Encoding,
    data: &[u8],
    ts: &mut Vec<i64>,
    vs: &mut Vec<f64>,
) -> Result<usize, EncodingError> {
    let (t0, v0) = (ts.len(), vs.len());
    let result = match encoding {
        Encoding::PrometheusXor => {
            prom_xor::decode_xor_into(data, ts, vs).map_err(|source| EncodingError::Xor {
                context: "PrometheusXorChunk".into(),
                source,
            })
        }
        Encoding::Bigchunk => bigchunk::decode(data, ts, vs),
        Encoding::DoubleDelta => doubledelta::decode(data, ts, vs),
        Encoding::Varbit => varbit::decode(data, ts, vs),
    };
    if result.is_err() {
        ts.truncate(t0);
        vs.truncate(v0);
    }
    result
}

/// Encodes samples as a single PrometheusXorChunk data section (at most 65535 samples).
pub fn encode_prometheus_xor(ts: &[i64], vs: &[f64]) -> Result<Vec<u8>, EncodingError> {
    let mut e = prom_xor::XorEncoder::with_capacity(16 + ts.len() * 2);
    for (&t, &v) in ts.iter().zip(vs) {
        if !e.append(t, v) {
            return Err(EncodingError::TooManySamples { count: ts.len() });
        }
    }
    Ok(e.into_bytes())
}
