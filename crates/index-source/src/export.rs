//! DynamoDB exports (`DYNAMODB_JSON`, gzip data files) as an index source.
//!
//! The location may hold one or more exports at any depth:
//! `…/AWSDynamoDB/<export-id>/{manifest-summary.json, manifest-files.json, data/*.json.gz}`.
//! Each data file is one segment. A file is verified against its manifest entry (MD5 of
//! the compressed bytes, item count) as it is read; a mismatch is [`SourceError::Corrupt`].
//! Remote files are streamed to a local download directory first (bounded memory) and
//! deleted once read; local exports are read in place.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cortex_index::dynamo_export::{
    DataFileEntry, ExportSummary, parse_item_keys, parse_manifest_files, parse_summary,
};
use flate2::read::MultiGzDecoder;
use md5::{Digest, Md5};
use storage::StoreLocation;

use crate::{
    Cursor, IndexRow, IndexSource, Page, SegmentInfo, SegmentReader, SourceError, TableInfo,
};

const SUMMARY: &str = "manifest-summary.json";
const MANIFEST: &str = "manifest-files.json";
const PAGE_ROWS: usize = 4096;

/// One export found at the location.
#[derive(Debug, Clone)]
struct ExportDir {
    /// Directory relative to the location (`…/AWSDynamoDB/<id>`).
    dir: String,
    summary: ExportSummary,
    files: Vec<DataFileEntry>,
}

/// Every export below a location, one table each.
#[derive(Debug)]
pub struct ExportSource {
    location: StoreLocation,
    exports: Vec<ExportDir>,
    download_dir: PathBuf,
    runtime: tokio::runtime::Handle,
}

