//! Cortex chunks-storage objects, read and written exactly as Cortex does.
//!
//! * [`key`]: the external key (`<user>/<fp>:<from>:<through>:<crc>` or legacy decimal);
//! * [`object`]: the stored envelope (checksum, snappy-framed JSON metadata, data);
//! * [`encoding`]: DoubleDelta, Varbit, Bigchunk and PrometheusXorChunk sample data,
//!   decoded into columnar `(i64, f64)` buffers with every float bit pattern kept;
//! * [`labels`]: normalising the label sets chunk metadata carries (Cortex's rules).
//!
//! Every malformed input yields a typed error; nothing here panics on input or
//! allocates more than a small constant factor of the input size.

pub mod encoding;
pub mod key;
pub mod labels;
pub mod metadata;
pub mod object;
mod snappy_frame;
pub mod value_text;

pub use encoding::{Encoding, EncodingError, decode_samples};
pub use key::{ChunkKey, KeyError};
pub use metadata::ChunkMetadata;
pub use object::{ChunkError, ChunkErrorKind, DecodedChunk, decode_object, encode_object};

/// The Prometheus staleness marker, a NaN with a specific payload.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Label pairs `(name, value)` as stored in chunk metadata.
pub type LabelPairs = Vec<(String, String)>;
