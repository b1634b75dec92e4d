//! Streaming index writer (Prometheus v2.37 "Layout A") with bounded memory.
//!
//! The file is written front to back as Prometheus' `tsdb/index` writer does it:
//! symbols (streamed in ascending order through [`SymbolsWriter`]), then series in
//! label order, then label indices, postings and the two offset tables. Nothing grows
//! with the block in memory:
//! * symbol lookups go through [`SymbolTable`]: all symbols while they fit the budget,
//!   beyond it every 32nd symbol plus a bounded cache of 32-symbol blocks read back
//!   from the file;
//! * postings (`name, value, series` triples) are sorted externally and merged from
//!   disk; the all-series list and the postings offset table are staged in spill
//!   files.
//!
//! What does stay in memory: the values of one label name (label index) or the
//! series of one label pair (postings) while that section is written, 4 bytes each.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use external_sort::{RunMerger, RunWriter, Sorter};

use super::{ChunkRef, MAGIC};
use crate::error::BlockError;
use crate::varint::{put_uvarint, put_uvarint_str, put_varint};

/// Symbols per sampled block of the symbol table (Prometheus samples every 32nd).
const SYMBOL_BLOCK: usize = 32;

/// Default memory for the index writer when none is given (tests, small blocks).
pub const DEFAULT_INDEX_MEMORY: usize = 64 << 20;

/// Writes the symbol table, the first section of an index; [`SymbolsWriter::finish`]
/// turns it into the [`IndexWriter`] that takes the series.
pub struct SymbolsWriter {
    out: Output,
    spill_dir: PathBuf,
    budget: usize,
    section_start: u64,
    count: u32,
    entries_crc: u32,
    entries_len: u64,
    last: Option<String>,
    /// Every symbol while they fit `budget / 2`; dropped once they don't.
    all: Option<Vec<Box<str>>>,
    all_bytes: usize,
    /// `(first symbol, file offset)` of every block of [`SYMBOL_BLOCK`] symbols.
    samples: Vec<(Box<str>, u64)>,
    buf: Vec<u8>,
}

/// Position-tracking buffered file output.
struct Output {
    path: PathBuf,
    w: BufWriter<File>,
    pos: u64,
}

impl Output {
    fn write(&mut self, b: &[u8]) -> Result<(), BlockError> {
        self.w.write_all(b).map_err(BlockError::io(&self.path))?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self, align: u64) -> Result<(), BlockError> {
        let n = (align - self.pos % align) % align;
        self.write(&[0u8; 16][..n as usize])
    }

    /// `len be32 | body | CRC32C(body)`.
    fn write_section(&mut self, body: &[u8]) -> Result<(), BlockError> {
        let len = u32::try_from(body.len())
            .map_err(|_| BlockError::Invalid("index section exceeds 4 GiB".into()))?;
        self.write(&len.to_be_bytes())?;
        self.write(body)?;
        self.write(&crc32c::crc32c(body).to_be_bytes())
    }

    /// Overwrites bytes at `at` (before the current position), then returns to the end.
    fn patch(&mut self, at: u64, b: &[u8]) -> Result<(), BlockError> {
        let io = BlockError::io(&self.path);
        let r = (|| {
            self.w.seek(SeekFrom::Start(at))?;
            self.w.write_all(b)?;
            self.w.seek(SeekFrom::Start(self.pos)).map(|_| ())
        })();
        r.map_err(io)
    }
}

fn section_too_big() -> BlockError {
    BlockError::Invalid("index section exceeds 4 GiB".into())
}

impl SymbolsWriter {
    /// Creates the index file at `path` and writes its header. Spill files go under
    /// `spill_dir`; `budget` bounds the writer's memory (symbols cache and postings).
    pub fn create(path: &Path, spill_dir: &Path, budget: usize) -> Result<Self, BlockError> {
        let file = File::create(path).map_err(BlockError::io(path))?;
        let mut out = Output {
            path: path.to_owned(),
            w: BufWriter::with_capacity(1 << 20, file),
            pos: 0,
        };
        let mut header = MAGIC.to_be_bytes().to_vec();
        header.push(2);
        out.write(&header)?;
        let section_start = out.pos;
        // Length and count are patched in when the last symbol is known.
        out.write(&[0u8; 8])?;
        Ok(Self {
            out,
            spill_dir: spill_dir.to_owned(),
            budget: budget.max(4),
            section_start,
            count: 0,
            entries_crc: 0,
            entries_len: 0,
            last: None,
            all: Some(Vec::new()),
            all_bytes: 0,
            samples: Vec::new(),
            buf: Vec::with_capacity(256),
        })
    }

