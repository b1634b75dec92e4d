//! `meta.json`: Prometheus block meta plus the Thanos section, written exactly as Go's
//! `encoding/json` with tab indentation does (so files match Cortex's byte for byte).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Label Cortex and Thanos use for the tenant.
pub const TENANT_LABEL: &str = "__org_id__";
/// `thanos.source` for blocks this project writes.
pub const SOURCE: &str = "blocksconvert";

/// The block meta file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// Block ULID.
    pub ulid: String,
    /// Inclusive start, ms.
    #[serde(rename = "minTime")]
    pub min_time: i64,
    /// Exclusive end, ms.
    #[serde(rename = "maxTime")]
    pub max_time: i64,
    /// Counts.
    pub stats: BlockStats,
    /// Compaction state.
    pub compaction: Compaction,
    /// Meta format version (1).
    pub version: u32,
    /// Thanos extension.
    pub thanos: ThanosMeta,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// `stats` (zero counts are omitted, as Go does).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockStats {
    /// Samples in the block.
    #[serde(rename = "numSamples", default, skip_serializing_if = "is_zero")]
    pub num_samples: u64,
    /// Series in the block.
    #[serde(rename = "numSeries", default, skip_serializing_if = "is_zero")]
    pub num_series: u64,
    /// Chunks in the block.
    #[serde(rename = "numChunks", default, skip_serializing_if = "is_zero")]
    pub num_chunks: u64,
    /// Tombstones (never written by the builder).
    #[serde(rename = "numTombstones", default, skip_serializing_if = "is_zero")]
    pub num_tombstones: u64,
}

/// `compaction`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compaction {
    /// 1 for a freshly built block.
    pub level: u32,
    /// `[own ULID]`.
    pub sources: Vec<String>,
}

/// `thanos`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThanosMeta {
    /// External labels (`__org_id__`).
    pub labels: BTreeMap<String, String>,
    /// Downsampling resolution (0 = raw).
    pub downsample: Downsample,
    /// Who wrote the block.
    pub source: String,
    /// Names in `chunks/` (deprecated field, still read by some tools).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segment_files: Vec<String>,
    /// Files with sizes, as Thanos' uploader fills it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<BlockFile>,
}

/// `thanos.downsample`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Downsample {
    /// Resolution in ms.
    pub resolution: i64,
}

/// One entry of `thanos.files`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockFile {
    /// Path relative to the block directory.
    pub rel_path: String,
    /// Size in bytes (absent for `meta.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
}

impl BlockMeta {
    /// A level-1 meta for a block of `tenant` covering `[min_time, max_time)`.
    pub fn new(ulid: &str, tenant: &str, min_time: i64, max_time: i64) -> Self {
        Self {
            ulid: ulid.to_owned(),
            min_time,
            max_time,
            stats: BlockStats::default(),
            compaction: Compaction {
                level: 1,
                sources: vec![ulid.to_owned()],
            },
            version: 1,
            thanos: ThanosMeta {
                labels: BTreeMap::from([(TENANT_LABEL.to_owned(), tenant.to_owned())]),
                downsample: Downsample { resolution: 0 },
                source: SOURCE.to_owned(),
                segment_files: Vec::new(),
                files: Vec::new(),
            },
        }
    }

    /// Fills `thanos.segment_files` and `thanos.files` (chunk segments with sizes, the
    /// index, then `meta.json`) as Thanos' uploader lists them.
    pub fn record_files(&mut self, segments: &[(String, u64)], index_size: u64) {
        self.thanos.segment_files = segments.iter().map(|(n, _)| n.clone()).collect();
        self.thanos.files = segments
            .iter()
            .map(|(n, s)| BlockFile {
                rel_path: format!("chunks/{n}"),
                size_bytes: Some(*s),
            })
            .chain([
                BlockFile {
                    rel_path: "index".into(),
                    size_bytes: Some(index_size),
                },
                BlockFile {
                    rel_path: "meta.json".into(),
                    size_bytes: None,
                },
            ])
            .collect();
    }

    /// The tenant named by `__org_id__`, if any.
    pub fn tenant(&self) -> Option<&str> {
        self.thanos.labels.get(TENANT_LABEL).map(String::as_str)
    }

    /// Go `json.MarshalIndent(meta, "", "\t")` plus a newline, with Go's HTML escaping.
    pub fn to_go_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        // Serializing plain structs of strings and integers cannot fail.
        if self.serialize(&mut ser).is_err() {
            return b"{}\n".to_vec();
        }
        let text = String::from_utf8_lossy(&out)
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029");
        let mut bytes = text.into_bytes();
        bytes.push(b'\n');
        bytes
    }
}
