//! The block writer: series in any order → chunk segments, index and `meta.json`, in
//! memory bounded by a budget whatever the number of series.
//!
//! Chunks go to the segment files as series arrive; each series leaves a small record
//! (labels + chunk refs) in an external sort, and every label name and value goes to a
//! deduplicating symbol set that spills sorted runs beyond its share of the budget.
//! [`BlockWriter::finish`] merges the symbols into the index's symbol table, then the
//! series records in label order into the series section, then lets the index writer
//! write label indices and postings from its own external sort.
//!
//! Budget shares: series records ½, symbols ¼ while series arrive; the index writer
//! (symbol cache, postings) ½ while the index is written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use external_sort::{RunMerger, RunWriter, Sorted, Sorter};

use crate::Labels;
use crate::chunks::{EncodedSeries, encode_series};
use crate::error::BlockError;
use crate::index::{ChunkRef, SymbolsWriter};
use crate::meta::BlockMeta;
use crate::segment::{DEFAULT_MAX_SEGMENT_SIZE, SegmentWriter};

/// How a [`BlockWriter`] uses memory and disk.
#[derive(Debug, Clone)]
pub struct BlockWriterOptions {
    /// Bytes of memory for series records, symbols and postings together.
    pub memory_budget: usize,
    /// Where spill files go (default: `<out>/<ULID>.spill`); removed on finish.
    pub spill_dir: Option<PathBuf>,
    /// Largest chunk segment file.
    pub max_segment_size: u64,
}

impl Default for BlockWriterOptions {
    fn default() -> Self {
        Self {
            memory_budget: 256 << 20,
            spill_dir: None,
            max_segment_size: DEFAULT_MAX_SEGMENT_SIZE,
        }
    }
}

/// A finished block.
#[derive(Debug, Clone)]
pub struct WrittenBlock {
    /// The block directory (`<out>/<ULID>`).
    pub dir: PathBuf,
    /// Its `meta.json`.
    pub meta: BlockMeta,
    /// Bytes of series records, symbols and postings spilled to disk.
    pub spilled_bytes: u64,
    /// Label sets given more than once with overlapping chunks: the first given was
    /// kept, the others left out of the index (their chunks stay in the segments).
    pub left_out: Vec<Labels>,
}

/// Writes one block into `<out>/<ULID>.tmp/` and renames it to `<out>/<ULID>/` when done.
pub struct BlockWriter {
    tmp_dir: PathBuf,
    final_dir: PathBuf,
    spill_dir: PathBuf,
    meta: BlockMeta,
    budget: usize,
    segments: SegmentWriter,
    series: Sorter,
    symbols: SymbolSet,
    next_seq: u64,
    encoded: EncodedSeries,
    refs: Vec<ChunkRef>,
    record: Vec<u8>,
}

impl BlockWriter {
    /// Starts a block for `tenant` covering `[min_time, max_time)` with default options.
    pub fn create(
        out: &Path,
        ulid: &str,
        tenant: &str,
        min_time: i64,
        max_time: i64,
    ) -> Result<Self, BlockError> {
        Self::with_options(
            out,
            ulid,
            tenant,
            min_time,
            max_time,
            BlockWriterOptions::default(),
        )
    }

    /// Starts a block with explicit options.
    pub fn with_options(
        out: &Path,
        ulid: &str,
        tenant: &str,
        min_time: i64,
        max_time: i64,
        options: BlockWriterOptions,
    ) -> Result<Self, BlockError> {
        if tenant.is_empty() {
            return Err(BlockError::Invalid("a block needs a tenant label".into()));
        }
        if min_time >= max_time {
            return Err(BlockError::Invalid(format!(
                "empty block range [{min_time}, {max_time})"
            )));
        }
        let tmp_dir = out.join(format!("{ulid}.tmp"));
        let final_dir = out.join(ulid);
        let spill_dir = options
            .spill_dir
            .clone()
            .unwrap_or_else(|| out.join(format!("{ulid}.spill")));
        for dir in [&tmp_dir, &spill_dir] {
            if dir.exists() {
                std::fs::remove_dir_all(dir).map_err(BlockError::io(dir))?;
            }
        }
        std::fs::create_dir_all(&tmp_dir).map_err(BlockError::io(&tmp_dir))?;
        let segments = SegmentWriter::new(&tmp_dir.join("chunks"), options.max_segment_size)?;
        let budget = options.memory_budget.max(4);
        Ok(Self {
            meta: BlockMeta::new(ulid, tenant, min_time, max_time),
            series: Sorter::new(&spill_dir, "series", budget / 2),
            symbols: SymbolSet::new(&spill_dir.join("symbols"), budget / 4),
            tmp_dir,
            final_dir,
            spill_dir,
            budget,
            segments,
            next_seq: 0,
            encoded: EncodedSeries::default(),
            refs: Vec::new(),
            record: Vec::new(),
        })
    }

