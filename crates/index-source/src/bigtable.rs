//! A live Cortex index in Google Cloud Bigtable, for every Bigtable index type
//! Cortex wrote (`gcp`, `gcp-columnkey`, `bigtable`, `bigtable-hashed`).
//!
//! A table is split into key ranges by SampleRowKeys (merged down to at most
//! [`BigtableIndexOptions::segments`]); each range is one [`SegmentInfo`] whose name
//! spells its boundaries, so a checkpoint only resumes the range it was taken in
//! (when the boundaries move, the scan's fingerprint changes and the table starts
//! over instead of missing rows). Pages are whole rows read with values stripped (the
//! scanner needs keys only), fetched ahead by one task per open range.
//!
//! Rows are told apart as Cortex's scanner does: `<16 hex>-<hash>` whose prefix is
//! the FNV-1a hash prefix of the rest is `bigtable-hashed`; a NUL past the first byte
//! is `gcp` (`hash \0 range`, one cell `f:c`); anything else is a column-key row
//! (`gcp-columnkey`/`bigtable`: the row key is the hash, each qualifier a range).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ::bigtable::{Client, KeyBound, Row};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::{
    Cursor, IndexRow, IndexSource, Page, PageChannelReader, SegmentInfo, SegmentReader,
    SourceError, TableInfo,
};

/// Index entries parsed from Bigtable rows (Cortex's metric name).
pub const PARSED_ENTRIES: &str = "cortex_blocksconvert_bigtable_parsed_index_entries_total";
/// Bigtable rows read (one row holds many entries in the column-key layouts).
pub const ROWS_READ: &str = "blocksconvert_bigtable_rows_read_total";
/// Cells that are not Cortex index entries (non-UTF-8 hash, `gcp` row without `f:c`).
pub const SKIPPED_CELLS: &str = "blocksconvert_bigtable_skipped_cells_total";

/// The one column family Cortex writes.
const FAMILY: &str = "f";

/// How tables are split and read.
#[derive(Debug, Clone)]
pub struct BigtableIndexOptions {
    /// Most key ranges per table.
    pub segments: usize,
    /// Rows per ReadRows page.
    pub page_rows: usize,
}

impl Default for BigtableIndexOptions {
    fn default() -> Self {
        Self {
            segments: 16,
            page_rows: 500,
        }
    }
}

/// A segment's `[start, end)`.
type KeyRange = (KeyBound, KeyBound);

/// The live Bigtable index source.
#[derive(Debug, Clone)]
pub struct BigtableSource {
    client: Client,
    opts: BigtableIndexOptions,
    runtime: tokio::runtime::Handle,
    /// Range boundaries per table, as handed out by [`IndexSource::segments`].
    ranges: Arc<Mutex<HashMap<String, Vec<KeyRange>>>>,
}

impl BigtableSource {
    /// Wraps a connected client (call from the runtime that will fetch pages).
    pub fn new(client: Client, opts: BigtableIndexOptions) -> Result<Self, SourceError> {
        if opts.segments == 0 || opts.page_rows == 0 {
            return Err(SourceError::Bigtable(
                ::bigtable::BigtableError::BadLocation {
                    location: client.url(),
                    reason: "segments and page rows must be at least 1".into(),
                },
            ));
        }
        Ok(Self {
            client,
            opts,
            runtime: tokio::runtime::Handle::current(),
            ranges: Arc::default(),
        })
    }
}

/// Cortex's `HashPrefix`: FNV-1a 64 of the hash value, its little-endian bytes in hex.
pub fn hash_prefix(hash: &[u8]) -> [u8; 16] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in hash {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut out = [0u8; 16];
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in h.to_le_bytes().iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
    out
}

/// The index entries of one Bigtable row, in Cortex's layouts; returns the number
/// of cells that are not entries.
pub fn entries_of_row(row: &Row, out: &mut Vec<IndexRow>) -> u64 {
    let key = row.key.as_ref();
    let mut skipped = 0;
    let hashed = key.len() > 17 && key[16] == b'-' && hash_prefix(&key[17..]) == key[..16];
    if hashed {
        return column_key_entries(&key[17..], row, out);
    }
    if let Some(nul) = key.iter().position(|b| *b == 0).filter(|&p| p > 0) {
        let Ok(hash) = std::str::from_utf8(&key[..nul]) else {
            return row.cells.len() as u64;
        };
        for cell in &row.cells {
            if cell.qualifier.as_ref() == b"c" {
                out.push(IndexRow {
                    hash: hash.to_owned(),
                    range: key[nul + 1..].to_vec(),
                });
            } else {
                skipped += 1;
            }
        }
        return skipped;
    }
    column_key_entries(key, row, out)
}

