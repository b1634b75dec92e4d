//! Prometheus TSDB blocks as Prometheus v2.37 writes them ("Layout A"), so that our
//! blocks are byte-identical to Cortex blocksconvert output for the same samples.
//!
//! * [`chunks`]: a series' samples → 120-sample XOR chunks;
//! * [`snap`]: Cortex's optional timestamp snapping before chunks are cut;
//! * [`segment`]: `chunks/NNNNNN` segment files (writer with Prometheus' exact cut rule, reader);
//! * [`index`]: the index v2 file (streaming writer with bounded memory, validating reader);
//! * [`meta`]: `meta.json` with the Thanos section, formatted like Go's encoder;
//! * [`writer`]: the one block writer: series in any order (samples or encoded chunks)
//!   → segments + index + `meta.json`, memory bounded by a budget at any block size;
//! * [`block`]: the block reader used by tests, `verify` and `inspect`.

pub mod analyze;
pub mod block;
pub mod chunks;
mod error;
pub mod index;
pub mod meta;
pub mod segment;
pub mod snap;
mod varint;
pub mod writer;

pub use block::{BlockReader, ChunkMeta};
pub use chunks::{EncodedChunk, EncodedSeries, SAMPLES_PER_CHUNK, encode_series};
pub use error::BlockError;
pub use meta::BlockMeta;
pub use writer::{BlockWriter, BlockWriterOptions, WrittenBlock};

/// Label pairs of one series, sorted by name.
pub type Labels = Vec<(String, String)>;