    /// Adds a series given as samples (strictly ascending, inside the block range),
    /// cut into 120-sample XOR chunks. Series may come in any order; a series without
    /// samples is skipped.
    pub fn add_series(
        &mut self,
        labels: &Labels,
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
        let mut encoded = std::mem::take(&mut self.encoded);
        encode_series(ts, vs, &mut encoded);
        let r = self.add_encoded(labels, &encoded, ts.len() as u64);
        self.encoded = encoded;
        r
    }

    /// Adds a series given as encoded XOR chunks (in time order, not overlapping,
    /// inside the block range) holding `samples` samples. Series may come in any
    /// order; a series without chunks is skipped.
    pub fn add_encoded(
        &mut self,
        labels: &Labels,
        series: &EncodedSeries,
        samples: u64,
    ) -> Result<(), BlockError> {
        check_labels(labels)?;
        if series.chunks.is_empty() {
            return Ok(());
        }
        let mut prev_max = self.meta.min_time - 1;
        for c in &series.chunks {
            if c.min_time <= prev_max || c.max_time < c.min_time || c.max_time >= self.meta.max_time
            {
                return Err(BlockError::Invalid(format!(
                    "chunks of {labels:?} overlap, go back or leave [{}, {}): [{}, {}] after {prev_max}",
                    self.meta.min_time, self.meta.max_time, c.min_time, c.max_time
                )));
            }
            prev_max = c.max_time;
        }
        let refs = self.segments.write_series(series.chunk_data())?;
        self.refs.clear();
        self.refs.extend(
            series
                .chunks
                .iter()
                .zip(refs)
                .map(|(c, reference)| ChunkRef {
                    min_time: c.min_time,
                    max_time: c.max_time,
                    reference,
                }),
        );
        for (n, v) in labels {
            self.symbols.insert(n)?;
            self.symbols.insert(v)?;
        }
        encode_record(&mut self.record, labels, self.next_seq, samples, &self.refs);
        self.next_seq += 1;
        self.series.push(&self.record)?;
        Ok(())
    }

    /// Series records held in memory now (the rest are spilled).
    pub fn series_in_memory(&self) -> usize {
        self.series.in_memory()
    }

    /// Statistics so far (series and samples are counted at finish).
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// Writes the index and `meta.json` and moves the block to its final directory.
    pub fn finish(self) -> Result<WrittenBlock, BlockError> {
        let spill_dir = self.spill_dir.clone();
        let tmp_dir = self.tmp_dir.clone();
        let r = self.finish_inner();
        let _ = std::fs::remove_dir_all(&spill_dir);
        if r.is_err() {
            let _ = std::fs::remove_dir_all(&tmp_dir);
        }
        r
    }

