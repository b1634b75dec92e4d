//! External sort of series records (labels + chunk refs) into TSDB label order.
//!
//! Records are buffered up to a memory budget; a full buffer is sorted and spilled to
//! a run file under the work dir; the final pass k-way merges the runs. The order is
//! a total order on labels, so the result does not depend on the budget.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use cortex_chunk::LabelPairs;
use tsdb_block::ChunkMeta;

/// A series ready for the index: labels and the refs of its chunks in the segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesRecord {
    /// Normalised labels.
    pub labels: LabelPairs,
    /// Chunk metas with segment refs, in time order.
    pub chunks: Vec<ChunkMeta>,
    /// Samples in those chunks.
    pub samples: u64,
}

impl SeriesRecord {
    fn mem_size(&self) -> usize {
        96 + self.chunks.len() * std::mem::size_of::<ChunkMeta>()
            + self
                .labels
                .iter()
                .map(|(n, v)| 48 + n.len() + v.len())
                .sum::<usize>()
    }
}

/// Sorter I/O failure on a named run file.
#[derive(Debug, thiserror::Error)]
#[error("series spill file {path}: {source}")]
pub struct SortError {
    /// Run file.
    pub path: PathBuf,
    /// I/O error.
    #[source]
    pub source: std::io::Error,
}

/// Buffers records and spills sorted runs beyond `budget` bytes.
#[derive(Debug)]
pub struct SeriesSorter {
    dir: PathBuf,
    budget: usize,
    buffer: Vec<SeriesRecord>,
    buffered_bytes: usize,
    runs: Vec<PathBuf>,
    spilled_bytes: u64,
}

impl SeriesSorter {
    /// A sorter spilling into `dir` (created on the first spill).
    pub fn new(dir: &Path, budget: usize) -> Self {
        Self {
            dir: dir.to_owned(),
            budget,
            buffer: Vec::new(),
            buffered_bytes: 0,
            runs: Vec::new(),
            spilled_bytes: 0,
        }
    }

    /// Records currently held in memory.
    pub fn in_memory(&self) -> usize {
        self.buffer.len()
    }

    /// Bytes written to run files so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled_bytes
    }

    /// Adds a record, spilling when the buffer exceeds the budget.
    pub fn push(&mut self, record: SeriesRecord) -> Result<(), SortError> {
        self.buffered_bytes += record.mem_size();
        self.buffer.push(record);
        if self.buffered_bytes > self.budget {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<(), SortError> {
        self.buffer.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        let path = self.dir.join(format!("run-{:05}.series", self.runs.len()));
        let io = |source| SortError {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&path).map_err(io)?);
        let mut bytes = 0u64;
        for r in self.buffer.drain(..) {
            bytes += write_record(&mut w, &r).map_err(io)?;
        }
        w.flush().map_err(io)?;
        self.spilled_bytes += bytes;
        self.buffered_bytes = 0;
        self.runs.push(path);
        metrics::counter!(crate::metrics::SPILL_BYTES).increment(bytes);
        Ok(())
    }

    /// Streams every record in label order to `f`.
    pub fn drain_sorted(
        mut self,
        mut f: impl FnMut(SeriesRecord) -> Result<(), crate::BuildError>,
    ) -> Result<(), crate::BuildError> {
        if self.runs.is_empty() {
            self.buffer.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
            for r in self.buffer.drain(..) {
                f(r)?;
            }
            return Ok(());
        }
        if !self.buffer.is_empty() {
            self.spill()?;
        }
        let mut readers = Vec::with_capacity(self.runs.len());
        for p in &self.runs {
            let file = File::open(p).map_err(|source| SortError {
                path: p.clone(),
                source,
            })?;
            readers.push((p.clone(), BufReader::with_capacity(256 << 10, file)));
        }
        let mut heap = BinaryHeap::new();
        for (i, (p, r)) in readers.iter_mut().enumerate() {
            if let Some(rec) = read_record(r).map_err(|source| SortError {
                path: p.clone(),
                source,
            })? {
                heap.push(Reverse(HeapItem(rec, i)));
            }
        }
        while let Some(Reverse(HeapItem(rec, i))) = heap.pop() {
            let (p, r) = &mut readers[i];
            if let Some(next) = read_record(r).map_err(|source| SortError {
                path: p.clone(),
                source,
            })? {
                heap.push(Reverse(HeapItem(next, i)));
            }
            f(rec)?;
        }
        for p in &self.runs {
            let _ = std::fs::remove_file(p);
        }
        Ok(())
    }
}