    /// Adds the next symbol; symbols must be strictly ascending.
    pub fn add(&mut self, symbol: &str) -> Result<(), BlockError> {
        if let Some(last) = &self.last
            && last.as_str() >= symbol
        {
            return Err(BlockError::Invalid(format!(
                "symbols not strictly ascending: {last:?} then {symbol:?}"
            )));
        }
        if (self.count as usize).is_multiple_of(SYMBOL_BLOCK) {
            self.samples.push((symbol.into(), self.out.pos));
        }
        self.count = self
            .count
            .checked_add(1)
            .ok_or_else(|| BlockError::Invalid("more than 2^32 symbols".into()))?;
        self.buf.clear();
        put_uvarint_str(&mut self.buf, symbol);
        self.entries_crc = crc32c::crc32c_append(self.entries_crc, &self.buf);
        self.entries_len += self.buf.len() as u64;
        let buf = std::mem::take(&mut self.buf);
        self.out.write(&buf)?;
        self.buf = buf;
        if let Some(all) = &mut self.all {
            self.all_bytes += symbol.len() + 16;
            if self.all_bytes > self.budget / 2 {
                self.all = None;
            } else {
                all.push(symbol.into());
            }
        }
        let last = self.last.get_or_insert_with(String::new);
        last.clear();
        last.push_str(symbol);
        Ok(())
    }

    /// Closes the symbol table; the returned writer takes the series.
    pub fn finish(mut self) -> Result<IndexWriter, BlockError> {
        let count_bytes = self.count.to_be_bytes();
        let body_len = u32::try_from(4 + self.entries_len).map_err(|_| section_too_big())?;
        let crc = crc32c::crc32c_combine(
            crc32c::crc32c(&count_bytes),
            self.entries_crc,
            self.entries_len as usize,
        );
        self.out.write(&crc.to_be_bytes())?;
        let mut head = body_len.to_be_bytes().to_vec();
        head.extend_from_slice(&count_bytes);
        self.out.patch(self.section_start, &head)?;
        self.out.w.flush().map_err(BlockError::io(&self.out.path))?;
        let table = match self.all.take() {
            Some(all) => SymbolTable::InMemory(all),
            None => {
                let reader = File::open(&self.out.path).map_err(BlockError::io(&self.out.path))?;
                SymbolTable::Sampled(Box::new(SampledSymbols {
                    path: self.out.path.clone(),
                    reader,
                    count: self.count,
                    table_end: self.out.pos - 4,
                    samples: std::mem::take(&mut self.samples),
                    cache: HashMap::new(),
                    order: VecDeque::new(),
                    cached_bytes: 0,
                    budget: self.budget / 4,
                    last_by_name: HashMap::new(),
                }))
            }
        };
        std::fs::create_dir_all(&self.spill_dir).map_err(BlockError::io(&self.spill_dir))?;
        let all_path = self.spill_dir.join("all-series");
        let all_file = File::create(&all_path).map_err(BlockError::io(&all_path))?;
        Ok(IndexWriter {
            toc_series: self.out.pos,
            out: self.out,
            symbols: table,
            last_series: None,
            postings: Sorter::new(&self.spill_dir, "postings", self.budget / 4),
            all_series: BufWriter::with_capacity(64 << 10, all_file),
            all_series_path: all_path,
            series_count: 0,
            spill_dir: self.spill_dir,
            buf: Vec::with_capacity(1024),
            syms: Vec::new(),
        })
    }
}

/// Symbol lookups in both directions.
enum SymbolTable {
    InMemory(Vec<Box<str>>),
    Sampled(Box<SampledSymbols>),
}