/// Cortex's Bigtable index layouts (the schema's `store:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `gcp`: row key `hash \0 range`, one cell `f:c`.
    Gcp,
    /// `gcp-columnkey` / `bigtable`: row key = hash, qualifier = range.
    ColumnKey,
    /// `bigtable-hashed`: row key = hash prefix `-` hash, qualifier = range.
    HashedColumnKey,
}

impl Layout {
    /// The layout of a schema `store:` value.
    pub fn from_store(store: &str) -> Option<Self> {
        match store {
            "gcp" => Some(Self::Gcp),
            "gcp-columnkey" | "bigtable" => Some(Self::ColumnKey),
            "bigtable-hashed" => Some(Self::HashedColumnKey),
            _ => None,
        }
    }

    /// Where Cortex writes an index entry: (row key, column qualifier) in family `f`.
    pub fn cell_for(self, hash: &str, range: &[u8]) -> (Vec<u8>, Vec<u8>) {
        match self {
            Self::Gcp => {
                let mut key = Vec::with_capacity(hash.len() + 1 + range.len());
                key.extend_from_slice(hash.as_bytes());
                key.push(0);
                key.extend_from_slice(range);
                (key, b"c".to_vec())
            }
            Self::ColumnKey => (hash.as_bytes().to_vec(), range.to_vec()),
            Self::HashedColumnKey => {
                let mut key = hash_prefix(hash.as_bytes()).to_vec();
                key.push(b'-');
                key.extend_from_slice(hash.as_bytes());
                (key, range.to_vec())
            }
        }
    }
}

fn column_key_entries(hash: &[u8], row: &Row, out: &mut Vec<IndexRow>) -> u64 {
    let Ok(hash) = std::str::from_utf8(hash) else {
        return row.cells.len() as u64;
    };
    for cell in &row.cells {
        out.push(IndexRow {
            hash: hash.to_owned(),
            range: cell.qualifier.to_vec(),
        });
    }
    0
}

/// Picks at most `max - 1` of the sampled split keys, evenly spread.
fn split_points(samples: Vec<Bytes>, max: usize) -> Vec<Bytes> {
    let want = max.saturating_sub(1);
    if samples.len() <= want {
        return samples;
    }
    (1..=want)
        .map(|i| samples[i * samples.len() / (want + 1)].clone())
        .collect()
}

/// A range bound in a segment name: hex of the key, empty when unbounded.
fn show_key(k: &KeyBound) -> String {
    match k {
        KeyBound::Unbounded => String::new(),
        KeyBound::Key(k) | KeyBound::After(k) => hex::encode(k),
    }
}

fn parse_key(hex_key: &str) -> Option<KeyBound> {
    if hex_key.is_empty() {
        return Some(KeyBound::Unbounded);
    }
    hex::decode(hex_key)
        .ok()
        .map(|k| KeyBound::Key(Bytes::from(k)))
}

/// `<table> range <i>/<n> [<hex start>, <hex end>)`: the name spells the bounds so a
/// checkpoint can be resumed in exactly its range.
fn segment_name(table: &str, index: usize, n: usize, start: &KeyBound, end: &KeyBound) -> String {
    format!(
        "{table} range {}/{n} [{}, {})",
        index + 1,
        show_key(start),
        show_key(end)
    )
}

/// The bounds spelled in a [`segment_name`].
fn parse_segment_name(table: &str, name: &str) -> Option<(KeyBound, KeyBound)> {
    let rest = name.strip_prefix(table)?.strip_prefix(" range ")?;
    let (_, bounds) = rest.split_once(" [")?;
    let (start, end) = bounds.strip_suffix(')')?.split_once(", ")?;
    Some((parse_key(start)?, parse_key(end)?))
}

