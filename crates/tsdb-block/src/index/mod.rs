//! Index format v2: streaming writer and validating reader.

mod reader;
mod writer;

pub use reader::{IndexReader, SeriesEntry};
pub use writer::{DEFAULT_INDEX_MEMORY, IndexWriter, SymbolsWriter};

/// Index file magic.
pub const MAGIC: u32 = 0xBAAA_D700;
/// Length of the table of contents at the end of the file.
pub const TOC_LEN: usize = 6 * 8 + 4;

/// Where a series' chunk lives and the time range it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    /// First sample time (inclusive).
    pub min_time: i64,
    /// Last sample time (inclusive).
    pub max_time: i64,
    /// `segment << 32 | offset`.
    pub reference: u64,
}
