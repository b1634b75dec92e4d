//! Series→chunk records and the external sort that groups them with bounded memory.
//!
//! A record is `user 0x00 day(8 bytes BE) sid 0x00 chunk`, so byte order is
//! (tenant, day, series, chunk) order. Records collect in a [`RecordBuffer`] (one
//! arena, 8 bytes of bookkeeping each); a full buffer is sorted, deduplicated and
//! spilled as a *run* (snappy-framed, length-prefixed records). [`RunMerger`] merges
//! every run of a table in order, dropping duplicates, so plans stream out one
//! (tenant, day) at a time and memory never depends on the table size.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Bookkeeping bytes per buffered record (offset + length).
const PER_RECORD_OVERHEAD: usize = 8;

/// Encodes one record into `out` (cleared first).
pub fn encode_record(out: &mut Vec<u8>, user: &str, day: i64, sid: &str, chunk: &str) {
    out.clear();
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    out.extend_from_slice(&(day as u64 ^ (1 << 63)).to_be_bytes());
    out.extend_from_slice(sid.as_bytes());
    out.push(0);
    out.extend_from_slice(chunk.as_bytes());
}

/// A decoded record borrowing the encoded bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Tenant.
    pub user: &'a str,
    /// Day index.
    pub day: i64,
    /// Series ID.
    pub sid: &'a str,
    /// Chunk ID.
    pub chunk: &'a str,
}

/// Decodes a record; `None` if the bytes are not a record (a damaged run file).
pub fn decode_record(bytes: &[u8]) -> Option<Record<'_>> {
    let u = bytes.iter().position(|b| *b == 0)?;
    let user = std::str::from_utf8(&bytes[..u]).ok()?;
    let day_bytes: [u8; 8] = bytes.get(u + 1..u + 9)?.try_into().ok()?;
    let day = (u64::from_be_bytes(day_bytes) ^ (1 << 63)) as i64;
    let rest = &bytes[u + 9..];
    let s = rest.iter().position(|b| *b == 0)?;
    Some(Record {
        user,
        day,
        sid: std::str::from_utf8(&rest[..s]).ok()?,
        chunk: std::str::from_utf8(&rest[s + 1..]).ok()?,
    })
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
        // spill() is called before that (see `is_full`).
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
        self.bytes() >= budget || self.arena.len() >= (u32::MAX as usize) - (1 << 20)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Sorts, deduplicates and writes the records to `path` as a run, then empties the
    /// buffer; returns the run's size in bytes. The file is fsynced: a checkpoint that
    /// names it must never point at data the OS had not written.
    pub fn spill(&mut self, path: &Path) -> std::io::Result<u64> {
        let arena = &self.arena;
        let get = |&(o, l): &(u32, u32)| &arena[o as usize..(o + l) as usize];
        self.spans.sort_unstable_by(|a, b| get(a).cmp(get(b)));
        self.spans.dedup_by(|a, b| get(a) == get(b));
        let mut w = RunWriter::create(path)?;
        for span in &self.spans {
            w.push(get(span))?;
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

/// Most runs merged at once: each open run costs its read buffers (~150 KB with the
/// snappy frame buffers), so the merge's memory stays bounded however many runs a
/// small budget produced.
pub const MAX_FAN_IN: usize = 32;

/// Merges runs in groups of `fan_in` into new runs under `scratch` until at most
/// `fan_in` remain. The input runs are left alone (checkpoints name them); intermediate
/// runs created here are deleted once merged again.
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
        let err = |source| RunError {
            path: out.clone(),
            source,
        };
        let mut merger = RunMerger::open(&group)?;
        let mut w = RunWriter::create(&out).map_err(err)?;
        while let Some(r) = merger.next_record()? {
            w.push(r).map_err(err)?;
        }
        w.finish().map_err(err)?;
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
        if len > 1 << 20 {
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
    started: bool,
}

impl std::fmt::Debug for RunMerger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunMerger")
            .field("runs", &self.readers.len())
            .finish()
    }
}

/// A run file failed to read.
#[derive(Debug, thiserror::Error)]
#[error("run file {path}: {source}")]
pub struct RunError {
    /// The run.
    pub path: PathBuf,
    /// The error.
    pub source: std::io::Error,
}

impl RunMerger {
    /// Opens every run.
    pub fn open(paths: &[PathBuf]) -> Result<Self, RunError> {
        let mut readers = Vec::with_capacity(paths.len());
        let mut heap = BinaryHeap::with_capacity(paths.len());
        for p in paths {
            let mut r = RunReader::open(p).map_err(|source| RunError {
                path: p.clone(),
                source,
            })?;
            let mut first = Vec::new();
            if r.next(&mut first).map_err(|source| RunError {
                path: p.clone(),
                source,
            })? {
                heap.push(Reverse((first, readers.len())));
            }
            readers.push(r);
        }
        Ok(Self {
            readers,
            heap,
            last: Vec::new(),
            started: false,
        })
    }

    /// The next distinct record (valid until the next call), or `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<&[u8]>, RunError> {
        loop {
            let Some(Reverse((rec, i))) = self.heap.pop() else {
                return Ok(None);
            };
            let mut next = Vec::with_capacity(rec.len());
            let r = &mut self.readers[i];
            if r.next(&mut next).map_err(|source| RunError {
                path: r.path.clone(),
                source,
            })? {
                self.heap.push(Reverse((next, i)));
            }
            if self.started && rec == self.last {
                continue;
            }
            self.started = true;
            self.last = rec;
            return Ok(Some(&self.last));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn record_round_trip_and_order() {
        let mut a = Vec::new();
        encode_record(&mut a, "u", 18584, "sid", "u/1:2:3:4");
        let r = decode_record(&a).expect("decode");
        assert_eq!(
            (r.user, r.day, r.sid, r.chunk),
            ("u", 18584, "sid", "u/1:2:3:4")
        );
        let mut b = Vec::new();
        encode_record(&mut b, "u", 18585, "aaa", "x");
        assert!(a < b, "day orders before series");
        let mut c = Vec::new();
        encode_record(&mut c, "u2", 1, "a", "x");
        let mut d = Vec::new();
        encode_record(&mut d, "u", 99999, "a", "x");
        assert!(d < c, "a tenant that is a prefix of another sorts first");
    }

    proptest! {
        #[test]
        fn spilled_runs_merge_to_the_sorted_distinct_set(
            recs in proptest::collection::vec((0u8..3, 0i64..3, 0u8..5, 0u8..5), 0..200),
            budget in 1usize..2000,
        ) {
            let dir = tempfile::tempdir().expect("tmp");
            let mut buf = RecordBuffer::default();
            let mut runs = Vec::new();
            let mut model = std::collections::BTreeSet::new();
            let mut enc = Vec::new();
            for (u, d, s, c) in recs {
                encode_record(&mut enc, &format!("u{u}"), 18000 + d, &format!("s{s}"), &format!("c{c}"));
                model.insert(enc.clone());
                buf.push(&enc);
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
    }
}