#[async_trait::async_trait]
impl IndexSource for BigtableSource {
    fn index_stores(&self) -> &'static [&'static str] {
        crate::BIGTABLE_STORES
    }

    fn describe(&self) -> String {
        format!("{} ({})", self.client.url(), self.client.endpoint())
    }

    async fn tables(&self) -> Result<Vec<TableInfo>, SourceError> {
        Ok(self
            .client
            .list_tables()
            .await?
            .into_iter()
            .map(|name| TableInfo {
                name,
                approx_items: None,
            })
            .collect())
    }

    async fn segments(&self, table: &str) -> Result<Vec<SegmentInfo>, SourceError> {
        let splits = split_points(
            self.client.sample_row_keys(table).await?,
            self.opts.segments,
        );
        let mut bounds = Vec::with_capacity(splits.len() + 1);
        let mut start = KeyBound::Unbounded;
        for s in splits {
            let end = KeyBound::Key(s);
            bounds.push((start, end.clone()));
            start = end;
        }
        bounds.push((start, KeyBound::Unbounded));
        let n = bounds.len();
        let infos = bounds
            .iter()
            .enumerate()
            .map(|(index, (s, e))| SegmentInfo {
                index,
                name: segment_name(table, index, n, s, e),
                approx_items: None,
            })
            .collect();
        self.ranges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(table.to_owned(), bounds);
        Ok(infos)
    }

    fn resume_segments(&self, table: &str, names: &[String]) -> Option<Vec<SegmentInfo>> {
        let bounds: Vec<(KeyBound, KeyBound)> = names
            .iter()
            .map(|n| parse_segment_name(table, n))
            .collect::<Option<_>>()?;
        // Only a split that covers the whole key space, in order, without gaps.
        let covers = bounds.first().is_some_and(|b| b.0 == KeyBound::Unbounded)
            && bounds.last().is_some_and(|b| b.1 == KeyBound::Unbounded)
            && bounds.windows(2).all(|w| w[0].1 == w[1].0);
        if !covers {
            return None;
        }
        let infos = names
            .iter()
            .enumerate()
            .map(|(index, name)| SegmentInfo {
                index,
                name: name.clone(),
                approx_items: None,
            })
            .collect();
        self.ranges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(table.to_owned(), bounds);
        Some(infos)
    }

    fn open_segment(
        &self,
        table: &str,
        segment: &SegmentInfo,
        cursor: &Cursor,
    ) -> Result<Box<dyn SegmentReader>, SourceError> {
        let bounds = self
            .ranges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(table)
            .and_then(|b| b.get(segment.index).cloned());
        let Some((start, end)) = bounds else {
            return Err(SourceError::BadCursor {
                segment: segment.name.clone(),
                cursor: cursor.clone(),
            });
        };
        let start = match cursor {
            Cursor::Start => start,
            Cursor::RowKey { after } => KeyBound::After(Bytes::from(after.clone())),
            Cursor::End => {
                return Ok(Box::new(PageChannelReader::new(
                    None,
                    stopped(&segment.name),
                )));
            }
            Cursor::Items(_) | Cursor::DynamoKey { .. } => {
                return Err(SourceError::BadCursor {
                    segment: segment.name.clone(),
                    cursor: cursor.clone(),
                });
            }
        };
        let (tx, rx) = mpsc::channel(2);
        let client = self.client.clone();
        let table = table.to_owned();
        let page_rows = self.opts.page_rows;
        self.runtime.spawn(async move {
            let mut start = start;
            loop {
                let rows = match client
                    .read_range(&table, &start, &end, FAMILY, true, page_rows)
                    .await
                {
                    Ok(rows) => rows,
                    Err(e) => {
                        let _ = tx.send(Err(SourceError::from(e))).await;
                        return;
                    }
                };
                let last = rows.len() < page_rows;
                let mut entries = Vec::with_capacity(rows.len() * 4);
                let mut skipped = 0;
                for row in &rows {
                    skipped += entries_of_row(row, &mut entries);
                }
                metrics::counter!(ROWS_READ).increment(rows.len() as u64);
                metrics::counter!(PARSED_ENTRIES).increment(entries.len() as u64);
                if skipped > 0 {
                    metrics::counter!(SKIPPED_CELLS).increment(skipped);
                    tracing::warn!(table = %table, cells = skipped, "Bigtable cells that are not Cortex index entries skipped");
                }
                let cursor = match rows.last() {
                    _ if last => Cursor::End,
                    Some(row) => {
                        start = KeyBound::After(row.key.clone());
                        Cursor::RowKey {
                            after: row.key.to_vec(),
                        }
                    }
                    None => Cursor::End,
                };
                let page = Page {
                    rows: entries,
                    cursor,
                    consumed_capacity: 0.0,
                };
                if tx.send(Ok(page)).await.is_err() || last {
                    return;
                }
            }
        });
        Ok(Box::new(PageChannelReader::new(
            Some(rx),
            stopped(&segment.name),
        )))
    }
}

