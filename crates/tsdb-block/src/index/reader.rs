//! Index v2 reader: validates magic, TOC and every CRC it touches.

use super::{ChunkRef, MAGIC, TOC_LEN};
use crate::error::BlockError;
use crate::varint::Decbuf;

const FILE: &str = "index";

/// One decoded series entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesEntry {
    /// Series ID (offset / 16).
    pub id: u32,
    /// Labels, sorted by name.
    pub labels: Vec<(String, String)>,
    /// Chunk references in time order.
    pub chunks: Vec<ChunkRef>,
}

/// An index file held in memory.
#[derive(Debug)]
pub struct IndexReader {
    bytes: Vec<u8>,
    symbols: Vec<String>,
    /// `(name, value, offset of the postings list)` in table order.
    postings_table: Vec<(String, String, u64)>,
    toc: [u64; 6],
}

fn corrupt(offset: usize, reason: impl Into<String>) -> BlockError {
    BlockError::corrupt(FILE, offset as u64, reason)
}

impl IndexReader {
    /// Parses and validates an index file's bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, BlockError> {
        if bytes.len() < 5 + TOC_LEN || bytes[..4] != MAGIC.to_be_bytes() {
            return Err(corrupt(0, "bad index magic or file too short"));
        }
        if bytes[4] != 2 {
            return Err(corrupt(
                4,
                format!("unsupported index version {}", bytes[4]),
            ));
        }
        let toc_at = bytes.len() - TOC_LEN;
        let toc_bytes = &bytes[toc_at..];
        let crc = u32::from_be_bytes([toc_bytes[48], toc_bytes[49], toc_bytes[50], toc_bytes[51]]);
        if crc32c::crc32c(&toc_bytes[..48]) != crc {
            return Err(corrupt(toc_at, "TOC checksum mismatch"));
        }
        let mut toc = [0u64; 6];
        for (i, v) in toc.iter_mut().enumerate() {
            let mut a = [0u8; 8];
            a.copy_from_slice(&toc_bytes[i * 8..i * 8 + 8]);
            *v = u64::from_be_bytes(a);
            if *v as usize > toc_at {
                return Err(corrupt(
                    toc_at,
                    format!("TOC entry {i} points past the TOC"),
                ));
            }
        }
        let mut me = Self {
            bytes,
            symbols: Vec::new(),
            postings_table: Vec::new(),
            toc,
        };

        let (start, body) = me.section(toc[0] as usize, "symbol table")?;
        let mut d = Decbuf::new(body);
        let count = d
            .be32()
            .ok_or_else(|| corrupt(start, "symbol count missing"))?;
        let mut symbols = Vec::with_capacity((count as usize).min(body.len()));
        for i in 0..count {
            let s = d
                .uvarint_str()
                .ok_or_else(|| corrupt(start + d.pos, format!("symbol {i} malformed")))?;
            if symbols.last().is_some_and(|p: &String| p.as_str() >= s) {
                return Err(corrupt(start + d.pos, format!("symbol {i} out of order")));
            }
            symbols.push(s.to_owned());
        }
        me.symbols = symbols;

