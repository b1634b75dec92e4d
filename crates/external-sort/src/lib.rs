//! Sorting byte records with bounded memory, for every sort in the project that can
//! outgrow RAM: the scanner's series→chunk records and the block writer's series,
//! symbols and postings.
//!
//! Records are byte strings ordered by plain byte comparison, so callers pick an
//! encoding whose byte order is the order they need. They collect in a
//! [`RecordBuffer`] (one arena, 8 bytes of bookkeeping each); a full buffer is sorted,
//! deduplicated and spilled as a *run* (snappy-framed, length-prefixed records).
//! [`RunMerger`] merges runs in order, dropping duplicates; [`reduce_runs`] keeps the
//! number merged at once bounded. [`Sorter`] wires these together for callers that
//! only want "push, then read back in order".

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Bookkeeping bytes per buffered record (offset + length).
const PER_RECORD_OVERHEAD: usize = 8;

/// Longest record a run may hold; anything longer in a run file means damage.
pub const MAX_RECORD_LEN: usize = 32 << 20;

/// Most runs merged at once: each open run costs its read buffers (~150 KB with the
/// snappy frame buffers), so the merge's memory stays bounded however many runs a
/// small budget produced.
pub const MAX_FAN_IN: usize = 32;

/// A run file failed to write or read.
#[derive(Debug, thiserror::Error)]
#[error("run file {path}: {source}")]
pub struct RunError {
    /// The run.
    pub path: PathBuf,
    /// The error.
    #[source]
    pub source: std::io::Error,
}

impl RunError {
    fn at(path: &Path) -> impl Fn(std::io::Error) -> Self + '_ {
        move |source| Self {
            path: path.to_owned(),
            source,
        }
    }
}

/// Records in memory, sorted on spill.
#[derive(Debug, Default)]
pub struct RecordBuffer {
    arena: Vec<u8>,
    spans: Vec<(u32, u32)>,
}

impl RecordBuffer {
    /// Appends an encoded record.
    pub fn push(&mut self, record: &[u8]) {
        // u32 offsets: a single buffer is capped far below 4 GiB by the memory budget;
        // callers spill before that (see `is_full`).
        self.spans
            .push((self.arena.len() as u32, record.len() as u32));
        self.arena.extend_from_slice(record);
    }

    /// Bytes held (arena + bookkeeping).
    pub fn bytes(&self) -> usize {
        self.arena.len() + self.spans.len() * PER_RECORD_OVERHEAD
    }

    /// Whether the buffer reached `budget` bytes (or the u32 offset limit).
    pub fn is_full(&self, budget: usize) -> bool {
        self.bytes() >= budget || self.arena.len() >= (u32::MAX as usize) - MAX_RECORD_LEN
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn get(&self, (o, l): (u32, u32)) -> &[u8] {
        &self.arena[o as usize..(o + l) as usize]
    }

    /// Sorts the records and drops duplicates, in place.
    fn sort_dedup(&mut self) {
        let arena = &self.arena;
        let get = |&(o, l): &(u32, u32)| &arena[o as usize..(o + l) as usize];
        self.spans.sort_unstable_by(|a, b| get(a).cmp(get(b)));
        self.spans.dedup_by(|a, b| get(a) == get(b));
    }

    /// Sorts, deduplicates and writes the records to `path` as a run, then empties the
    /// buffer; returns the run's size in bytes. The file is fsynced: a checkpoint that
    /// names it must never point at data the OS had not written.
    pub fn spill(&mut self, path: &Path) -> std::io::Result<u64> {
        self.sort_dedup();
        let mut w = RunWriter::create(path)?;
        for &span in &self.spans {
            w.push(self.get(span))?;
        }
        let size = w.finish()?;
        self.arena.clear();
        self.spans.clear();
        Ok(size)
    }
}

/// Writes one run: snappy-framed, length-prefixed records, fsynced on finish.
pub struct RunWriter {
    w: snap::write::FrameEncoder<BufWriter<File>>,
}

impl RunWriter {
    /// Creates the run file.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = File::create(path)?;
        Ok(Self {
            w: snap::write::FrameEncoder::new(BufWriter::with_capacity(256 << 10, file)),
        })
    }