/// The error of a page task that stopped before the range's last page.
fn stopped(segment: &str) -> SourceError {
    SourceError::Corrupt {
        file: segment.to_owned(),
        reason: "the page fetch task stopped before the last page".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::bigtable::Cell;

    fn row(key: &[u8], qualifiers: &[&[u8]]) -> Row {
        Row {
            key: Bytes::copy_from_slice(key),
            cells: qualifiers
                .iter()
                .map(|q| Cell {
                    family: "f".into(),
                    qualifier: Bytes::copy_from_slice(q),
                    timestamp_micros: 0,
                    value: Bytes::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn cortex_hash_prefixes() {
        // The two examples of the Bigtable fixtures' README.
        assert_eq!(
            &hash_prefix(b"42:d18584:+6n8sLfjeK7qDz1bYHu8FINQ6Yx6HIc15toEdCuWHj0"),
            b"7cadad189649453f"
        );
        assert_eq!(
            &hash_prefix(b"42:d18584:go_gc_duration_seconds:instance"),
            b"98b8487fd987e3d9"
        );
    }

    #[test]
    fn every_layout() {
        let mut out = Vec::new();
        // gcp: hash \0 range, qualifier c; ranges hold NULs themselves.
        assert_eq!(entries_of_row(&row(b"h1\0r\0x\0", &[b"c"]), &mut out), 0);
        assert_eq!(
            out.pop(),
            Some(IndexRow {
                hash: "h1".into(),
                range: b"r\0x\0".to_vec()
            })
        );
        // gcp with another qualifier: not an entry.
        assert_eq!(entries_of_row(&row(b"h1\0r", &[b"x"]), &mut out), 1);
        assert!(out.is_empty());
        // column key.
        entries_of_row(&row(b"h2", &[b"a\0", b"b\0"]), &mut out);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|r| r.hash == "h2"));
        out.clear();
        // hashed column key.
        let mut key = hash_prefix(b"h3").to_vec();
        key.push(b'-');
        key.extend_from_slice(b"h3");
        entries_of_row(&row(&key, &[b"q\0"]), &mut out);
        assert_eq!(
            out,
            vec![IndexRow {
                hash: "h3".into(),
                range: b"q\0".to_vec()
            }]
        );
        out.clear();
        // A 16-character prefix that is not the hash's stays part of the hash.
        let key = b"0000000000000000-h3";
        entries_of_row(&row(key, &[b"q"]), &mut out);
        assert_eq!(out[0].hash, "0000000000000000-h3");
    }

    #[test]
    fn layouts_round_trip() {
        for layout in [Layout::Gcp, Layout::ColumnKey, Layout::HashedColumnKey] {
            let (key, qualifier) = layout.cell_for("42:d18584:abc", b"r\0x\0");
            let mut out = Vec::new();
            assert_eq!(entries_of_row(&row(&key, &[&qualifier]), &mut out), 0);
            assert_eq!(
                out,
                vec![IndexRow {
                    hash: "42:d18584:abc".into(),
                    range: b"r\0x\0".to_vec()
                }],
                "{layout:?}"
            );
        }
    }

    #[test]
    fn segment_names_spell_their_bounds() {
        let a = KeyBound::Key(Bytes::from_static(b"a\0b"));
        let name = segment_name("t", 0, 2, &KeyBound::Unbounded, &a);
        assert_eq!(
            parse_segment_name("t", &name),
            Some((KeyBound::Unbounded, a.clone()))
        );
        let name = segment_name("t", 1, 2, &a, &KeyBound::Unbounded);
        assert_eq!(
            parse_segment_name("t", &name),
            Some((a, KeyBound::Unbounded))
        );
        assert_eq!(parse_segment_name("u", &name), None);
    }

    #[test]
    fn split_points_are_spread() {
        let samples: Vec<Bytes> = (0..10u8).map(|i| Bytes::from(vec![i])).collect();
        assert_eq!(split_points(samples.clone(), 20).len(), 10);
        let picked = split_points(samples, 4);
        assert_eq!(picked.len(), 3);
        assert!(picked.windows(2).all(|w| w[0] < w[1]));
    }
}
