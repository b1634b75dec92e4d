//! Streaming index writer (Prometheus v2.37 "Layout A").
//!
//! Symbols are given up front (sorted); series are added in label order and written
//! immediately; only the postings (4 bytes per label per series) stay in memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{ChunkRef, MAGIC};
use crate::error::BlockError;
use crate::varint::{put_uvarint, put_uvarint_str, put_varint};

/// Writes one index file.
pub struct IndexWriter {
    path: PathBuf,
    w: BufWriter<File>,
    pos: u64,
    symbols: Vec<String>,
    last_series: Option<Vec<(u32, u32)>>,
    /// `(name symbol, value symbol)` -> series IDs, ascending.
    postings: BTreeMap<(u32, u32), Vec<u32>>,
    all_series: Vec<u32>,
    toc_series: u64,
    buf: Vec<u8>,
}

impl IndexWriter {
    /// Creates the file and writes the header and the symbol table.
    /// `symbols` must be strictly ascending and hold every label name and value.
    pub fn create(path: &Path, symbols: Vec<String>) -> Result<Self, BlockError> {
        if let Some(w) = symbols.windows(2).find(|w| w[0] >= w[1]) {
            return Err(BlockError::Invalid(format!(
                "symbols not strictly ascending: {:?} then {:?}",
                w[0], w[1]
            )));
        }
        let file = File::create(path).map_err(BlockError::io(path))?;
        let mut me = Self {
            path: path.to_owned(),
            w: BufWriter::with_capacity(1 << 20, file),
            pos: 0,
            symbols,
            last_series: None,
            postings: BTreeMap::new(),
            all_series: Vec::new(),
            toc_series: 0,
            buf: Vec::with_capacity(1024),
        };
        let mut header = MAGIC.to_be_bytes().to_vec();
        header.push(2);
        me.write(&header)?;
        let mut body = (me.symbols.len() as u32).to_be_bytes().to_vec();
        for s in &me.symbols {
            put_uvarint_str(&mut body, s);
        }
        me.write_section(&body)?;
        me.toc_series = me.pos;
        Ok(me)
    }

    fn write(&mut self, b: &[u8]) -> Result<(), BlockError> {
        self.w.write_all(b).map_err(BlockError::io(&self.path))?;
        self.pos += b.len() as u64;
        Ok(())
    }

    /// `len be32 | body | CRC32C(body)`.
    fn write_section(&mut self, body: &[u8]) -> Result<(), BlockError> {
        let len = u32::try_from(body.len())
            .map_err(|_| BlockError::Invalid("index section exceeds 4 GiB".into()))?;
        self.write(&len.to_be_bytes())?;
        self.write(body)?;
        self.write(&crc32c::crc32c(body).to_be_bytes())
    }

    fn pad(&mut self, align: u64) -> Result<(), BlockError> {
        let n = (align - self.pos % align) % align;
        self.write(&[0u8; 16][..n as usize])
    }

    fn symbol(&self, s: &str) -> Result<u32, BlockError> {
        self.symbols
            .binary_search_by(|x| x.as_str().cmp(s))
            .map(|i| i as u32)
            .map_err(|_| BlockError::Invalid(format!("{s:?} is not in the symbol table")))
    }

    /// Checks that `labels` are sorted, known and sort after the previous series,
    /// returning their symbol numbers. Call before writing anything for the series.
    pub fn check_next(&self, labels: &[(String, String)]) -> Result<Vec<(u32, u32)>, BlockError> {
        let mut syms = Vec::with_capacity(labels.len());
        for (i, (name, value)) in labels.iter().enumerate() {
            if i > 0 && labels[i - 1].0 >= *name {
                return Err(BlockError::Invalid(format!(
                    "labels not sorted/unique at {name:?}"
                )));
            }
            syms.push((self.symbol(name)?, self.symbol(value)?));
        }
        // Symbol numbers preserve string order, so comparing them compares label sets.
        if let Some(last) = &self.last_series
            && syms.as_slice() <= last.as_slice()
        {
            return Err(BlockError::Invalid(format!(
                "series {labels:?} is not after the previous one"
            )));
        }
        Ok(syms)
    }

