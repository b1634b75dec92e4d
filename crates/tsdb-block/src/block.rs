//! Block reader: `meta.json`, the index and the chunk segments of a block directory.

use std::path::Path;

use crate::error::BlockError;
pub use crate::index::ChunkRef as ChunkMeta;
use crate::index::{IndexReader, SeriesEntry};
use crate::meta::BlockMeta;
use crate::segment::SegmentReader;

/// A block directory opened for reading (index and segments held in memory).
#[derive(Debug)]
pub struct BlockReader {
    /// Parsed `meta.json`.
    pub meta: BlockMeta,
    /// The index.
    pub index: IndexReader,
    segments: SegmentReader,
}

impl BlockReader {
    /// Opens and validates the block at `dir`.
    pub fn open(dir: &Path) -> Result<Self, BlockError> {
        let meta_path = dir.join("meta.json");
        let meta_bytes = std::fs::read(&meta_path).map_err(BlockError::io(&meta_path))?;
        let meta: BlockMeta = serde_json::from_slice(&meta_bytes)
            .map_err(|e| BlockError::corrupt("meta.json", e.column() as u64, e.to_string()))?;
        if meta.version != 1 {
            return Err(BlockError::corrupt(
                "meta.json",
                0,
                format!("unsupported version {}", meta.version),
            ));
        }
        let index_path = dir.join("index");
        let index = IndexReader::from_bytes(
            std::fs::read(&index_path).map_err(BlockError::io(&index_path))?,
        )?;
        let segments = SegmentReader::open(&dir.join("chunks"))?;
        Ok(Self {
            meta,
            index,
            segments,
        })
    }

    /// Every series entry in index order.
    pub fn series(&self) -> Result<Vec<SeriesEntry>, BlockError> {
        self.index
            .all_series_ids()?
            .into_iter()
            .map(|id| self.index.series(id))
            .collect()
    }

    /// Appends the samples of `series` to `ts`/`vs`, checking each chunk's time range.
    pub fn read_samples(
        &self,
        series: &SeriesEntry,
        ts: &mut Vec<i64>,
        vs: &mut Vec<f64>,
    ) -> Result<(), BlockError> {
        for c in &series.chunks {
            let data = self.segments.chunk(c.reference)?;
            let start = ts.len();
            prom_xor::decode_xor_into(data, ts, vs).map_err(|e| {
                BlockError::corrupt("chunks", c.reference, format!("series {}: {e}", series.id))
            })?;
            let got = &ts[start..];
            if got.first() != Some(&c.min_time) || got.last() != Some(&c.max_time) {
                return Err(BlockError::corrupt(
                    "chunks",
                    c.reference,
                    format!(
                        "series {}: chunk samples do not span [{}, {}]",
                        series.id, c.min_time, c.max_time
                    ),
                ));
            }
        }
        Ok(())
    }
}