    /// Appends a record (callers append in sorted order).
    pub fn push(&mut self, record: &[u8]) -> std::io::Result<()> {
        write_varint(&mut self.w, record.len() as u64)?;
        self.w.write_all(record)
    }

    /// Flushes and fsyncs; returns the file size.
    pub fn finish(self) -> std::io::Result<u64> {
        let buf = self.w.into_inner().map_err(|e| e.into_error())?;
        let file = buf.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        file.metadata().map(|m| m.len())
    }
}

/// Merges runs in groups of `fan_in` into new runs under `scratch` until at most
/// `fan_in` remain. The input runs are left alone (checkpoints may name them);
/// intermediate runs created here are deleted once merged again.
pub fn reduce_runs(
    mut runs: Vec<PathBuf>,
    scratch: &Path,
    fan_in: usize,
) -> Result<Vec<PathBuf>, RunError> {
    let fan_in = fan_in.max(2);
    let mut created: Vec<PathBuf> = Vec::new();
    let mut n = 0;
    while runs.len() > fan_in {
        let group: Vec<PathBuf> = runs.drain(..fan_in).collect();
        let out = scratch.join(format!("merged-{n}.run"));
        n += 1;
        let mut merger = RunMerger::open(&group)?;
        let mut w = RunWriter::create(&out).map_err(RunError::at(&out))?;
        while let Some(r) = merger.next_record()? {
            w.push(r).map_err(RunError::at(&out))?;
        }
        w.finish().map_err(RunError::at(&out))?;
        for g in group.iter().filter(|g| created.contains(g)) {
            let _ = std::fs::remove_file(g);
        }
        created.push(out.clone());
        runs.push(out);
    }
    Ok(runs)
}

fn write_varint(w: &mut impl Write, mut v: u64) -> std::io::Result<()> {
    let mut buf = [0u8; 10];
    let mut n = 0;
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            buf[n] = b;
            n += 1;
            break;
        }
        buf[n] = b | 0x80;
        n += 1;
    }
    w.write_all(&buf[..n])
}

/// Reads the varint, `Ok(None)` at a clean end of file.
fn read_varint(r: &mut impl Read) -> std::io::Result<Option<u64>> {
    let mut v = 0u64;
    for i in 0..10 {
        let mut b = [0u8; 1];
        if r.read(&mut b)? == 0 {
            if i == 0 {
                return Ok(None);
            }
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        v |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            return Ok(Some(v));
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "varint too long",
    ))
}

/// Sequential reader of one run.
struct RunReader {
    path: PathBuf,
    r: snap::read::FrameDecoder<BufReader<File>>,
}

impl RunReader {
    fn open(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            path: path.to_owned(),
            r: snap::read::FrameDecoder::new(BufReader::with_capacity(64 << 10, File::open(path)?)),
        })
    }

    fn next(&mut self, out: &mut Vec<u8>) -> std::io::Result<bool> {
        let Some(len) = read_varint(&mut self.r)? else {
            return Ok(false);
        };
        if len > MAX_RECORD_LEN as u64 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("record of {len} bytes"),
            ));
        }
        out.resize(len as usize, 0);
        self.r.read_exact(out)?;
        Ok(true)
    }
}

/// Merges sorted runs into one sorted, duplicate-free record stream.
pub struct RunMerger {
    readers: Vec<RunReader>,
    heap: BinaryHeap<Reverse<(Vec<u8>, usize)>>,
    last: Vec<u8>,
    spare: Vec<u8>,
    started: bool,
}

impl std::fmt::Debug for RunMerger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunMerger")
            .field("runs", &self.readers.len())
            .finish()
    }
}

impl RunMerger {
    /// Opens every run.
    pub fn open(paths: &[PathBuf]) -> Result<Self, RunError> {
        let mut readers = Vec::with_capacity(paths.len());
        let mut heap = BinaryHeap::with_capacity(paths.len());
        for p in paths {
            let mut r = RunReader::open(p).map_err(RunError::at(p))?;
            let mut first = Vec::new();
            if r.next(&mut first).map_err(RunError::at(p))? {
                heap.push(Reverse((first, readers.len())));
            }
            readers.push(r);
        }
        Ok(Self {
            readers,
            heap,
            last: Vec::new(),
            spare: Vec::new(),
            started: false,
        })
    }