    fn finish_inner(self) -> Result<WrittenBlock, BlockError> {
        let Self {
            tmp_dir,
            final_dir,
            spill_dir,
            mut meta,
            budget,
            mut segments,
            series,
            symbols,
            ..
        } = self;
        // The last segment syncs while the index is written.
        segments.close_current()?;
        let mut spilled_bytes = series.spilled_bytes() + symbols.spilled_bytes;
        let index_path = tmp_dir.join("index");
        let mut index = SymbolsWriter::create(&index_path, &spill_dir.join("index"), budget / 2)?;
        symbols.drain(|s| index.add(s))?;
        let mut index = index.finish()?;

        let mut sorted = series.into_sorted()?;
        let mut left_out = Vec::new();
        let mut held: Option<SeriesRecord> = None;
        let mut emit = |rec: SeriesRecord| -> Result<(), BlockError> {
            index.add_series(&rec.labels, &rec.chunks)?;
            meta.stats.num_series += 1;
            meta.stats.num_samples += rec.samples;
            meta.stats.num_chunks += rec.chunks.len() as u64;
            Ok(())
        };
        while let Some(raw) = next_series(&mut sorted)? {
            let rec = decode_record(raw)
                .ok_or_else(|| BlockError::corrupt("series spill", 0, "undecodable record"))?;
            held = match held.take() {
                None => Some(rec),
                Some(mut prev) if prev.labels == rec.labels => {
                    // One label set given twice (two series IDs that normalise alike):
                    // join them if their chunks do not overlap, else keep the first.
                    let disjoint = prev.chunks.iter().all(|a| {
                        rec.chunks
                            .iter()
                            .all(|b| a.max_time < b.min_time || b.max_time < a.min_time)
                    });
                    if disjoint {
                        prev.chunks.extend(rec.chunks);
                        prev.samples += rec.samples;
                        prev.chunks.sort_by_key(|c| c.min_time);
                    } else {
                        left_out.push(rec.labels);
                    }
                    Some(prev)
                }
                Some(prev) => {
                    emit(prev)?;
                    Some(rec)
                }
            };
        }
        if let Some(prev) = held {
            emit(prev)?;
        }
        drop(sorted);
        spilled_bytes += index.spilled_bytes();
        let index_size = index.finish()?;
        let segs = segments.finish()?;
        meta.record_files(&segs, index_size);
        let meta_path = tmp_dir.join("meta.json");
        std::fs::write(&meta_path, meta.to_go_json()).map_err(BlockError::io(&meta_path))?;
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir).map_err(BlockError::io(&final_dir))?;
        }
        std::fs::rename(&tmp_dir, &final_dir).map_err(BlockError::io(&final_dir))?;
        Ok(WrittenBlock {
            dir: final_dir,
            meta,
            spilled_bytes,
            left_out,
        })
    }
}

fn next_series(sorted: &mut Sorted) -> Result<Option<&[u8]>, BlockError> {
    Ok(sorted.next_record()?)
}

/// Label names must be non-empty, sorted and unique (values may be anything).
fn check_labels(labels: &Labels) -> Result<(), BlockError> {
    for (i, (name, _)) in labels.iter().enumerate() {
        if name.is_empty() {
            return Err(BlockError::Invalid(format!(
                "empty label name in {labels:?}"
            )));
        }
        if i > 0 && labels[i - 1].0 >= *name {
            return Err(BlockError::Invalid(format!(
                "labels not sorted/unique at {name:?} in {labels:?}"
            )));
        }
    }
    Ok(())
}

/// A series waiting for the index: labels, chunk refs in time order, sample count.
struct SeriesRecord {
    labels: Labels,
    chunks: Vec<ChunkRef>,
    samples: u64,
}

/// Appends `s` so that byte order of the encodings is string order and the end of the
/// string is unambiguous: `0x00` → `01 01`, `0x01` → `01 02`, then a `0x00` terminator.
fn put_escaped(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            0 => out.extend_from_slice(&[1, 1]),
            1 => out.extend_from_slice(&[1, 2]),
            b => out.push(b),
        }
    }
    out.push(0);
}

/// Reads an escaped string up to its terminator.
fn take_escaped(b: &[u8], pos: &mut usize) -> Option<String> {
    let mut out = Vec::new();
    loop {
        match *b.get(*pos)? {
            0 => {
                *pos += 1;
                return String::from_utf8(out).ok();
            }
            1 => {
                out.push(b.get(*pos + 1)? - 1);
                *pos += 2;
            }
            c => {
                out.push(c);
                *pos += 1;
            }
        }
    }
}

/// `labels (name, value escaped) | 0x00 | seq | samples | chunks (min, max, ref)`,
/// integers big-endian: byte order is label order, then arrival order.
fn encode_record(out: &mut Vec<u8>, labels: &Labels, seq: u64, samples: u64, chunks: &[ChunkRef]) {
    out.clear();
    for (n, v) in labels {
        put_escaped(out, n);
        put_escaped(out, v);
    }
    out.push(0);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&samples.to_be_bytes());
    for c in chunks {
        out.extend_from_slice(&c.min_time.to_be_bytes());
        out.extend_from_slice(&c.max_time.to_be_bytes());
        out.extend_from_slice(&c.reference.to_be_bytes());
    }
}

fn decode_record(b: &[u8]) -> Option<SeriesRecord> {
    let mut pos = 0;
    let mut labels = Vec::new();
    while *b.get(pos)? != 0 {
        let n = take_escaped(b, &mut pos)?;
        let v = take_escaped(b, &mut pos)?;
        labels.push((n, v));
    }
    pos += 1;
    let word = |at: usize| -> Option<[u8; 8]> { b.get(at..at + 8)?.try_into().ok() };
    let samples = u64::from_be_bytes(word(pos + 8)?);
    pos += 16;
    let rest = b.get(pos..)?;
    if rest.len() % 24 != 0 {
        return None;
    }
    let chunks = rest
        .chunks_exact(24)
        .map(|c| {
            let w = |i: usize| c[i..i + 8].try_into().map(u64::from_be_bytes).unwrap_or(0);
            ChunkRef {
                min_time: w(0) as i64,
                max_time: w(8) as i64,
                reference: w(16),
            }
        })
        .collect();
    Some(SeriesRecord {
        labels,
        chunks,
        samples,
    })
}