/// Every 32nd symbol in memory; whole 32-symbol blocks read back from the written
/// symbol table on demand, kept in a FIFO cache of bounded size.
struct SampledSymbols {
    path: PathBuf,
    reader: File,
    count: u32,
    /// End of the symbol entries (where the section's CRC starts).
    table_end: u64,
    samples: Vec<(Box<str>, u64)>,
    cache: HashMap<usize, Vec<Box<str>>>,
    order: VecDeque<usize>,
    cached_bytes: usize,
    budget: usize,
    /// The last value looked up per label name symbol: series arrive sorted, so
    /// consecutive series often repeat it (Prometheus keeps the same cache).
    last_by_name: HashMap<u32, (Box<str>, u32)>,
}

impl SampledSymbols {
    fn block(&mut self, b: usize) -> Result<&[Box<str>], BlockError> {
        if !self.cache.contains_key(&b) {
            let start = self.samples[b].1;
            let end = self.samples.get(b + 1).map_or(self.table_end, |s| s.1);
            let mut raw = vec![0u8; (end - start) as usize];
            self.reader
                .read_exact_at(&mut raw, start)
                .map_err(BlockError::io(&self.path))?;
            let mut syms = Vec::with_capacity(SYMBOL_BLOCK);
            let mut d = crate::varint::Decbuf::new(&raw);
            while d.remaining() > 0 {
                let s = d
                    .uvarint_str()
                    .ok_or_else(|| BlockError::corrupt("index", start, "symbol table read back"))?;
                syms.push(Box::<str>::from(s));
            }
            let bytes: usize = syms.iter().map(|s| s.len() + 16).sum();
            while self.cached_bytes + bytes > self.budget
                && let Some(old) = self.order.pop_front()
            {
                if let Some(v) = self.cache.remove(&old) {
                    self.cached_bytes -= v.iter().map(|s| s.len() + 16).sum::<usize>();
                }
            }
            self.cached_bytes += bytes;
            self.order.push_back(b);
            self.cache.insert(b, syms);
        }
        Ok(self.cache.get(&b).map(Vec::as_slice).unwrap_or_default())
    }

    fn lookup(&mut self, s: &str) -> Result<Option<u32>, BlockError> {
        // The block whose first symbol is the last one <= s.
        let b = self.samples.partition_point(|(first, _)| &**first <= s);
        if b == 0 {
            return Ok(None);
        }
        let block = self.block(b - 1)?;
        Ok(block
            .binary_search_by(|x| (**x).cmp(s))
            .ok()
            .map(|i| ((b - 1) * SYMBOL_BLOCK + i) as u32))
    }
}

impl SymbolTable {
    fn lookup(&mut self, s: &str) -> Result<u32, BlockError> {
        let found = match self {
            Self::InMemory(all) => all
                .binary_search_by(|x| (**x).cmp(s))
                .ok()
                .map(|i| i as u32),
            Self::Sampled(t) => t.lookup(s)?,
        };
        found.ok_or_else(|| BlockError::Invalid(format!("{s:?} is not in the symbol table")))
    }

    /// The symbol number of `value`, remembering it per label `name`.
    fn lookup_value(&mut self, name: u32, value: &str) -> Result<u32, BlockError> {
        if let Self::Sampled(t) = self
            && let Some((v, n)) = t.last_by_name.get(&name)
            && **v == *value
        {
            return Ok(*n);
        }
        let n = self.lookup(value)?;
        if let Self::Sampled(t) = self {
            t.last_by_name.insert(name, (value.into(), n));
        }
        Ok(n)
    }

    /// Appends symbol `i` as a uvarint-prefixed string to `out`.
    fn put(&mut self, i: u32, out: &mut Vec<u8>) -> Result<(), BlockError> {
        let missing = || BlockError::Invalid(format!("symbol {i} out of range"));
        match self {
            Self::InMemory(all) => {
                put_uvarint_str(out, all.get(i as usize).ok_or_else(missing)?);
            }
            Self::Sampled(t) => {
                if i >= t.count {
                    return Err(missing());
                }
                let i = i as usize;
                let block = t.block(i / SYMBOL_BLOCK)?;
                put_uvarint_str(out, block.get(i % SYMBOL_BLOCK).ok_or_else(missing)?);
            }
        }
        Ok(())
    }
}