    /// The next distinct record (valid until the next call), or `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<&[u8]>, RunError> {
        loop {
            let Some(Reverse((rec, i))) = self.heap.pop() else {
                return Ok(None);
            };
            // Buffers circulate between the heap, `last` and `spare`: no allocation
            // per record once the merge is warm.
            let mut next = std::mem::take(&mut self.spare);
            let r = &mut self.readers[i];
            if r.next(&mut next).map_err(RunError::at(&r.path))? {
                self.heap.push(Reverse((next, i)));
            }
            if self.started && rec == self.last {
                self.spare = rec;
                continue;
            }
            self.started = true;
            self.spare = std::mem::replace(&mut self.last, rec);
            return Ok(Some(&self.last));
        }
    }
}

/// Push records in any order, read them back sorted and distinct; memory stays under
/// the budget given at creation plus the merge's read buffers.
///
/// Runs go to the sorter's own directory `<dir>/<name>/` (created on the first spill),
/// which is removed when the sorter or its [`Sorted`] stream is dropped.
#[derive(Debug)]
pub struct Sorter {
    dir: PathBuf,
    budget: usize,
    buffer: RecordBuffer,
    runs: Vec<PathBuf>,
    spilled_bytes: u64,
}

impl Sorter {
    /// A sorter holding at most about `budget` bytes in memory.
    pub fn new(dir: &Path, name: &str, budget: usize) -> Self {
        Self {
            dir: dir.join(name),
            budget: budget.max(1),
            buffer: RecordBuffer::default(),
            runs: Vec::new(),
            spilled_bytes: 0,
        }
    }

    /// Adds a record, spilling a sorted run when the buffer is full.
    pub fn push(&mut self, record: &[u8]) -> Result<(), RunError> {
        if record.len() > MAX_RECORD_LEN {
            return Err(RunError {
                path: self.dir.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("record of {} bytes", record.len()),
                ),
            });
        }
        self.buffer.push(record);
        if self.buffer.is_full(self.budget) {
            self.spill()?;
        }
        Ok(())
    }

    /// Records held in memory now.
    pub fn in_memory(&self) -> usize {
        self.buffer.len()
    }

    /// Bytes written to run files so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled_bytes
    }

    fn spill(&mut self) -> Result<(), RunError> {
        std::fs::create_dir_all(&self.dir).map_err(RunError::at(&self.dir))?;
        let path = self.dir.join(format!("{:05}.run", self.runs.len()));
        // Registered before writing so a failed run is still cleaned up.
        self.runs.push(path.clone());
        self.spilled_bytes += self.buffer.spill(&path).map_err(RunError::at(&path))?;
        Ok(())
    }

    /// Every record pushed, sorted and without duplicates.
    pub fn into_sorted(mut self) -> Result<Sorted, RunError> {
        if self.runs.is_empty() {
            let mut buffer = std::mem::take(&mut self.buffer);
            buffer.sort_dedup();
            return Ok(Sorted {
                source: Source::Memory { buffer, next: 0 },
                dir: None,
            });
        }
        if !self.buffer.is_empty() {
            self.spill()?;
        }
        self.runs.clear();
        // From here the stream owns the directory (and removes it when dropped).
        let mut sorted = Sorted {
            source: Source::Memory {
                buffer: RecordBuffer::default(),
                next: 0,
            },
            dir: Some(std::mem::take(&mut self.dir)),
        };
        let dir = sorted.dir.clone().unwrap_or_default();
        let mut runs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(RunError::at(&dir))?
            .flatten()
            .map(|e| e.path())
            .collect();
        runs.sort();
        let runs = reduce_runs(runs, &dir, MAX_FAN_IN)?;
        sorted.source = Source::Runs(RunMerger::open(&runs)?);
        Ok(sorted)
    }
}