struct HeapItem(SeriesRecord, usize);

impl PartialEq for HeapItem {
    fn eq(&self, o: &Self) -> bool {
        self.0.labels == o.0.labels && self.1 == o.1
    }
}
impl Eq for HeapItem {}
impl PartialOrd for HeapItem {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for HeapItem {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // Run index breaks ties, so equal label sets come out in spill order.
        self.0.labels.cmp(&o.0.labels).then(self.1.cmp(&o.1))
    }
}

fn write_str(w: &mut impl Write, s: &str) -> std::io::Result<u64> {
    w.write_all(&(s.len() as u32).to_le_bytes())?;
    w.write_all(s.as_bytes())?;
    Ok(4 + s.len() as u64)
}

fn write_record(w: &mut impl Write, r: &SeriesRecord) -> std::io::Result<u64> {
    let mut n = 8;
    w.write_all(&(r.labels.len() as u32).to_le_bytes())?;
    for (name, value) in &r.labels {
        n += write_str(w, name)? + write_str(w, value)?;
    }
    w.write_all(&r.samples.to_le_bytes())?;
    n += 8;
    w.write_all(&(r.chunks.len() as u32).to_le_bytes())?;
    for c in &r.chunks {
        w.write_all(&c.min_time.to_le_bytes())?;
        w.write_all(&c.max_time.to_le_bytes())?;
        w.write_all(&c.reference.to_le_bytes())?;
        n += 24;
    }
    Ok(n)
}

fn read_u32(r: &mut impl Read) -> std::io::Result<Option<u32>> {
    let mut b = [0u8; 4];
    match r.read_exact(&mut b) {
        Ok(()) => Ok(Some(u32::from_le_bytes(b))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

fn read_8(r: &mut impl Read) -> std::io::Result<[u8; 8]> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(b)
}

fn read_string(r: &mut impl Read) -> std::io::Result<String> {
    let len = read_u32(r)?.ok_or(std::io::ErrorKind::UnexpectedEof)? as usize;
    let mut b = vec![0u8; len];
    r.read_exact(&mut b)?;
    String::from_utf8(b).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn read_record(r: &mut impl Read) -> std::io::Result<Option<SeriesRecord>> {
    let Some(n_labels) = read_u32(r)? else {
        return Ok(None);
    };
    let mut labels = Vec::with_capacity(n_labels as usize);
    for _ in 0..n_labels {
        let name = read_string(r)?;
        labels.push((name, read_string(r)?));
    }
    let samples = u64::from_le_bytes(read_8(r)?);
    let n_chunks = read_u32(r)?.ok_or(std::io::ErrorKind::UnexpectedEof)?;
    let mut chunks = Vec::with_capacity(n_chunks as usize);
    for _ in 0..n_chunks {
        chunks.push(ChunkMeta {
            min_time: i64::from_le_bytes(read_8(r)?),
            max_time: i64::from_le_bytes(read_8(r)?),
            reference: u64::from_le_bytes(read_8(r)?),
        });
    }
    Ok(Some(SeriesRecord {
        labels,
        chunks,
        samples,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u32) -> SeriesRecord {
        SeriesRecord {
            labels: vec![
                ("__name__".into(), format!("m{}", (i * 7919) % 1000)),
                ("i".into(), i.to_string()),
            ],
            chunks: vec![ChunkMeta {
                min_time: i as i64,
                max_time: i as i64 + 1,
                reference: i as u64,
            }],
            samples: 1,
        }
    }

    fn sorted_with_budget(budget: usize) -> (Vec<SeriesRecord>, u64) {
        let dir = tempfile::tempdir().expect("dir");
        let mut s = SeriesSorter::new(dir.path(), budget);
        for i in 0..1000 {
            s.push(rec(i)).expect("push");
        }
        let spilled = s.spilled_bytes();
        let mut out = Vec::new();
        s.drain_sorted(|r| {
            out.push(r);
            Ok(())
        })
        .expect("drain");
        (out, spilled)
    }

    #[test]
    fn spilling_gives_the_same_order() {
        let (in_memory, none) = sorted_with_budget(usize::MAX);
        let (spilled, some) = sorted_with_budget(2000);
        assert_eq!(none, 0);
        assert!(some > 0);
        assert_eq!(in_memory, spilled);
        assert!(in_memory.windows(2).all(|w| w[0].labels < w[1].labels));
    }
}