/// Takes the series (in label order) and writes the rest of the index on finish.
pub struct IndexWriter {
    out: Output,
    symbols: SymbolTable,
    last_series: Option<Vec<(u32, u32)>>,
    /// `name symbol, value symbol, series ID` (big-endian, so byte order is the
    /// postings order).
    postings: Sorter,
    all_series: BufWriter<File>,
    all_series_path: PathBuf,
    series_count: u32,
    spill_dir: PathBuf,
    toc_series: u64,
    buf: Vec<u8>,
    syms: Vec<(u32, u32)>,
}

impl IndexWriter {
    /// Creates an index whose symbols are all in `symbols` (strictly ascending), with
    /// spill files beside the index file. For small indexes (tests).
    pub fn create(path: &Path, symbols: Vec<String>) -> Result<Self, BlockError> {
        let spill = path.with_extension("spill");
        let mut w = SymbolsWriter::create(path, &spill, DEFAULT_INDEX_MEMORY)?;
        for s in &symbols {
            w.add(s)?;
        }
        w.finish()
    }

    /// Checks that `labels` are sorted, known and sort after the previous series,
    /// leaving their symbol numbers in `self.syms`.
    fn check_next(&mut self, labels: &[(String, String)]) -> Result<(), BlockError> {
        self.syms.clear();
        for (i, (name, value)) in labels.iter().enumerate() {
            if i > 0 && labels[i - 1].0 >= *name {
                return Err(BlockError::Invalid(format!(
                    "labels not sorted/unique at {name:?}"
                )));
            }
            let n = self.symbols.lookup(name)?;
            let v = self.symbols.lookup_value(n, value)?;
            self.syms.push((n, v));
        }
        // Symbol numbers preserve string order, so comparing them compares label sets.
        if let Some(last) = &self.last_series
            && self.syms.as_slice() <= last.as_slice()
        {
            return Err(BlockError::Invalid(format!(
                "series {labels:?} is not after the previous one"
            )));
        }
        Ok(())
    }

    /// Adds the next series. Labels must be sorted by name with unique names, and the
    /// series must sort after the previous one; chunks must be in time order.
    pub fn add_series(
        &mut self,
        labels: &[(String, String)],
        chunks: &[ChunkRef],
    ) -> Result<u32, BlockError> {
        self.check_next(labels)?;
        let mut body = std::mem::take(&mut self.buf);
        body.clear();
        put_uvarint(&mut body, self.syms.len() as u64);
        for &(n, v) in &self.syms {
            put_uvarint(&mut body, n as u64);
            put_uvarint(&mut body, v as u64);
        }
        put_uvarint(&mut body, chunks.len() as u64);
        for (j, c) in chunks.iter().enumerate() {
            if c.max_time < c.min_time {
                return Err(BlockError::Invalid(format!(
                    "chunk {j} of {labels:?} ends before it starts"
                )));
            }
            if j == 0 {
                put_varint(&mut body, c.min_time);
                put_uvarint(&mut body, (c.max_time - c.min_time) as u64);
                put_uvarint(&mut body, c.reference);
            } else {
                let prev = chunks[j - 1];
                if c.min_time <= prev.max_time || c.reference <= prev.reference {
                    return Err(BlockError::Invalid(format!(
                        "chunks of {labels:?} overlap or go back"
                    )));
                }
                put_uvarint(&mut body, (c.min_time - prev.max_time) as u64);
                put_uvarint(&mut body, (c.max_time - c.min_time) as u64);
                put_varint(&mut body, c.reference as i64 - prev.reference as i64);
            }
        }
        self.out.pad(16)?;
        let id = u32::try_from(self.out.pos / 16)
            .map_err(|_| BlockError::Invalid("index exceeds 64 GiB".into()))?;
        let mut head = [0u8; 10];
        let head_len = {
            let mut v = Vec::with_capacity(10);
            put_uvarint(&mut v, body.len() as u64);
            head[..v.len()].copy_from_slice(&v);
            v.len()
        };
        self.out.write(&head[..head_len])?;
        self.out.write(&body)?;
        self.out.write(&crc32c::crc32c(&body).to_be_bytes())?;
        self.buf = body;

        let mut rec = [0u8; 12];
        rec[8..].copy_from_slice(&id.to_be_bytes());
        for &(n, v) in &self.syms {
            rec[..4].copy_from_slice(&n.to_be_bytes());
            rec[4..8].copy_from_slice(&v.to_be_bytes());
            self.postings.push(&rec)?;
        }
        self.all_series
            .write_all(&id.to_be_bytes())
            .map_err(BlockError::io(&self.all_series_path))?;
        self.series_count += 1;
        let syms = std::mem::take(&mut self.syms);
        match &mut self.last_series {
            Some(last) => {
                last.clear();
                last.extend_from_slice(&syms);
            }
            None => self.last_series = Some(syms.clone()),
        }
        self.syms = syms;
        Ok(id)
    }

