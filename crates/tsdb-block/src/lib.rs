//! Prometheus TSDB blocks as Prometheus v2.37 writes them ("Layout A"), so that our
//! blocks are byte-identical to Cortex blocksconvert output for the same samples.
//!
//! * [`segment`]: `chunks/NNNNNN` segment files (writer with Prometheus' exact cut rule, reader);
//! * [`index`]: the index v2 file (streaming writer fed series in order, validating reader);
//! * [`meta`]: `meta.json` with the Thanos section, formatted like Go's encoder;
//! * [`block`]: a block writer that turns series samples into 120-sample XOR chunks,
//!   and a block reader used by tests, `verify` and `inspect`.

pub mod block;
mod error;
pub mod index;
pub mod meta;
pub mod segment;
mod varint;

pub use block::{BlockReader, BlockWriter, ChunkMeta, SAMPLES_PER_CHUNK};
pub use error::BlockError;
pub use meta::BlockMeta;

/// Label pairs of one series, sorted by name.
pub type Labels = Vec<(String, String)>;