impl ExportSource {
    /// Finds and validates the exports below `location`; remote data files are
    /// downloaded into `download_dir` while read. Two exports of one table are an error
    /// (which one is meant is the operator's call).
    pub async fn open(location: StoreLocation, download_dir: &Path) -> Result<Self, SourceError> {
        let mut exports: Vec<ExportDir> = Vec::new();
        let mut keys: Vec<String> = location
            .list("")
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k == SUMMARY || k.ends_with(&format!("/{SUMMARY}")))
            .collect();
        keys.sort();
        for key in keys {
            let dir = key
                .strip_suffix(SUMMARY)
                .unwrap_or("")
                .trim_end_matches('/')
                .to_owned();
            let bad = |reason: String| SourceError::Export {
                location: location.describe(&dir),
                reason,
            };
            let summary = parse_summary(&location.get(&key).await?).map_err(&bad)?;
            if summary.output_format != "DYNAMODB_JSON" {
                return Err(bad(format!(
                    "output format {} is not supported (export with DYNAMODB_JSON)",
                    summary.output_format
                )));
            }
            let manifest = join(&dir, MANIFEST);
            let text = location.get(&manifest).await?;
            let text = std::str::from_utf8(&text).map_err(|e| bad(format!("{MANIFEST}: {e}")))?;
            let files = parse_manifest_files(text).map_err(|e| bad(format!("{MANIFEST}: {e}")))?;
            let listed: u64 = files.iter().map(|f| f.item_count).sum();
            if listed != summary.item_count {
                return Err(bad(format!(
                    "{MANIFEST} lists {listed} items, {SUMMARY} says {}",
                    summary.item_count
                )));
            }
            if let Some(other) = exports.iter().find(|e| e.summary.table == summary.table) {
                return Err(bad(format!(
                    "a second export of table {} (the other is {}); point the scanner at one",
                    summary.table,
                    location.describe(&other.dir)
                )));
            }
            exports.push(ExportDir {
                dir,
                summary,
                files,
            });
        }
        if exports.is_empty() {
            return Err(SourceError::Export {
                location: location.describe(""),
                reason: format!("no {SUMMARY} found (not a DynamoDB export?)"),
            });
        }
        Ok(Self {
            location,
            exports,
            download_dir: download_dir.to_owned(),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    fn export(&self, table: &str) -> Result<&ExportDir, SourceError> {
        self.exports
            .iter()
            .find(|e| e.summary.table == table)
            .ok_or_else(|| SourceError::Export {
                location: self.location.describe(""),
                reason: format!("no export of table {table}"),
            })
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

#[async_trait::async_trait]
impl IndexSource for ExportSource {
    fn index_stores(&self) -> &'static [&'static str] {
        crate::DYNAMO_STORES
    }

    fn describe(&self) -> String {
        self.location.describe("")
    }

    async fn tables(&self) -> Result<Vec<TableInfo>, SourceError> {
        Ok(self
            .exports
            .iter()
            .map(|e| TableInfo {
                name: e.summary.table.clone(),
                approx_items: Some(e.summary.item_count),
            })
            .collect())
    }

    async fn segments(&self, table: &str) -> Result<Vec<SegmentInfo>, SourceError> {
        let export = self.export(table)?;
        Ok(export
            .files
            .iter()
            .enumerate()
            .map(|(index, f)| SegmentInfo {
                index,
                name: self
                    .location
                    .describe(&join(&export.dir, f.key_in_export())),
                approx_items: Some(f.item_count),
            })
            .collect())
    }

    fn open_segment(
        &self,
        table: &str,
        segment: &SegmentInfo,
        cursor: &Cursor,
    ) -> Result<Box<dyn SegmentReader>, SourceError> {
        let export = self.export(table)?;
        let entry = export
            .files
            .get(segment.index)
            .ok_or_else(|| SourceError::Export {
                location: self.location.describe(&export.dir),
                reason: format!("no data file #{}", segment.index),
            })?;
        let skip = match cursor {
            Cursor::Start => 0,
            Cursor::Items(n) => *n,
            Cursor::End => entry.item_count,
            Cursor::DynamoKey { .. } | Cursor::RowKey { .. } => {
                return Err(SourceError::BadCursor {
                    segment: segment.name.clone(),
                    cursor: cursor.clone(),
                });
            }
        };
        let rel = join(&export.dir, entry.key_in_export());
        let (path, temp) = match self.location.local_root() {
            Some(root) => (root.join(&rel), None),
            None => {
                std::fs::create_dir_all(&self.download_dir).map_err(|source| SourceError::Io {
                    path: self.download_dir.display().to_string(),
                    source,
                })?;
                let path = self
                    .download_dir
                    .join(format!("{table}-{}.json.gz", segment.index));
                self.runtime
                    .block_on(self.location.download_to(&rel, &path))?;
                (path.clone(), Some(path))
            }
        };
        let file = File::open(&path).map_err(|source| SourceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut reader = ExportFileReader {
            name: segment.name.clone(),
            lines: BufReader::with_capacity(
                256 << 10,
                MultiGzDecoder::new(HashingReader {
                    inner: file,
                    md5: Md5::new(),
                }),
            ),
            entry: entry.clone(),
            consumed: 0,
            line_no: 0,
            line: String::new(),
            range: Vec::new(),
            finished: false,
            temp,
        };
        reader.skip(skip)?;
        Ok(Box::new(reader))
    }
}

/// Hashes the compressed bytes as the decoder pulls them.
struct HashingReader {
    inner: File,
    md5: Md5,
}

impl Read for HashingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.md5.update(&buf[..n]);
        Ok(n)
    }
}

/// Longest export line accepted: a DynamoDB item is at most 400 KB, a few times that
/// as DynamoDB JSON with base64 binaries.
pub const MAX_EXPORT_LINE: usize = 4 << 20;

struct ExportFileReader {
    name: String,
    lines: BufReader<MultiGzDecoder<HashingReader>>,
    entry: DataFileEntry,
    consumed: u64,
    line_no: u64,
    line: String,
    range: Vec<u8>,
    finished: bool,
    temp: Option<PathBuf>,
}

impl Drop for ExportFileReader {
    fn drop(&mut self) {
        if let Some(t) = &self.temp {
            let _ = std::fs::remove_file(t);
        }
    }
}

impl ExportFileReader {
    fn corrupt(&self, reason: String) -> SourceError {
        SourceError::Corrupt {
            file: self.name.clone(),
            reason,
        }
    }

    /// Reads the next non-empty line into `self.line`; false at the end of the data.
    /// A line longer than [`MAX_EXPORT_LINE`] is an error naming the file and line, read
    /// no further than the limit.
    fn read_line(&mut self) -> Result<bool, SourceError> {
        loop {
            self.line.clear();
            let n = (&mut self.lines)
                .take(MAX_EXPORT_LINE as u64 + 1)
                .read_line(&mut self.line)
                .map_err(|e| self.corrupt(format!("after line {}: {e}", self.line_no)))?;
            if n == 0 {
                return Ok(false);
            }
            self.line_no += 1;
            if n > MAX_EXPORT_LINE {
                return Err(self.corrupt(format!(
                    "line {} is longer than {} MiB (a DynamoDB item is at most 400 KB); the export is damaged",
                    self.line_no,
                    MAX_EXPORT_LINE >> 20
                )));
            }
            if !self.line.trim().is_empty() {
                return Ok(true);
            }
        }
    }

    fn skip(&mut self, items: u64) -> Result<(), SourceError> {
        while self.consumed < items {
            if !self.read_line()? {
                return Err(self.corrupt(format!(
                    "checkpoint says {items} items were read, the file has {}",
                    self.consumed
                )));
            }
            self.consumed += 1;
        }
        Ok(())
    }

    /// At the end of the data: drain the compressed stream and compare with the manifest.
    fn verify_end(&mut self) -> Result<(), SourceError> {
        let hashing = self.lines.get_mut().get_mut();
        let drained = std::io::copy(hashing, &mut std::io::sink());
        let md5 = STANDARD.encode(hashing.md5.clone().finalize());
        drained.map_err(|e| self.corrupt(format!("reading the tail: {e}")))?;
        if md5 != self.entry.md5_checksum {
            return Err(self.corrupt(format!(
                "MD5 {md5} differs from the manifest's {}",
                self.entry.md5_checksum
            )));
        }
        if self.consumed != self.entry.item_count {
            return Err(self.corrupt(format!(
                "{} items, the manifest says {}",
                self.consumed, self.entry.item_count
            )));
        }
        Ok(())
    }
}

impl SegmentReader for ExportFileReader {
    fn next_page(&mut self) -> Result<Option<Page>, SourceError> {
        if self.finished {
            return Ok(None);
        }
        let mut rows = Vec::with_capacity(PAGE_ROWS);
        while rows.len() < PAGE_ROWS {
            if !self.read_line()? {
                self.verify_end()?;
                self.finished = true;
                break;
            }
            let hash = parse_item_keys(&self.line, &mut self.range)
                .map_err(|e| SourceError::Corrupt {
                    file: self.name.clone(),
                    reason: format!("line {}: {e}", self.line_no),
                })?
                .into_owned();
            rows.push(IndexRow {
                hash,
                range: self.range.clone(),
            });
            self.consumed += 1;
        }
        if rows.is_empty() && self.finished {
            return Ok(Some(Page {
                rows,
                cursor: Cursor::End,
                consumed_capacity: 0.0,
            }));
        }
        Ok(Some(Page {
            rows,
            cursor: if self.finished {
                Cursor::End
            } else {
                Cursor::Items(self.consumed)
            },
            consumed_capacity: 0.0,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cortex_index::dynamo_export::ExportWriter;

    fn write_export(root: &Path, rows: u8) {
        let mut w = ExportWriter::create(root, "idx_1", "0001-a", 2).expect("create");
        for i in 0..rows {
            w.write(&format!("u:d1:s{i}"), &[b'x', i, 0, b'3', 0], Some(b"-"))
                .expect("write");
        }
        w.finish().expect("finish");
    }

    /// The export's (only) data file.
    fn first_data_file(root: &Path) -> PathBuf {
        std::fs::read_dir(root.join("idx_1/AWSDynamoDB/0001-a/data"))
            .expect("ls")
            .next()
            .expect("file")
            .expect("entry")
            .path()
    }

    /// Reads every segment of `idx_1` to its end, on a blocking thread.
    async fn read_to_end(src: ExportSource) -> Result<(), SourceError> {
        tokio::task::spawn_blocking(move || {
            let segs = tokio::runtime::Handle::current()
                .block_on(src.segments("idx_1"))
                .expect("segments");
            for s in &segs {
                let mut r = src.open_segment("idx_1", s, &Cursor::Start)?;
                while r.next_page()?.is_some() {}
            }
            Ok(())
        })
        .await
        .expect("join")
    }

    async fn read_all(src: &ExportSource, cursor: Cursor) -> Vec<IndexRow> {
        let segs = src.segments("idx_1").await.expect("segments");
        let mut out = Vec::new();
        for s in &segs {
            let mut r = src.open_segment("idx_1", s, &cursor).expect("open");
            while let Some(p) = r.next_page().expect("page") {
                out.extend(p.rows);
            }
        }
        out
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn reads_every_item_and_resumes_from_a_cursor() {
        let dir = tempfile::tempdir().expect("tmp");
        write_export(dir.path(), 10);
        let loc = StoreLocation::local(dir.path(), false).expect("loc");
        let src = ExportSource::open(loc, &dir.path().join("dl"))
            .await
            .expect("open");
        let tables = src.tables().await.expect("tables");
        assert_eq!(tables[0].name, "idx_1");
        assert_eq!(tables[0].approx_items, Some(10));
        let src = std::sync::Arc::new(src);
        let s2 = src.clone();
        let rows = tokio::task::spawn_blocking(move || {
            tokio::runtime::Handle::current().block_on(read_all(&s2, Cursor::Start))
        })
        .await
        .expect("join");
        assert_eq!(rows.len(), 10);
        let resumed = tokio::task::spawn_blocking(move || {
            tokio::runtime::Handle::current().block_on(read_all(&src, Cursor::Items(3)))
        })
        .await
        .expect("join");
        assert_eq!(resumed.len(), 10 - 2 * 3);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_over_long_line_is_refused_naming_file_and_line() {
        let dir = tempfile::tempdir().expect("tmp");
        write_export(dir.path(), 3);
        let data = first_data_file(dir.path());
        // A valid first line, then one far longer than any DynamoDB item.
        let mut text = String::new();
        BufReader::new(flate2::read::MultiGzDecoder::new(
            &std::fs::read(&data).expect("read")[..],
        ))
        .read_to_string(&mut text)
        .expect("gunzip");
        let first = text.lines().next().expect("a line").to_owned();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, format!("{first}\n").as_bytes()).expect("gz");
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..(MAX_EXPORT_LINE >> 20) + 2 {
            std::io::Write::write_all(&mut enc, &chunk).expect("gz");
        }
        std::fs::write(&data, enc.finish().expect("gz")).expect("write");
        let loc = StoreLocation::local(dir.path(), false).expect("loc");
        let src = ExportSource::open(loc, &dir.path().join("dl"))
            .await
            .expect("open");
        let err = read_to_end(src).await.expect_err("refused");
        let msg = err.to_string();
        assert!(
            msg.contains("line 2 is longer than 4 MiB") && msg.contains(".json.gz"),
            "{msg}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_modified_data_file_is_corrupt() {
        let dir = tempfile::tempdir().expect("tmp");
        write_export(dir.path(), 10);
        let data = first_data_file(dir.path());
        let mut bytes = std::fs::read(&data).expect("read");
        let gz = flate2::read::MultiGzDecoder::new(&bytes[..]);
        let mut text = String::new();
        BufReader::new(gz)
            .read_to_string(&mut text)
            .expect("gunzip");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, text.replace("s1", "s7").as_bytes()).expect("gz");
        bytes = enc.finish().expect("gz");
        std::fs::write(&data, bytes).expect("write");
        let loc = StoreLocation::local(dir.path(), false).expect("loc");
        let src = ExportSource::open(loc, &dir.path().join("dl"))
            .await
            .expect("open");
        let err = read_to_end(src).await.expect_err("corrupt");
        assert!(err.invalidates_segment(), "{err}");
        assert!(err.to_string().contains("MD5"), "{err}");
    }
}