    /// Bytes of postings spilled to disk so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.postings.spilled_bytes()
    }

    /// Writes label indices, postings, both offset tables and the TOC; returns the
    /// index size. Spill files are removed.
    pub fn finish(self) -> Result<u64, BlockError> {
        let spill_dir = self.spill_dir.clone();
        let r = self.finish_inner();
        let _ = std::fs::remove_dir_all(&spill_dir);
        r
    }

    fn finish_inner(self) -> Result<u64, BlockError> {
        let Self {
            mut out,
            mut symbols,
            postings,
            all_series,
            all_series_path,
            series_count,
            spill_dir,
            toc_series,
            ..
        } = self;
        let all_file = all_series
            .into_inner()
            .map_err(|e| BlockError::io(&all_series_path)(e.into_error()))?;
        drop(all_file);

        // Pass 1: label indices (one per name, values ascending) from the sorted
        // postings, which are copied into one run for pass 2.
        let toc_label_indices = out.pos;
        let merged_path = spill_dir.join("postings-merged.run");
        let mut merged = RunWriter::create(&merged_path).map_err(BlockError::io(&merged_path))?;
        let mut sorted = postings.into_sorted()?;
        let mut label_index_offsets: Vec<(u32, u64)> = Vec::new();
        let mut values: Vec<u32> = Vec::new();
        let mut current: Option<(u32, u32)> = None;
        let mut pairs = 0u32;
        let mut body = Vec::new();
        let mut write_label_index = |out: &mut Output, name: u32, values: &mut Vec<u32>| {
            out.pad(4)?;
            label_index_offsets.push((name, out.pos));
            body.clear();
            body.extend_from_slice(&1u32.to_be_bytes());
            put_u32_list(&mut body, values);
            out.write_section(&body)
        };
        while let Some(rec) = sorted.next_record()? {
            let (n, v, _) = posting(rec);
            merged.push(rec).map_err(BlockError::io(&merged_path))?;
            if current == Some((n, v)) {
                continue;
            }
            if let Some((cn, _)) = current
                && cn != n
            {
                write_label_index(&mut out, cn, &mut values)?;
            }
            values.push(v);
            current = Some((n, v));
            pairs += 1;
        }
        if let Some((cn, _)) = current {
            write_label_index(&mut out, cn, &mut values)?;
        }
        drop(sorted);
        merged.finish().map_err(BlockError::io(&merged_path))?;

        // Pass 2: postings; their offset table is staged in a spill file.
        let toc_postings = out.pos;
        out.pad(4)?;
        let table_path = spill_dir.join("postings-table");
        let mut table = BufWriter::with_capacity(
            256 << 10,
            File::create(&table_path).map_err(BlockError::io(&table_path))?,
        );
        let table_count = (pairs + 1).to_be_bytes();
        let mut table_crc = crc32c::crc32c(&table_count);
        let mut table_len = 4u64;
        let mut entry = Vec::with_capacity(64);
        let mut put_entry = |entry: &[u8]| -> Result<(), BlockError> {
            table_crc = crc32c::crc32c_append(table_crc, entry);
            table_len += entry.len() as u64;
            table.write_all(entry).map_err(BlockError::io(&table_path))
        };
        // The all-series list, under the empty label pair.
        entry.clear();
        put_uvarint(&mut entry, 2);
        put_uvarint_str(&mut entry, "");
        put_uvarint_str(&mut entry, "");
        put_uvarint(&mut entry, out.pos);
        put_entry(&entry)?;
        let len = 4 + 4 * series_count as u64;
        let len = u32::try_from(len).map_err(|_| section_too_big())?;
        out.write(&len.to_be_bytes())?;
        let mut crc = crc32c::crc32c(&series_count.to_be_bytes());
        out.write(&series_count.to_be_bytes())?;
        let mut ids = BufReader::with_capacity(
            256 << 10,
            File::open(&all_series_path).map_err(BlockError::io(&all_series_path))?,
        );
        let mut chunk = vec![0u8; 64 << 10];
        let mut left = 4 * series_count as usize;
        while left > 0 {
            let n = chunk.len().min(left);
            ids.read_exact(&mut chunk[..n])
                .map_err(BlockError::io(&all_series_path))?;
            crc = crc32c::crc32c_append(crc, &chunk[..n]);
            out.write(&chunk[..n])?;
            left -= n;
        }
        out.write(&crc.to_be_bytes())?;

        let mut merged =
            RunMerger::open(std::slice::from_ref(&merged_path)).map_err(BlockError::from)?;
        let mut ids: Vec<u32> = Vec::new();
        let mut current: Option<(u32, u32)> = None;
        let mut flush_pair = |out: &mut Output,
                              symbols: &mut SymbolTable,
                              (n, v): (u32, u32),
                              ids: &mut Vec<u32>|
         -> Result<(), BlockError> {
            entry.clear();
            put_uvarint(&mut entry, 2);
            symbols.put(n, &mut entry)?;
            symbols.put(v, &mut entry)?;
            put_uvarint(&mut entry, out.pos);
            put_entry(&entry)?;
            body.clear();
            put_u32_list(&mut body, ids);
            out.write_section(&body)
        };
        while let Some(rec) = merged.next_record()? {
            let (n, v, id) = posting(rec);
            if let Some(c) = current
                && c != (n, v)
            {
                flush_pair(&mut out, &mut symbols, c, &mut ids)?;
            }
            current = Some((n, v));
            ids.push(id);
        }
        if let Some(c) = current {
            flush_pair(&mut out, &mut symbols, c, &mut ids)?;
        }
        table.flush().map_err(BlockError::io(&table_path))?;
        drop(table);

        let toc_label_offset_table = out.pos;
        let mut body = (label_index_offsets.len() as u32).to_be_bytes().to_vec();
        for &(name, off) in &label_index_offsets {
            put_uvarint(&mut body, 1);
            symbols.put(name, &mut body)?;
            put_uvarint(&mut body, off);
        }
        out.write_section(&body)?;

        let toc_postings_table = out.pos;
        let table_len = u32::try_from(table_len).map_err(|_| section_too_big())?;
        out.write(&table_len.to_be_bytes())?;
        out.write(&table_count)?;
        let mut staged = BufReader::with_capacity(
            256 << 10,
            File::open(&table_path).map_err(BlockError::io(&table_path))?,
        );
        let mut left = table_len as usize - 4;
        while left > 0 {
            let n = chunk.len().min(left);
            staged
                .read_exact(&mut chunk[..n])
                .map_err(BlockError::io(&table_path))?;
            out.write(&chunk[..n])?;
            left -= n;
        }
        out.write(&table_crc.to_be_bytes())?;

        let mut toc = Vec::with_capacity(52);
        for v in [
            5,
            toc_series,
            toc_label_indices,
            toc_label_offset_table,
            toc_postings,
            toc_postings_table,
        ] {
            toc.extend_from_slice(&v.to_be_bytes());
        }
        let crc = crc32c::crc32c(&toc);
        toc.extend_from_slice(&crc.to_be_bytes());
        out.write(&toc)?;
        out.w.flush().map_err(BlockError::io(&out.path))?;
        out.w
            .get_ref()
            .sync_all()
            .map_err(BlockError::io(&out.path))?;
        Ok(out.pos)
    }
}

/// `count | values` (big-endian u32s): the body of a label index (after its `1`) or
/// of a postings list.
fn put_u32_list(body: &mut Vec<u8>, values: &mut Vec<u32>) {
    body.extend_from_slice(&(values.len() as u32).to_be_bytes());
    for v in values.drain(..) {
        body.extend_from_slice(&v.to_be_bytes());
    }
}

/// Splits a postings record into `(name, value, series)`.
fn posting(rec: &[u8]) -> (u32, u32, u32) {
    let word = |i: usize| {
        rec.get(i..i + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(u32::MAX, u32::from_be_bytes)
    };
    (word(0), word(4), word(8))
}
