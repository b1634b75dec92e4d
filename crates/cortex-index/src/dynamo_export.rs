//! DynamoDB "export to S3" in `DYNAMODB_JSON` format:
//! `<table>/AWSDynamoDB/<export-id>/{manifest-summary.json, manifest-files.json, data/*.json.gz}`
//! with one `{"Item":{"h":{"S":…},"r":{"B":…},"c":{"B":…}}}` per line.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// Reading or writing an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// File-system failure.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Malformed manifest or item.
    #[error("{path}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Serialize, Deserialize)]
struct Attr {
    #[serde(rename = "S", default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    #[serde(rename = "B", default, skip_serializing_if = "Option::is_none")]
    b: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ItemAttrs {
    h: Attr,
    r: Attr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<Attr>,
}

#[derive(Serialize, Deserialize)]
struct ItemLine {
    #[serde(rename = "Item")]
    item: ItemAttrs,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataFileManifest {
    item_count: u64,
    md5_checksum: String,
    etag: String,
    data_file_s3_key: String,
}

/// One data file listed in `manifest-files.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFileEntry {
    /// Items in the file.
    pub item_count: u64,
    /// Base64 MD5 of the (compressed) file.
    pub md5_checksum: String,
    /// `dataFileS3Key` as written by DynamoDB (relative to the export's bucket).
    pub key: String,
}

impl DataFileEntry {
    /// The key relative to the export directory (`data/<file>.json.gz`), independent of
    /// the bucket prefix the export was written under.
    pub fn key_in_export(&self) -> &str {
        match self.key.rfind("/data/") {
            Some(i) => &self.key[i + 1..],
            None => &self.key,
        }
    }
}

/// Parses `manifest-files.json` (one JSON object per line).
pub fn parse_manifest_files(text: &str) -> Result<Vec<DataFileEntry>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let m: DataFileManifest =
                serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
            Ok(DataFileEntry {
                item_count: m.item_count,
                md5_checksum: m.md5_checksum,
                key: m.data_file_s3_key,
            })
        })
        .collect()
}

/// The fields of `manifest-summary.json` a reader needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Table name (last element of `tableArn`).
    pub table: String,
    /// `itemCount`.
    pub item_count: u64,
    /// `outputFormat` (only `DYNAMODB_JSON` is readable).
    pub output_format: String,
}

/// Parses `manifest-summary.json`.
pub fn parse_summary(bytes: &[u8]) -> Result<ExportSummary, String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let arn = v["tableArn"].as_str().ok_or("no tableArn")?;
    Ok(ExportSummary {
        table: arn.rsplit('/').next().unwrap_or(arn).to_owned(),
        item_count: v["itemCount"]
            .as_u64()
            .ok_or("no itemCount (export not finished?)")?,
        output_format: v["outputFormat"]
            .as_str()
            .unwrap_or("DYNAMODB_JSON")
            .to_owned(),
    })
}

#[derive(Deserialize)]
struct KeyLine<'a> {
    #[serde(rename = "Item", borrow)]
    item: KeyItem<'a>,
}

#[derive(Deserialize)]
struct KeyItem<'a> {
    #[serde(borrow)]
    h: KeyAttr<'a>,
    #[serde(borrow)]
    r: KeyAttr<'a>,
}

#[derive(Deserialize)]
struct KeyAttr<'a> {
    #[serde(rename = "S", borrow, default)]
    s: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "B", borrow, default)]
    b: Option<std::borrow::Cow<'a, str>>,
}

/// Parses the keys of one export line (`h` string, `r` binary), skipping the value;
/// the range is decoded into `range` (reused by the caller to avoid an allocation per row).
pub fn parse_item_keys<'a>(
    line: &'a str,
    range: &mut Vec<u8>,
) -> Result<std::borrow::Cow<'a, str>, String> {
    let item: KeyLine<'a> = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let hash = item.item.h.s.ok_or("h is not a string")?;
    let r = item.item.r.b.ok_or("r is not binary")?;
    range.clear();
    STANDARD
        .decode_vec(r.as_bytes(), range)
        .map_err(|e| format!("r: {e}"))?;
    Ok(hash)
}

/// One item of an index table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexItem {
    /// `h`.
    pub hash: String,
    /// `r`.
    pub range: Vec<u8>,
    /// `c`.
    pub value: Option<Vec<u8>>,
}

