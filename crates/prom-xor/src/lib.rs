//! Prometheus XOR chunks (`tsdb/chunkenc/xor.go`): the sample encoding shared by
//! TSDB blocks, Cortex `PrometheusXorChunk` objects and Cortex `Bigchunk` sub-chunks.
//!
//! The encoder reproduces Prometheus' bit writer exactly (including the extra
//! trailing byte it leaves after a byte-aligned `writeByte`), so chunks are
//! byte-identical to the ones Prometheus and Cortex write. The decoder appends
//! into caller-owned columnar buffers and never allocates per sample.

mod bits;
mod decode;
mod encode;

pub use decode::{XorDecodeError, decode_xor, decode_xor_into, xor_sample_count};
pub use encode::XorEncoder;

/// Size of the big-endian sample-count header at the start of every XOR chunk.
pub const HEADER_LEN: usize = 2;