        let (start, body) = me.section(toc[5] as usize, "postings offset table")?;
        let mut d = Decbuf::new(body);
        let count = d
            .be32()
            .ok_or_else(|| corrupt(start, "postings table count missing"))?;
        let mut table = Vec::with_capacity((count as usize).min(body.len()));
        for i in 0..count {
            let bad = |d: &Decbuf<'_>| {
                corrupt(start + d.pos, format!("postings table entry {i} malformed"))
            };
            if d.uvarint() != Some(2) {
                return Err(bad(&d));
            }
            let n = d.uvarint_str().ok_or_else(|| bad(&d))?.to_owned();
            let v = d.uvarint_str().ok_or_else(|| bad(&d))?.to_owned();
            let off = d.uvarint().ok_or_else(|| bad(&d))?;
            table.push((n, v, off));
        }
        me.postings_table = table;
        Ok(me)
    }

    /// `len be32 | body | crc` at `at`; returns the body's offset and bytes.
    fn section(&self, at: usize, what: &str) -> Result<(usize, &[u8]), BlockError> {
        let mut d = Decbuf::new(&self.bytes);
        d.pos = at;
        let len = d
            .be32()
            .ok_or_else(|| corrupt(at, format!("{what}: length missing")))?
            as usize;
        let body = d
            .bytes(len)
            .ok_or_else(|| corrupt(at, format!("{what}: runs past the end")))?;
        let crc = d
            .be32()
            .ok_or_else(|| corrupt(at, format!("{what}: checksum missing")))?;
        if crc32c::crc32c(body) != crc {
            return Err(corrupt(at, format!("{what}: checksum mismatch")));
        }
        Ok((at + 4, body))
    }

    /// The symbol table.
    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }

    /// `(name, value, offset)` of every postings list, in table order (`("","")` first).
    pub fn postings_table(&self) -> &[(String, String, u64)] {
        &self.postings_table
    }

    /// The postings list at `offset`.
    pub fn postings_at(&self, offset: u64) -> Result<Vec<u32>, BlockError> {
        let (start, body) = self.section(offset as usize, "postings list")?;
        let mut d = Decbuf::new(body);
        let n = d
            .be32()
            .ok_or_else(|| corrupt(start, "postings count missing"))? as usize;
        if d.remaining() != n * 4 {
            return Err(corrupt(
                start,
                format!("postings list of {n} IDs has {} bytes", d.remaining()),
            ));
        }
        let ids: Vec<u32> = (0..n).filter_map(|_| d.be32()).collect();
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(corrupt(start, "postings not strictly ascending"));
        }
        Ok(ids)
    }

    /// IDs of all series (the `("","")` list).
    pub fn all_series_ids(&self) -> Result<Vec<u32>, BlockError> {
        match self.postings_table.first() {
            Some((n, v, off)) if n.is_empty() && v.is_empty() => self.postings_at(*off),
            _ => Err(corrupt(
                self.toc[5] as usize,
                "first postings entry is not the all-postings key",
            )),
        }
    }

    fn symbol(&self, i: u64, at: usize) -> Result<String, BlockError> {
        self.symbols
            .get(i as usize)
            .cloned()
            .ok_or_else(|| corrupt(at, format!("symbol reference {i} out of range")))
    }

    /// Decodes the series entry with ID `id`.
    pub fn series(&self, id: u32) -> Result<SeriesEntry, BlockError> {
        let at = id as usize * 16;
        let mut d = Decbuf::new(&self.bytes);
        d.pos = at;
        let bad = |reason: &str| corrupt(at, format!("series {id}: {reason}"));
        let len = d.uvarint().ok_or_else(|| bad("length malformed"))? as usize;
        let body = d.bytes(len).ok_or_else(|| bad("runs past the end"))?;
        let crc = d.be32().ok_or_else(|| bad("checksum missing"))?;
        if crc32c::crc32c(body) != crc {
            return Err(bad("checksum mismatch"));
        }
        let mut d = Decbuf::new(body);
        let nl = d.uvarint().ok_or_else(|| bad("label count"))?;
        let mut labels = Vec::with_capacity((nl as usize).min(body.len()));
        for _ in 0..nl {
            let n = d.uvarint().ok_or_else(|| bad("label name"))?;
            let v = d.uvarint().ok_or_else(|| bad("label value"))?;
            labels.push((self.symbol(n, at)?, self.symbol(v, at)?));
        }
        let nc = d.uvarint().ok_or_else(|| bad("chunk count"))?;
        let mut chunks = Vec::with_capacity((nc as usize).min(body.len()));
        let mut prev: Option<ChunkRef> = None;
        for _ in 0..nc {
            let c = match prev {
                None => {
                    let min = d.varint().ok_or_else(|| bad("chunk min time"))?;
                    let dur = d.uvarint().ok_or_else(|| bad("chunk duration"))?;
                    let r = d.uvarint().ok_or_else(|| bad("chunk ref"))?;
                    ChunkRef {
                        min_time: min,
                        max_time: min.wrapping_add(dur as i64),
                        reference: r,
                    }
                }
                Some(p) => {
                    let gap = d.uvarint().ok_or_else(|| bad("chunk gap"))?;
                    let dur = d.uvarint().ok_or_else(|| bad("chunk duration"))?;
                    let dr = d.varint().ok_or_else(|| bad("chunk ref delta"))?;
                    let min = p.max_time.wrapping_add(gap as i64);
                    ChunkRef {
                        min_time: min,
                        max_time: min.wrapping_add(dur as i64),
                        reference: p.reference.wrapping_add(dr as u64),
                    }
                }
            };
            chunks.push(c);
            prev = Some(c);
        }
        Ok(SeriesEntry { id, labels, chunks })
    }
}