struct DataFile {
    key: String,
    path: PathBuf,
    w: GzEncoder<BufWriter<File>>,
    items: u64,
}

/// Writes one table's export, spreading items over several data files.
pub struct ExportWriter {
    dir: PathBuf,
    table: String,
    export_id: String,
    files: Vec<DataFile>,
    next: usize,
    line: Vec<u8>,
}

impl ExportWriter {
    /// Creates `<root>/<table>/AWSDynamoDB/<export_id>/` with `files` data files.
    pub fn create(
        root: &Path,
        table: &str,
        export_id: &str,
        files: usize,
    ) -> Result<Self, ExportError> {
        let rel = format!("AWSDynamoDB/{export_id}");
        let dir = root.join(table).join(&rel);
        std::fs::create_dir_all(dir.join("data")).map_err(io(&dir))?;
        let mut out = Vec::new();
        for i in 0..files.max(1) {
            let name = hex::encode(Md5::digest(format!("{export_id}/{i}")));
            let key = format!("{rel}/data/{name}.json.gz");
            let path = dir.join("data").join(format!("{name}.json.gz"));
            let f = File::create(&path).map_err(io(&path))?;
            out.push(DataFile {
                key,
                path,
                w: GzEncoder::new(BufWriter::new(f), Compression::fast()),
                items: 0,
            });
        }
        Ok(Self {
            dir,
            table: table.to_owned(),
            export_id: export_id.to_owned(),
            files: out,
            next: 0,
            line: Vec::new(),
        })
    }

    /// Appends one item (round-robin over the data files).
    pub fn write(
        &mut self,
        hash: &str,
        range: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), ExportError> {
        let item = ItemLine {
            item: ItemAttrs {
                h: Attr {
                    s: Some(hash.to_owned()),
                    b: None,
                },
                r: Attr {
                    s: None,
                    b: Some(STANDARD.encode(range)),
                },
                c: value.map(|v| Attr {
                    s: None,
                    b: Some(STANDARD.encode(v)),
                }),
            },
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &item).map_err(|e| ExportError::Malformed {
            path: self.dir.clone(),
            reason: e.to_string(),
        })?;
        self.line.push(b'\n');
        let n = self.files.len();
        let f = &mut self.files[self.next];
        self.next = (self.next + 1) % n;
        f.w.write_all(&self.line).map_err(io(&f.path))?;
        f.items += 1;
        Ok(())
    }

    /// Closes the data files and writes both manifests; returns the item count.
    pub fn finish(self) -> Result<u64, ExportError> {
        let mut manifest = Vec::new();
        let mut total = 0;
        for f in self.files {
            let mut inner = f.w.finish().map_err(io(&f.path))?;
            inner.flush().map_err(io(&f.path))?;
            drop(inner);
            let bytes = std::fs::read(&f.path).map_err(io(&f.path))?;
            let md5 = Md5::digest(&bytes);
            let line = DataFileManifest {
                item_count: f.items,
                md5_checksum: STANDARD.encode(md5),
                etag: hex::encode(md5),
                data_file_s3_key: f.key,
            };
            manifest.extend(serde_json::to_vec(&line).unwrap_or_default());
            manifest.push(b'\n');
            total += f.items;
        }
        let path = self.dir.join("manifest-files.json");
        std::fs::write(&path, manifest).map_err(io(&path))?;
        let arn = format!(
            "arn:aws:dynamodb:us-east-1:000000000000:table/{}",
            self.table
        );
        let summary = serde_json::json!({
            "version": "2020-06-30",
            "exportArn": format!("{arn}/export/{}", self.export_id),
            "tableArn": arn,
            "manifestFilesS3Key": format!("AWSDynamoDB/{}/manifest-files.json", self.export_id),
            "itemCount": total,
            "outputFormat": "DYNAMODB_JSON",
        });
        let path = self.dir.join("manifest-summary.json");
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&summary).unwrap_or_default(),
        )
        .map_err(io(&path))?;
        Ok(total)
    }
}

/// One export found on disk.
#[derive(Debug, Clone)]
pub struct Export {
    /// Directory holding `manifest-summary.json`.
    pub dir: PathBuf,
    /// Table name (last element of `tableArn`).
    pub table: String,
    /// `itemCount` of the summary.
    pub item_count: u64,
}

