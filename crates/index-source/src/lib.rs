//! Sources of Cortex index rows, read page by page with a resumable cursor.
//!
//! Three sources sit behind [`IndexSource`]: a live DynamoDB table read with a parallel
//! Scan ([`dynamo::DynamoSource`]), a live Bigtable instance in any of Cortex's Bigtable
//! layouts read over key ranges ([`bigtable::BigtableSource`]), and a DynamoDB export in
//! `DYNAMODB_JSON` layout, on local disk or in any object store ([`export::ExportSource`]). A table is split into
//! *segments* (Scan segments, export data files) that are read independently; each
//! [`Page`] carries the [`Cursor`] after it, so a scan can checkpoint and resume.
//!
//! Reading pages is blocking ([`SegmentReader::next_page`]) and meant for a dedicated
//! thread: the caller's row processing is CPU work, and the DynamoDB source does its
//! network I/O on the async runtime behind a small channel.

pub mod bigtable;
pub mod dynamo;
pub mod export;

use serde::{Deserialize, Serialize};

/// One index row: the hash key and the range key (the value is never needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRow {
    /// `h`: for series→chunk rows `<user>:d<day>:<seriesID>`.
    pub hash: String,
    /// `r`: the range value bytes.
    pub range: Vec<u8>,
}

/// Where a segment's reading stopped; stored in checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Cursor {
    /// Nothing read yet.
    #[default]
    Start,
    /// Export data file: this many items consumed.
    Items(u64),
    /// DynamoDB: the `LastEvaluatedKey` of the last page (`h` string, `r` bytes).
    DynamoKey {
        /// `h`.
        hash: String,
        /// `r`.
        range: Vec<u8>,
    },
    /// Bigtable: the key of the last row read (resume strictly after it).
    RowKey {
        /// Row key bytes.
        after: Vec<u8>,
    },
    /// The segment is exhausted.
    End,
}

/// A batch of rows and the cursor just after them.
#[derive(Debug, Default)]
pub struct Page {
    /// The rows, in source order.
    pub rows: Vec<IndexRow>,
    /// Resume position after this page.
    pub cursor: Cursor,
    /// Read capacity units the request consumed (DynamoDB only).
    pub consumed_capacity: f64,
}

/// A table as the source sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// Table name.
    pub name: String,
    /// Item count if the source knows it (exports: exact; DynamoDB: approximate).
    pub approx_items: Option<u64>,
}

/// One independently readable part of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// 0-based index, stable across runs with the same settings.
    pub index: usize,
    /// Human-readable name used in logs and errors.
    pub name: String,
    /// Items in this segment if known.
    pub approx_items: Option<u64>,
}

/// Reading the index failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The location does not hold a usable export (bad manifest, unsupported format…).
    #[error("export {location}: {reason}")]
    Export {
        /// Export directory or object.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// A data file's content does not match its manifest or cannot be parsed; whatever
    /// was read from this segment must be discarded.
    #[error("export data file {file}: {reason}")]
    Corrupt {
        /// The data file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// Object store failure.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// Local file failure.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A DynamoDB request failed for good (after retries for transient errors).
    #[error("DynamoDB {operation} {table}: {message}")]
    Dynamo {
        /// API operation.
        operation: &'static str,
        /// Table (empty for ListTables).
        table: String,
        /// The error with its code.
        message: String,
    },
    /// A Bigtable request failed for good (after retries of transient codes).
    #[error(transparent)]
    Bigtable(#[from] ::bigtable::BigtableError),
    /// The cursor in a checkpoint does not belong to this kind of source.
    #[error("segment {segment}: checkpoint cursor {cursor:?} does not fit this source")]
    BadCursor {
        /// Segment name.
        segment: String,
        /// The cursor.
        cursor: Cursor,
    },
}

impl SourceError {
    /// True when the rows already read from the segment cannot be trusted.
    pub fn invalidates_segment(&self) -> bool {
        matches!(self, Self::Corrupt { .. } | Self::BadCursor { .. })
    }
}

/// Reads a segment page by page (blocking; run it on a dedicated thread).
pub trait SegmentReader: Send {
    /// The next page, or `None` when the segment is exhausted.
    fn next_page(&mut self) -> Result<Option<Page>, SourceError>;
}

/// Schema `store:` types whose index tables live in DynamoDB (live or exported).
pub const DYNAMO_STORES: &[&str] = &["aws", "aws-dynamo"];
/// Schema `store:` types whose index tables live in Bigtable.
pub const BIGTABLE_STORES: &[&str] = &["gcp", "gcp-columnkey", "bigtable", "bigtable-hashed"];

/// A source of index rows: lists tables, splits them into segments, reads segments.
#[async_trait::async_trait]
pub trait IndexSource: Send + Sync {
    /// `dynamodb://region` or the export location, for logs and the checkpoint fingerprint.
    fn describe(&self) -> String;

    /// The schema `store:` types this source holds the index tables of; periods of
    /// other stores are skipped (and reported) when scanning it.
    fn index_stores(&self) -> &'static [&'static str];

    /// Every table the source holds.
    async fn tables(&self) -> Result<Vec<TableInfo>, SourceError>;

    /// The segments of one table.
    async fn segments(&self, table: &str) -> Result<Vec<SegmentInfo>, SourceError>;

    /// The segments an earlier [`IndexSource::segments`] call named `names`, for
    /// resuming checkpoints taken in them; `None` when this source cannot re-create
    /// them (the scan then starts the table over).
    fn resume_segments(&self, _table: &str, _names: &[String]) -> Option<Vec<SegmentInfo>> {
        None
    }

    /// Opens a segment at `cursor` (blocking; call it from the thread that will read it).
    fn open_segment(
        &self,
        table: &str,
        segment: &SegmentInfo,
        cursor: &Cursor,
    ) -> Result<Box<dyn SegmentReader>, SourceError>;
}

/// The reading end of a source whose pages are fetched ahead by a task on the async
/// runtime: blocks on the next page; a task that stops before the last page is an
/// error (`stopped`), never the end of the segment.
pub(crate) struct PageChannelReader {
    rx: Option<tokio::sync::mpsc::Receiver<Result<Page, SourceError>>>,
    stopped: SourceError,
}

impl PageChannelReader {
    /// Reads from `rx`; `None` reads nothing (a finished segment).
    pub(crate) fn new(
        rx: Option<tokio::sync::mpsc::Receiver<Result<Page, SourceError>>>,
        stopped: SourceError,
    ) -> Self {
        Self { rx, stopped }
    }
}

impl SegmentReader for PageChannelReader {
    fn next_page(&mut self) -> Result<Option<Page>, SourceError> {
        let Some(rx) = self.rx.as_mut() else {
            return Ok(None);
        };
        match rx.blocking_recv() {
            Some(Ok(page)) => {
                if page.cursor == Cursor::End {
                    self.rx = None;
                }
                Ok(Some(page))
            }
            Some(Err(e)) => Err(e),
            None => {
                self.rx = None;
                Err(std::mem::replace(
                    &mut self.stopped,
                    SourceError::Corrupt {
                        file: String::new(),
                        reason: "the page fetch task stopped before the last page".into(),
                    },
                ))
            }
        }
    }
}