impl Drop for Sorter {
    fn drop(&mut self) {
        if !self.runs.is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The sorted output of a [`Sorter`].
#[derive(Debug)]
pub struct Sorted {
    source: Source,
    /// The spill directory to remove once read (`None` when nothing spilled).
    dir: Option<PathBuf>,
}

#[derive(Debug)]
enum Source {
    Memory { buffer: RecordBuffer, next: usize },
    Runs(RunMerger),
}

impl Sorted {
    /// The next record (valid until the next call), or `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<&[u8]>, RunError> {
        match &mut self.source {
            Source::Memory { buffer, next } => {
                let Some(&span) = buffer.spans.get(*next) else {
                    return Ok(None);
                };
                *next += 1;
                Ok(Some(buffer.get(span)))
            }
            Source::Runs(m) => m.next_record(),
        }
    }
}

impl Drop for Sorted {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn drain(mut s: Sorted) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(r) = s.next_record().expect("next") {
            out.push(r.to_vec());
        }
        out
    }

    proptest! {
        #[test]
        fn spilled_runs_merge_to_the_sorted_distinct_set(
            recs in proptest::collection::vec(proptest::collection::vec(0u8..4, 0..6), 0..300),
            budget in 1usize..2000,
        ) {
            let dir = tempfile::tempdir().expect("tmp");
            let mut buf = RecordBuffer::default();
            let mut runs = Vec::new();
            let model: std::collections::BTreeSet<Vec<u8>> = recs.iter().cloned().collect();
            for r in &recs {
                buf.push(r);
                if buf.is_full(budget) {
                    let p = dir.path().join(format!("{}.run", runs.len()));
                    buf.spill(&p).expect("spill");
                    runs.push(p);
                }
            }
            let p = dir.path().join("last.run");
            buf.spill(&p).expect("spill");
            runs.push(p);
            let runs = reduce_runs(runs, dir.path(), 2).expect("reduce");
            prop_assert!(runs.len() <= 2);
            let mut m = RunMerger::open(&runs).expect("open");
            let mut got = Vec::new();
            while let Some(r) = m.next_record().expect("next") {
                got.push(r.to_vec());
            }
            prop_assert_eq!(got, model.into_iter().collect::<Vec<_>>());
        }

        #[test]
        fn sorter_output_does_not_depend_on_the_budget(
            recs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..400),
            budget in 1usize..4000,
        ) {
            let dir = tempfile::tempdir().expect("tmp");
            let model: std::collections::BTreeSet<Vec<u8>> = recs.iter().cloned().collect();
            let mut s = Sorter::new(&dir.path().join("spill"), "t", budget);
            for r in &recs {
                s.push(r).expect("push");
            }
            let spilled = s.spilled_bytes() > 0;
            let got = drain(s.into_sorted().expect("sorted"));
            prop_assert_eq!(got, model.into_iter().collect::<Vec<_>>());
            if spilled {
                prop_assert!(!dir.path().join("spill/t").exists(), "run files removed once read");
            }
        }
    }

    #[test]
    fn many_runs_are_merged_in_rounds() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = Sorter::new(dir.path(), "many", 64);
        for i in (0..5000u32).rev() {
            s.push(&i.to_be_bytes()).expect("push");
        }
        assert!(s.runs.len() > MAX_FAN_IN);
        let got = drain(s.into_sorted().expect("sorted"));
        let want: Vec<Vec<u8>> = (0..5000u32).map(|i| i.to_be_bytes().to_vec()).collect();
        assert_eq!(got, want);
        assert!(
            !dir.path().join("many").exists(),
            "run files removed once read"
        );
    }

    #[test]
    fn a_damaged_run_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("bad.run");
        let mut w = RunWriter::create(&p).expect("create");
        w.push(b"abc").expect("push");
        w.finish().expect("finish");
        let mut bytes = std::fs::read(&p).expect("read");
        let n = bytes.len();
        bytes.truncate(n - 2);
        std::fs::write(&p, bytes).expect("write");
        let e =
            RunMerger::open(std::slice::from_ref(&p)).and_then(|mut m| m.next_record().map(|_| ()));
        let e = e.expect_err("damaged run");
        assert!(e.to_string().contains("bad.run"), "{e}");
    }
}