    /// Adds the next series. Labels must be sorted by name with unique names, and the
    /// series must sort after the previous one; chunks must be in time order.
    pub fn add_series(
        &mut self,
        labels: &[(String, String)],
        chunks: &[ChunkRef],
    ) -> Result<u32, BlockError> {
        let syms = self.check_next(labels)?;
        self.pad(16)?;
        let id = u32::try_from(self.pos / 16)
            .map_err(|_| BlockError::Invalid("index exceeds 64 GiB".into()))?;

        let mut body = std::mem::take(&mut self.buf);
        body.clear();
        put_uvarint(&mut body, syms.len() as u64);
        for &(n, v) in &syms {
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
        let mut head = Vec::with_capacity(10);
        put_uvarint(&mut head, body.len() as u64);
        self.write(&head)?;
        self.write(&body)?;
        self.write(&crc32c::crc32c(&body).to_be_bytes())?;
        self.buf = body;

        for &pair in &syms {
            self.postings.entry(pair).or_default().push(id);
        }
        self.all_series.push(id);
        self.last_series = Some(syms);
        Ok(id)
    }

    /// Writes label indices, postings, both offset tables and the TOC.
    pub fn finish(mut self) -> Result<u64, BlockError> {
        let toc_label_indices = self.pos;
        // Label index sections: one per name, values ascending.
        let mut by_name: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for &(n, v) in self.postings.keys() {
            by_name.entry(n).or_default().push(v);
        }
        let mut label_index_offsets = Vec::with_capacity(by_name.len());
        for (name, values) in &by_name {
            self.pad(4)?;
            label_index_offsets.push((*name, self.pos));
            let mut body = Vec::with_capacity(8 + 4 * values.len());
            body.extend_from_slice(&1u32.to_be_bytes());
            body.extend_from_slice(&(values.len() as u32).to_be_bytes());
            for v in values {
                body.extend_from_slice(&v.to_be_bytes());
            }
            self.write_section(&body)?;
        }
        let toc_postings = self.pos;
        self.pad(4)?;
        let mut postings_offsets = Vec::with_capacity(self.postings.len() + 1);
        postings_offsets.push((None, self.pos));
        let all = std::mem::take(&mut self.all_series);
        self.write_postings(&all)?;
        let postings = std::mem::take(&mut self.postings);
        for (pair, ids) in &postings {
            postings_offsets.push((Some(*pair), self.pos));
            self.write_postings(ids)?;
        }

        let toc_label_offset_table = self.pos;
        let mut body = (label_index_offsets.len() as u32).to_be_bytes().to_vec();
        for (name, off) in &label_index_offsets {
            put_uvarint(&mut body, 1);
            put_uvarint_str(&mut body, &self.symbols[*name as usize]);
            put_uvarint(&mut body, *off);
        }
        self.write_section(&body)?;

        let toc_postings_table = self.pos;
        let mut body = (postings_offsets.len() as u32).to_be_bytes().to_vec();
        for (pair, off) in &postings_offsets {
            put_uvarint(&mut body, 2);
            let (n, v) = match pair {
                Some((n, v)) => (
                    self.symbols[*n as usize].as_str(),
                    self.symbols[*v as usize].as_str(),
                ),
                None => ("", ""),
            };
            put_uvarint_str(&mut body, n);
            put_uvarint_str(&mut body, v);
            put_uvarint(&mut body, *off);
        }
        self.write_section(&body)?;

        let mut toc = Vec::with_capacity(52);
        for v in [
            5,
            self.toc_series,
            toc_label_indices,
            toc_label_offset_table,
            toc_postings,
            toc_postings_table,
        ] {
            toc.extend_from_slice(&v.to_be_bytes());
        }
        let crc = crc32c::crc32c(&toc);
        toc.extend_from_slice(&crc.to_be_bytes());
        self.write(&toc)?;
        self.w.flush().map_err(BlockError::io(&self.path))?;
        self.w
            .get_ref()
            .sync_all()
            .map_err(BlockError::io(&self.path))?;
        Ok(self.pos)
    }

    fn write_postings(&mut self, ids: &[u32]) -> Result<(), BlockError> {
        let mut body = Vec::with_capacity(4 + 4 * ids.len());
        body.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        for id in ids {
            body.extend_from_slice(&id.to_be_bytes());
        }
        self.write_section(&body)
    }
}