/// Finds every export below `root` (any depth).
pub fn find_exports(root: &Path) -> Result<Vec<Export>, ExportError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let summary = dir.join("manifest-summary.json");
        if summary.is_file() {
            let text = std::fs::read(&summary).map_err(io(&summary))?;
            let v: serde_json::Value =
                serde_json::from_slice(&text).map_err(|e| ExportError::Malformed {
                    path: summary.clone(),
                    reason: e.to_string(),
                })?;
            let arn = v["tableArn"]
                .as_str()
                .ok_or_else(|| ExportError::Malformed {
                    path: summary.clone(),
                    reason: "no tableArn".into(),
                })?;
            let table = arn.rsplit('/').next().unwrap_or(arn).to_owned();
            out.push(Export {
                dir,
                table,
                item_count: v["itemCount"].as_u64().unwrap_or(0),
            });
            continue;
        }
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let p = entry.map_err(io(&dir))?.path();
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(out)
}

impl Export {
    /// Calls `f` for every item, verifying each data file's MD5 and item count.
    pub fn for_each_item(&self, mut f: impl FnMut(IndexItem)) -> Result<u64, ExportError> {
        let manifest = self.dir.join("manifest-files.json");
        let text = std::fs::read_to_string(&manifest).map_err(io(&manifest))?;
        // The data keys are relative to the bucket; the export dir ends with `AWSDynamoDB/<id>`.
        let base = self
            .dir
            .parent()
            .and_then(Path::parent)
            .unwrap_or(&self.dir);
        let mut total = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let m: DataFileManifest =
                serde_json::from_str(line).map_err(|e| ExportError::Malformed {
                    path: manifest.clone(),
                    reason: e.to_string(),
                })?;
            let path = base.join(&m.data_file_s3_key);
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            if STANDARD.encode(Md5::digest(&bytes)) != m.md5_checksum {
                return Err(ExportError::Malformed {
                    path,
                    reason: "MD5 differs from the manifest".into(),
                });
            }
            let mut n = 0;
            for (i, line) in BufReader::new(MultiGzDecoder::new(&bytes[..]))
                .lines()
                .enumerate()
            {
                let bad = |reason: String| ExportError::Malformed {
                    path: path.clone(),
                    reason: format!("line {}: {reason}", i + 1),
                };
                let line = line.map_err(|e| bad(e.to_string()))?;
                if line.is_empty() {
                    continue;
                }
                let item: ItemLine = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
                let decode = |a: &Attr| a.b.as_deref().map(|b| STANDARD.decode(b)).transpose();
                let hash = item
                    .item
                    .h
                    .s
                    .ok_or_else(|| bad("h is not a string".into()))?;
                let range = decode(&item.item.r)
                    .map_err(|e| bad(e.to_string()))?
                    .ok_or_else(|| bad("r is not binary".into()))?;
                let value = match &item.item.c {
                    Some(c) => decode(c).map_err(|e| bad(e.to_string()))?,
                    None => None,
                };
                f(IndexItem { hash, range, value });
                n += 1;
            }
            if n != m.item_count {
                return Err(ExportError::Malformed {
                    path,
                    reason: format!("{n} items, manifest says {}", m.item_count),
                });
            }
            total += n;
        }
        if total != self.item_count {
            return Err(ExportError::Malformed {
                path: self.dir.join("manifest-summary.json"),
                reason: format!("{total} items, summary says {}", self.item_count),
            });
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_back() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut w = ExportWriter::create(dir.path(), "t_1", "0170-abc", 3).expect("create");
        for i in 0..10u8 {
            w.write(
                &format!("h{i}"),
                &[i, 0, b'3', 0],
                (i % 2 == 0).then_some(&b"-"[..]),
            )
            .expect("write");
        }
        assert_eq!(w.finish().expect("finish"), 10);
        let exports = find_exports(dir.path()).expect("find");
        assert_eq!(exports.len(), 1);
        assert_eq!(exports[0].table, "t_1");
        let mut items = vec![];
        exports[0].for_each_item(|i| items.push(i)).expect("read");
        items.sort_by(|a, b| a.hash.cmp(&b.hash));
        assert_eq!(items.len(), 10);
        assert_eq!(
            items[1],
            IndexItem {
                hash: "h1".into(),
                range: vec![1, 0, b'3', 0],
                value: None
            }
        );
    }
}