/// Distinct label names and values: a set in memory, spilled as a sorted run whenever
/// it outgrows its budget; read back merged and deduplicated.
struct SymbolSet {
    dir: PathBuf,
    budget: usize,
    set: BTreeSet<Box<str>>,
    bytes: usize,
    runs: Vec<PathBuf>,
    spilled_bytes: u64,
}

impl SymbolSet {
    fn new(dir: &Path, budget: usize) -> Self {
        Self {
            dir: dir.to_owned(),
            budget: budget.max(1),
            set: BTreeSet::new(),
            bytes: 0,
            runs: Vec::new(),
            spilled_bytes: 0,
        }
    }

    fn insert(&mut self, s: &str) -> Result<(), BlockError> {
        if self.set.contains(s) {
            return Ok(());
        }
        // A BTreeSet entry costs roughly the string plus 40 bytes of node and pointer.
        self.bytes += s.len() + 40;
        self.set.insert(s.into());
        if self.bytes > self.budget {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<(), BlockError> {
        std::fs::create_dir_all(&self.dir).map_err(BlockError::io(&self.dir))?;
        let path = self.dir.join(format!("{:05}.run", self.runs.len()));
        let mut w = RunWriter::create(&path).map_err(BlockError::io(&path))?;
        for s in std::mem::take(&mut self.set) {
            w.push(s.as_bytes()).map_err(BlockError::io(&path))?;
        }
        self.spilled_bytes += w.finish().map_err(BlockError::io(&path))?;
        self.bytes = 0;
        self.runs.push(path);
        Ok(())
    }

    /// Calls `f` with every symbol once, ascending.
    fn drain(
        mut self,
        mut f: impl FnMut(&str) -> Result<(), BlockError>,
    ) -> Result<(), BlockError> {
        if self.runs.is_empty() {
            for s in std::mem::take(&mut self.set) {
                f(&s)?;
            }
            return Ok(());
        }
        if !self.set.is_empty() {
            self.spill()?;
        }
        let runs = external_sort::reduce_runs(
            std::mem::take(&mut self.runs),
            &self.dir,
            external_sort::MAX_FAN_IN,
        )?;
        let mut m = RunMerger::open(&runs)?;
        while let Some(rec) = m.next_record()? {
            let s = std::str::from_utf8(rec)
                .map_err(|e| BlockError::corrupt("symbol spill", 0, e.to_string()))?;
            f(s)?;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode_labels(l: &Labels) -> Vec<u8> {
        let mut out = Vec::new();
        encode_record(&mut out, l, 0, 0, &[]);
        out
    }

    proptest! {
        #[test]
        fn record_byte_order_is_label_order(
            a in proptest::collection::vec(("[a-c\\x00\\x01]{1,3}", "[a-c\\x00\\x01]{0,3}"), 0..4),
            b in proptest::collection::vec(("[a-c\\x00\\x01]{1,3}", "[a-c\\x00\\x01]{0,3}"), 0..4),
        ) {
            let (ea, eb) = (encode_labels(&a), encode_labels(&b));
            prop_assert_eq!(ea.cmp(&eb), a.cmp(&b));
            let rec = decode_record(&ea).expect("decode");
            prop_assert_eq!(rec.labels, a);
        }
    }

    #[test]
    fn records_round_trip() {
        let labels = vec![
            ("__name__".to_string(), "up".to_string()),
            ("a".into(), "".into()),
        ];
        let chunks = [
            ChunkRef {
                min_time: -5,
                max_time: 7,
                reference: 8,
            },
            ChunkRef {
                min_time: 9,
                max_time: 70,
                reference: 1 << 40,
            },
        ];
        let mut out = Vec::new();
        encode_record(&mut out, &labels, 3, 42, &chunks);
        let r = decode_record(&out).expect("decode");
        assert_eq!(r.labels, labels);
        assert_eq!(r.samples, 42);
        assert_eq!(r.chunks, chunks);
        assert!(decode_record(&out[..out.len() - 1]).is_none());
    }
}
