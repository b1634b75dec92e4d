//! Per-segment checkpoints under the work dir, written atomically.
//!
//! Layout: `<work>/tables/<table>/fingerprint.json` (what the state belongs to),
//! `seg-<i>/checkpoint.json` + `seg-<i>/run-<n>.run` (sorted runs named by the
//! checkpoint), `plans/` (verified local plans), `done.json` (table finished). A
//! checkpoint names only fsynced runs and the source cursor just after them, so a crash
//! at any instant resumes from the last checkpoint: runs it does not name are deleted
//! and the rows after its cursor are read again.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use index_source::Cursor;
use serde::{Deserialize, Serialize};

/// Row counts of a segment, cumulative over restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentCounts {
    /// Rows read from the source.
    pub rows_read: u64,
    /// Rows by entry type.
    pub by_type: BTreeMap<String, u64>,
    /// Series→chunk rows kept for plans.
    pub kept: u64,
    /// Series→chunk rows of tenants filtered out.
    pub ignored_tenant: u64,
    /// Series→chunk rows of days whose period is not converted by this table.
    pub ignored_schema: u64,
    /// Series→chunk rows that could not be parsed.
    pub bad: u64,
    /// Up to a few bad rows, for the error message.
    pub bad_examples: Vec<String>,
}

impl SegmentCounts {
    /// Adds another segment's counts.
    pub fn add(&mut self, o: &SegmentCounts) {
        self.rows_read += o.rows_read;
        for (k, v) in &o.by_type {
            *self.by_type.entry(k.clone()).or_default() += v;
        }
        self.kept += o.kept;
        self.ignored_tenant += o.ignored_tenant;
        self.ignored_schema += o.ignored_schema;
        self.bad += o.bad;
        for e in &o.bad_examples {
            if self.bad_examples.len() < 5 {
                self.bad_examples.push(e.clone());
            }
        }
    }
}

/// State of one segment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentCheckpoint {
    /// Source position after the rows in `runs`.
    pub cursor: Cursor,
    /// Run files (names inside the segment dir) holding every kept row before `cursor`.
    pub runs: Vec<String>,
    /// Counts up to `cursor`.
    pub counts: SegmentCounts,
    /// The segment was read to the end.
    pub done: bool,
}

/// Writes `value` as JSON to `path` via a fsynced temporary file and a rename.
pub fn write_atomic(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        serde_json::to_writer_pretty(&mut f, value)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads a JSON state file; `Ok(None)` if it does not exist.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> std::io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Paths of one table's state.
#[derive(Debug, Clone)]
pub struct TableDir {
    /// `<work>/tables/<table>`.
    pub root: PathBuf,
}

impl TableDir {
    /// For a table below the work dir.
    pub fn new(work_dir: &Path, table: &str) -> Self {
        Self {
            root: work_dir.join("tables").join(table),
        }
    }

    /// `fingerprint.json`.
    pub fn fingerprint(&self) -> PathBuf {
        self.root.join("fingerprint.json")
    }

    /// `done.json`.
    pub fn done(&self) -> PathBuf {
        self.root.join("done.json")
    }

    /// `seg-<i>`.
    pub fn segment(&self, i: usize) -> PathBuf {
        self.root.join(format!("seg-{i}"))
    }

    /// `plans/`.
    pub fn plans(&self) -> PathBuf {
        self.root.join("plans")
    }
}
