//! Block writer (series → 120-sample XOR chunks → segments + index + meta.json) and
//! block reader.

use std::path::{Path, PathBuf};

use prom_xor::XorEncoder;

use crate::error::BlockError;
pub use crate::index::ChunkRef as ChunkMeta;
use crate::index::{IndexReader, IndexWriter, SeriesEntry};
use crate::meta::BlockMeta;
use crate::segment::{DEFAULT_MAX_SEGMENT_SIZE, SegmentReader, SegmentWriter};

/// Samples per output chunk (Cortex's builder and Prometheus' head both use 120).
pub const SAMPLES_PER_CHUNK: usize = 120;

/// Writes one block into `<out>/<ULID>.tmp/` and renames it to `<out>/<ULID>/` when done.
pub struct BlockWriter {
    tmp_dir: PathBuf,
    final_dir: PathBuf,
    meta: BlockMeta,
    segments: SegmentWriter,
    index: IndexWriter,
    chunk_data: Vec<Vec<u8>>,
    chunk_refs: Vec<ChunkMeta>,
}

impl BlockWriter {
    /// Starts a block for `tenant` covering `[min_time, max_time)`. `symbols` must be
    /// the sorted, deduplicated set of every label name and value to be written.
    pub fn create(
        out: &Path,
        ulid: &str,
        tenant: &str,
        min_time: i64,
        max_time: i64,
        symbols: Vec<String>,
    ) -> Result<Self, BlockError> {
        Self::create_with_segment_size(
            out,
            ulid,
            tenant,
            min_time,
            max_time,
            symbols,
            DEFAULT_MAX_SEGMENT_SIZE,
        )
    }

    /// As [`BlockWriter::create`], with a custom maximum segment size (tests).
    pub fn create_with_segment_size(
        out: &Path,
        ulid: &str,
        tenant: &str,
        min_time: i64,
        max_time: i64,
        symbols: Vec<String>,
        max_segment_size: u64,
    ) -> Result<Self, BlockError> {
        if tenant.is_empty() {
            return Err(BlockError::Invalid("a block needs a tenant label".into()));
        }
        let tmp_dir = out.join(format!("{ulid}.tmp"));
        let final_dir = out.join(ulid);
        if tmp_dir.exists() {
            std::fs::remove_dir_all(&tmp_dir).map_err(BlockError::io(&tmp_dir))?;
        }
        std::fs::create_dir_all(&tmp_dir).map_err(BlockError::io(&tmp_dir))?;
        let segments = SegmentWriter::new(&tmp_dir.join("chunks"), max_segment_size)?;
        let index = IndexWriter::create(&tmp_dir.join("index"), symbols)?;
        Ok(Self {
            meta: BlockMeta::new(ulid, tenant, min_time, max_time),
            tmp_dir,
            final_dir,
            segments,
            index,
            chunk_data: Vec::new(),
            chunk_refs: Vec::new(),
        })
    }

    /// Adds the next series (in label order) with its samples (strictly ascending,
    /// inside the block range). A series without samples is skipped.
    pub fn add_series(
        &mut self,
        labels: &[(String, String)],
        ts: &[i64],
        vs: &[f64],
    ) -> Result<(), BlockError> {
        if ts.len() != vs.len() {
            return Err(BlockError::Invalid(
                "timestamp and value counts differ".into(),
            ));
        }
        if ts.is_empty() {
            return Ok(());
        }
        if ts.windows(2).any(|w| w[0] >= w[1]) {
            return Err(BlockError::Invalid(format!(
                "samples of {labels:?} are not strictly ascending"
            )));
        }
        let (first, last) = (ts[0], ts[ts.len() - 1]);
        if first < self.meta.min_time || last >= self.meta.max_time {
            return Err(BlockError::Invalid(format!(
                "samples of {labels:?} span [{first}, {last}], outside [{}, {})",
                self.meta.min_time, self.meta.max_time
            )));
        }
        self.index.check_next(labels)?;
        let n_chunks = ts.len().div_ceil(SAMPLES_PER_CHUNK);
        self.chunk_data
            .resize_with(n_chunks.max(self.chunk_data.len()), Vec::new);
        self.chunk_refs.clear();
        for (i, (t, v)) in ts
            .chunks(SAMPLES_PER_CHUNK)
            .zip(vs.chunks(SAMPLES_PER_CHUNK))
            .enumerate()
        {
            // Reuse the previous series' chunk buffers: no allocation per chunk.
            let mut enc = XorEncoder::reusing(std::mem::take(&mut self.chunk_data[i]));
            for (&t, &v) in t.iter().zip(v) {
                enc.append(t, v);
            }
            self.chunk_data[i] = enc.into_bytes();
            self.chunk_refs.push(ChunkMeta {
                min_time: t[0],
                max_time: t[t.len() - 1],
                reference: 0,
            });
        }
        let refs = self
            .segments
            .write_series(self.chunk_data[..n_chunks].iter().map(Vec::as_slice))?;
        for (c, r) in self.chunk_refs.iter_mut().zip(refs) {
            c.reference = r;
        }
        self.index.add_series(labels, &self.chunk_refs)?;
        self.meta.stats.num_series += 1;
        self.meta.stats.num_chunks += n_chunks as u64;
        self.meta.stats.num_samples += ts.len() as u64;
        Ok(())
    }

    /// Statistics so far.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// Finishes index and segments, writes `meta.json` (with `segment_files` and
    /// `files` filled) and moves the block to its final directory.
    pub fn finish(self) -> Result<(PathBuf, BlockMeta), BlockError> {
        let Self {
            tmp_dir,
            final_dir,
            mut meta,
            segments,
            index,
            ..
        } = self;
        let segs = segments.finish()?;
        let index_size = index.finish()?;
        meta.record_files(&segs, index_size);
        let meta_path = tmp_dir.join("meta.json");
        std::fs::write(&meta_path, meta.to_go_json()).map_err(BlockError::io(&meta_path))?;
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir).map_err(BlockError::io(&final_dir))?;
        }
        std::fs::rename(&tmp_dir, &final_dir).map_err(BlockError::io(&final_dir))?;
        Ok((final_dir, meta))
    }
}

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
